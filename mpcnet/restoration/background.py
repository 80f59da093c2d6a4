"""Upscaling the photo behind the faces (``restore --bg-upsampler``): OpenCV interpolation, or
Real-ESRGAN when the user has the ``realesrgan`` package and its weights (``realesrgan-x2plus``)."""
from __future__ import annotations

import contextlib
import io
from typing import Callable

import cv2
import numpy as np

INTERPOLATION = {"lanczos": cv2.INTER_LANCZOS4, "bicubic": cv2.INTER_CUBIC}
REALESRGAN_WEIGHTS = "realesrgan-x2plus"

# (BGR photo, uint8 or uint16, output (width, height)) → the same sample type at that size
Upsampler = Callable[[np.ndarray, tuple], np.ndarray]


class BackgroundUpsamplerError(Exception):
    """A background upsampler that cannot be built here; the message says what to install or fetch."""


def rrdbnet_config(state: dict) -> dict:
    """RRDBNet's constructor arguments, read off a checkpoint's shapes (x1/x2 nets pixel-unshuffle
    their 3-channel input into 48/12 channels)."""
    first = state["conv_first.weight"]
    scales = {3: 4, 12: 2, 48: 1}
    if first.shape[1] not in scales or "body.0.rdb1.conv1.weight" not in state:
        raise BackgroundUpsamplerError("the Real-ESRGAN weights are not an RGB RRDBNet (Real-ESRGAN x1/x2/x4plus)")
    return {"num_in_ch": 3, "num_out_ch": state["conv_last.weight"].shape[0], "num_feat": first.shape[0],
            "num_block": len({k.split(".")[1] for k in state if k.startswith("body.")}),
            "num_grow_ch": state["body.0.rdb1.conv1.weight"].shape[0], "scale": scales[first.shape[1]]}


class RealESRGANBackground:
    """Real-ESRGAN (RRDBNet) on the whole photo in 400-px tiles through the package's ``RealESRGANer``,
    then Lanczos to the asked size when it differs from the net's own scale. Works on float pixels,
    so 16-bit photos keep their precision (a float32 copy of the input and of its ×2 result)."""

    def __init__(self, weights: str = REALESRGAN_WEIGHTS, device: str = "cpu", half: bool = False, tile: int = 400):
        try:
            from realesrgan import RealESRGANer
        except ImportError as exc:
            raise BackgroundUpsamplerError("the realesrgan background upsampler needs the realesrgan package "
                                           "(pip install --no-deps realesrgan)") from exc
        import torch
        from basicsr.archs.rrdbnet_arch import RRDBNet

        from mpcnet.checkpoint import load_model_file
        from mpcnet.weights import WeightsError

        try:
            model = load_model_file(weights)
        except WeightsError as exc:
            raise BackgroundUpsamplerError(str(exc)) from exc
        config = rrdbnet_config(model.state)  # RealESRGANer then loads it itself
        self.upsampler = RealESRGANer(scale=config["scale"], model_path=str(model.path), model=RRDBNet(**config),
                                      tile=tile, tile_pad=10, pre_pad=0, half=half, device=torch.device(device))

    def __call__(self, bgr: np.ndarray, size: tuple) -> np.ndarray:
        up = self.upsampler
        top = np.iinfo(bgr.dtype).max
        chatter = io.StringIO()  # RealESRGANer prints per tile, and swallows a tile's error into a print
        try:
            with contextlib.redirect_stdout(chatter):
                up.pre_process(np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32) / top)
                up.tile_process() if up.tile_size > 0 else up.process()
                out = up.post_process()
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: this photo fails, not the batch
            said = next((line.strip() for line in chatter.getvalue().splitlines() if line.startswith("Error")), "")
            raise ValueError(f"Real-ESRGAN failed: {said or str(exc).splitlines()[0]}") from exc
        rgb = out[0].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()
        bgr_up = np.rint(rgb[..., ::-1] * top).astype(bgr.dtype)
        if bgr_up.shape[1::-1] != tuple(size):
            bgr_up = cv2.resize(bgr_up, size, interpolation=cv2.INTER_LANCZOS4)
        return bgr_up


def make_background_upsampler(name: str, device: str = "cpu", half: bool = False) -> Upsampler | None:
    """The upsampler for ``--bg-upsampler NAME`` (one of ``BG_UPSAMPLER_NAMES``); None for ``none``
    (the photo keeps its size)."""
    if name == "none":
        return None
    if name == "realesrgan":
        return RealESRGANBackground(device=device, half=half)
    flag = INTERPOLATION[name]
    return lambda bgr, size: cv2.resize(bgr, size, interpolation=flag)
