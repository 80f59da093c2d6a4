"""Alignment of a detected face to the FFHQ 512 template (the layout MPCNet is trained on) and the
inverse map used to paste the restored face back."""
from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 512
# Five landmarks of an FFHQ-aligned 512×512 face (eyes, nose tip, mouth corners; image-left first),
# the template facexlib's FaceRestoreHelper and GFPGAN align to.
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], np.float32)
BORDER_GRAY = (0.53, 0.52, 0.52)  # fill outside the photo, as facexlib's (135, 133, 132)


def face_affine(landmarks: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """2×3 similarity (rotation, uniform scale, shift) taking ``landmarks`` onto the template,
    fitted robustly (LMedS) as facexlib does."""
    template = FFHQ_TEMPLATE_512 * (size / FACE_SIZE)
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("landmarks are degenerate; the face cannot be aligned")
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = FACE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face at ``landmarks`` in a BGR image (float32 in [0, 1], or uint8/uint16) to a
    ``size``² float32 [0, 1] aligned crop. An integer photo is warped in its own sample type and
    only the crop becomes float, so a large 8-bit photo is never copied whole (the crop is then
    rounded to the photo's 8 or 16 bits, as its pixels are).

    Returns ``(crop, affine)``; ``affine`` maps image pixels to crop pixels.
    """
    affine = face_affine(landmarks, size)
    top = 1.0 if image.dtype == np.float32 else float(np.iinfo(image.dtype).max)
    crop = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=[c * top for c in BORDER_GRAY])
    return (crop if top == 1.0 else crop.astype(np.float32) / top), affine


def inverse_affine(affine: np.ndarray, upscale: float) -> np.ndarray:
    """Crop pixels → pixels of the input upscaled ``upscale`` times.

    Pixel centres: input pixel ``i`` lies at ``upscale * i + (upscale - 1) / 2`` in the output.
    """
    inverse = cv2.invertAffineTransform(affine) * upscale
    inverse[:, 2] += (upscale - 1) / 2
    return inverse
