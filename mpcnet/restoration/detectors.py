"""Face detectors for ``mpcnet restore``: every one returns boxes, scores and five landmarks
(image-left eye, image-right eye, nose tip, image-left and image-right mouth corner — the order of
the FFHQ alignment template) in the same :class:`Face` format.

* ``retinaface``: facexlib's RetinaFace class, weights from the registry (sha256-verified, loaded
  with ``weights_only``); facexlib's own loader would download, so it is not used.
* ``mtcnn``: facenet-pytorch's MTCNN, whose wheel ships its weights (the offline default).
* ``yunet``: OpenCV's ``FaceDetectorYN`` with the registry's YuNet ONNX file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from mpcnet.checkpoint import load_model_file, load_state_into
from mpcnet.restoration import DETECTORS
from mpcnet.weights import WeightsError, resolve

# Registry names tried for ``retinaface``, most accurate first.
RETINAFACE_WEIGHTS = ("retinaface-resnet50", "retinaface-mobile")
# The registry's retinaface-mobile file (sha256 ed6fa7d4…) is biubug6's Face-Detector-1MB
# mobilenet0.25: facexlib's key layout, but trained with plain ReLU and smaller anchors than
# facexlib's own release. Its settings, keyed by the start of its sha256:
_RETINAFACE_1MB = {"ed6fa7d45a5179f0": [[10, 20], [32, 64], [128, 256]]}
DETECT_MAX_SIDE = 1600  # larger photos are detected on a downscaled copy
RETINAFACE_NMS_IOU = 0.4  # facexlib's detect_faces default: boxes overlapping more are one face


@dataclass
class Face:
    """One detected face in input-image pixel coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2)


class RetinaFaceDetector:
    """facexlib's RetinaFace (ResNet-50 or MobileNet-0.25) with registry weights."""

    def __init__(self, weights: str = "retinaface-mobile", device: str = "cpu", threshold: float = 0.8):
        from facexlib.detection.retinaface import RetinaFace

        from mpcnet.weights import sha256_of

        model = load_model_file(weights)
        network = "resnet50" if "resnet50" in weights else "mobile0.25"
        self.name = f"retinaface ({weights})"
        self.threshold = threshold
        self.net = RetinaFace(network_name=network, device=torch.device(device))
        load_state_into(self.net, {k.removeprefix("module."): v for k, v in model.state.items()}, model.path)
        anchors = _RETINAFACE_1MB.get(sha256_of(model.path)[:16])
        if anchors is not None:
            self.net.cfg = dict(self.net.cfg, min_sizes=anchors)
            for module in self.net.modules():
                if isinstance(module, torch.nn.LeakyReLU):
                    module.negative_slope = 0.0
        self.net.eval()

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """facexlib's ``RetinaFace.detect_faces`` at the image's own size, with the anchors of
        :func:`retinaface_priors`."""
        from facexlib.detection.retinaface_utils import decode, decode_landm
        from torchvision.ops import nms

        h, w = bgr.shape[:2]
        net, device = self.net, self.net.device
        with torch.inference_mode():
            x = torch.from_numpy(bgr.astype(np.float32).transpose(2, 0, 1))[None].to(device) - net.mean_tensor
            loc, conf, points = net(x)
            priors = retinaface_priors(net.cfg, h, w).to(device)
            boxes = decode(loc[0], priors, net.cfg["variance"]) * torch.tensor([w, h] * 2, device=device)
            points = decode_landm(points[0], priors, net.cfg["variance"]) * torch.tensor([w, h] * 5, device=device)
            scores = conf[0, :, 1]
            sure = scores > self.threshold
            boxes, points, scores = boxes[sure].cpu(), points[sure].cpu(), scores[sure].cpu()
            keep = nms(boxes, scores, RETINAFACE_NMS_IOU).numpy()
        return [Face(boxes[i].numpy().copy(), float(scores[i]), points[i].numpy().reshape(5, 2).copy()) for i in keep]


def retinaface_priors(cfg: dict, height: int, width: int) -> torch.Tensor:
    """RetinaFace's anchors (centre x, y, width, height, as fractions of the image) for an image of
    this size, in the order of its outputs: facexlib's ``PriorBox``, which builds them in a Python
    loop (40 % of the detection time on a 1600 px photo), vectorised."""
    levels = []
    for step, sizes in zip(cfg["steps"], cfg["min_sizes"]):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width,
                             indexing="ij")
        centres = np.repeat(np.stack([cx.ravel(), cy.ravel()], axis=1), len(sizes), axis=0)
        extents = np.tile([[size / width, size / height] for size in sizes], (rows * cols, 1))
        levels.append(np.hstack([centres, extents]))
    priors = torch.from_numpy(np.concatenate(levels)).float()
    return priors.clamp_(0, 1) if cfg["clip"] else priors


class MTCNNDetector:
    """facenet-pytorch's MTCNN (weights in its wheel)."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", threshold: float = 0.9):
        try:
            from facenet_pytorch import MTCNN
        except ImportError:  # its weights ship in its wheel: a missing package is a missing model file
            raise WeightsError("the mtcnn detector needs the facenet-pytorch package, which is not installed "
                               "(scripts/setup.sh installs it; or: pip install --no-deps facenet-pytorch); or set "
                               "MPCNET_WEIGHTS_DIR to a folder with the retinaface or yunet model file") from None

        self.net = MTCNN(keep_all=True, device=torch.device(device))
        self.threshold = threshold

    def detect(self, bgr: np.ndarray) -> list[Face]:
        if min(bgr.shape[:2]) < self.net.min_face_size:  # smaller than its smallest face (its pyramid is empty)
            return []
        with torch.inference_mode():
            boxes, scores, points = self.net.detect(np.ascontiguousarray(bgr[..., ::-1]), landmarks=True)
        if boxes is None:
            return []
        return [Face(np.asarray(b, np.float32), float(s), np.asarray(p, np.float32))
                for b, s, p in zip(boxes, scores, points) if s >= self.threshold]


class YuNetDetector:
    """OpenCV's FaceDetectorYN with the registry's YuNet model."""

    name = "yunet"

    def __init__(self, threshold: float = 0.8):
        self.net = cv2.FaceDetectorYN.create(str(resolve("yunet")), "", (320, 320), threshold)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        self.net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self.net.detect(np.ascontiguousarray(bgr))
        if rows is None:
            return []
        h, w = bgr.shape[:2]
        # on photos smaller than its coarsest stride (32 px) YuNet can return rows of uninitialised values
        rows = [r for r in rows if np.isfinite(r).all() and 0 <= r[0] + r[2] / 2 < w and 0 <= r[1] + r[3] / 2 < h]
        return [Face(np.array([r[0], r[1], r[0] + r[2], r[1] + r[3]], np.float32), float(r[14]),
                     r[4:14].reshape(5, 2).astype(np.float32)) for r in rows]


def retinaface_weights() -> str | None:
    """The first registry RetinaFace whose verified file is present, or None."""
    for name in RETINAFACE_WEIGHTS:
        try:
            resolve(name)
            return name
        except WeightsError:
            continue
    return None


def default_detector() -> str:
    """RetinaFace when its verified weights are present, else MTCNN (always offline)."""
    return "retinaface" if retinaface_weights() else "mtcnn"


def make_detector(name: str | None = None, device: str = "cpu"):
    """Build detector ``name`` (one of :data:`DETECTORS`, or None for :func:`default_detector`).

    Raises :class:`WeightsError` when its model file (for MTCNN: its package) is missing or unverified.
    """
    name = name or default_detector()
    if name == "retinaface":
        weights = retinaface_weights()
        if weights is None:
            resolve(RETINAFACE_WEIGHTS[-1])  # raises the registry's message saying what to fetch
        return RetinaFaceDetector(weights, device)
    if name == "mtcnn":
        return MTCNNDetector(device)
    if name == "yunet":
        return YuNetDetector()
    raise ValueError(f"unknown detector '{name}'; choose from {', '.join(DETECTORS)}")


def detect_faces(detector, bgr8: np.ndarray, max_side: int = DETECT_MAX_SIDE) -> list[Face]:
    """Run ``detector`` on an 8-bit BGR image (downscaled to ``max_side`` when larger), faces in
    full-resolution coordinates, highest score first."""
    scale = min(1.0, max_side / max(bgr8.shape[:2]))
    small = bgr8 if scale == 1.0 else cv2.resize(bgr8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = detector.detect(small)
    for face in faces:
        face.box = face.box / scale
        face.landmarks = face.landmarks / scale
    return sorted(faces, key=lambda f: -f.score)
