"""GFPGAN's own whole-photo pipeline (``gfpgan.GFPGANer``: detect, align, restore one face at a
time, paste back with a ParseNet mask over a Lanczos-upscaled background), timed per stage for
``mpcnet benchmark restore --against gfpgan``.

No GFPGAN or ParseNet weights are on these machines: both get random weights of their released
architecture (GFPGANv1Clean as GFPGAN v1.3/v1.4 ship it, channel multiplier 2, and facexlib's
ParseNet), saved as files where GFPGANer loads them. Its detector is the very model ``restore``
uses (the same registry file, the same settings); GFPGAN keeps its own threshold (0.97).
"""
from __future__ import annotations

import time
from pathlib import Path
from unittest import mock

import cv2
import torch

from mpcnet.parsing_classes import FACEXLIB_PARTS
from mpcnet.restoration.results import StageTimer

# the file names facexlib looks for, by its RetinaFace model name
_FACEXLIB_DETECTOR_FILE = {"retinaface_resnet50": "detection_Resnet50_Final.pth",
                           "retinaface_mobile0.25": "detection_mobilenet0.25_Final.pth"}


class GFPGANerPipeline:
    """``GFPGANer(upscale=2, arch='clean', channel_multiplier=2)`` on a folder, with the wall time
    of each stage (GFPGAN pastes and upscales the background in one call: reported as paste)."""

    def __init__(self, detector, workdir: Path, device: str = "cpu", upscale: int = 2, narrow: float = 1.0):
        """``detector``: restore's :class:`~mpcnet.restoration.detectors.RetinaFaceDetector`;
        ``narrow`` < 1 shrinks GFPGANv1Clean for tests only (GFPGANer always builds the full width)."""
        try:
            from facexlib.parsing.parsenet import ParseNet
            from facexlib.utils.face_restoration_helper import FaceRestoreHelper
            from gfpgan import utils as gfpgan_utils
            from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
        except ImportError as exc:
            raise ValueError("--against gfpgan needs the gfpgan package (a test-only dependency: "
                             "pip install -r requirements-test.txt)") from exc
        if not hasattr(getattr(detector, "net", None), "detect_faces"):
            raise ValueError("--against gfpgan needs the retinaface detector (GFPGANer runs facexlib's RetinaFace)")
        torch.manual_seed(0)
        peer = GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                             fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, sft_half=True,
                             narrow=narrow)
        model_path = workdir / "GFPGANv1Clean_random.pth"
        torch.save({"params_ema": peer.state_dict()}, model_path)
        torch.save(ParseNet(in_size=512, out_size=512, parsing_ch=len(FACEXLIB_PARTS)).state_dict(), workdir / "parsing_parsenet.pth")
        det_name = detector.net.model_name
        torch.save(detector.net.state_dict(), workdir / _FACEXLIB_DETECTOR_FILE[det_name])  # replaced below

        def helper(*args, **kwargs):  # GFPGANer hard-codes ResNet-50 and a relative weights folder
            return FaceRestoreHelper(*args, **{**kwargs, "det_model": det_name, "model_rootpath": str(workdir)})

        with mock.patch.object(gfpgan_utils, "FaceRestoreHelper", helper), \
                mock.patch.object(gfpgan_utils, "GFPGANv1Clean", lambda **kw: GFPGANv1Clean(**{**kw, "narrow": narrow})):
            self.gfpganer = gfpgan_utils.GFPGANer(str(model_path), upscale=upscale, arch="clean",
                                                  channel_multiplier=2, device=torch.device(device))
        helper_obj = self.gfpganer.face_helper
        helper_obj.face_det = detector.net  # the same detector model as restore's
        self.timer = StageTimer()
        for obj, attr, stage in ((helper_obj, "get_face_landmarks_5", "detect"), (helper_obj, "align_warp_face", "align"),
                                 (helper_obj, "get_inverse_affine", "paste"),
                                 (helper_obj, "paste_faces_to_input_image", "paste"),
                                 (self.gfpganer, "gfpgan", "network")):
            setattr(obj, attr, self._timed(getattr(obj, attr), stage))

    def _timed(self, fn, stage: str):
        def call(*args, **kwargs):
            with self.timer(stage):
                return fn(*args, **kwargs)
        return call

    def run(self, files: list[Path], out_dir: Path) -> dict:
        """Restore ``files`` into ``out_dir`` as GFPGAN's inference script does (cv2 read and write)."""
        self.timer = StageTimer()
        faces = 0
        start = time.perf_counter()
        for i, path in enumerate(files):
            with self.timer("read"):
                img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                continue
            _, restored_faces, restored = self.gfpganer.enhance(img, paste_back=True)
            faces += len(restored_faces)
            with self.timer("write"):
                cv2.imwrite(str(out_dir / f"{i:04d}_{path.stem}.png"), restored)
        seconds = time.perf_counter() - start
        return {"files": len(files), "faces": faces, "seconds": round(seconds, 3),
                "faces_per_s": round(faces / seconds, 3) if seconds else None,
                "stage_seconds": {k: round(v, 3) for k, v in self.timer.seconds.items()}}
