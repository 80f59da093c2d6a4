"""Pasting restored faces back into the (upscaled) photo with a soft mask: from a face parsing
when a ParseNet is loaded, else a feathered ellipse over the FFHQ face region."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from basicsr.utils import img2tensor

from mpcnet.parsing_classes import FACEXLIB_PARTS, PARSE_FACE_CLASSES
from mpcnet.restoration.align import FACE_SIZE

PASTE_ROWS = 256  # canvas rows blended at a time (:func:`paste_face`)


def ellipse_mask(size: int = FACE_SIZE) -> np.ndarray:
    """Feathered ellipse covering forehead to chin of an FFHQ-aligned face, float32 in [0, 1]."""
    s = size / FACE_SIZE
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (round(256 * s), round(285 * s)), (round(175 * s), round(205 * s)), 0, 0, 360, 1.0, -1)
    sigma = 18 * s
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def parse_mask(labels: np.ndarray, face_classes: tuple = PARSE_FACE_CLASSES) -> np.ndarray:
    """Soft mask of the face classes in a parsing map (H×W class indices), feathered and kept off
    the crop border."""
    mask = np.isin(labels, face_classes).astype(np.float32)
    size = labels.shape[0]
    sigma = 11 * size / FACE_SIZE
    mask = cv2.GaussianBlur(cv2.GaussianBlur(mask, (0, 0), sigma), (0, 0), sigma)
    border = max(1, size // 50)
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
    return mask


def load_parsenet(device: str = "cpu"):
    """facexlib's ParseNet with the registry's verified 'parsenet' weights, or None when absent."""
    from facexlib.parsing.parsenet import ParseNet

    from mpcnet.checkpoint import load_model_file
    from mpcnet.weights import WeightsError, resolve

    try:
        path = resolve("parsenet")
    except WeightsError:
        return None
    net = ParseNet(in_size=FACE_SIZE, out_size=FACE_SIZE, parsing_ch=len(FACEXLIB_PARTS))
    load_model_file(path, into=net)
    return net.eval().to(device)


def parse_labels(parsenet, faces_bgr: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
    """Class-index maps of restored 512² float32 BGR faces."""
    batch = torch.stack(img2tensor(list(faces_bgr))) * 2 - 1
    with torch.inference_mode():
        logits = parsenet(batch.to(device))[0]
    return list(logits.argmax(dim=1).cpu().numpy())


def paste_face(canvas: np.ndarray, face: np.ndarray, mask: np.ndarray, inverse: np.ndarray) -> None:
    """Blend ``face`` (aligned crop, float32) into ``canvas`` (H×W×3, float32 in [0, 1] or the
    photo's uint8/uint16) in place, through the crop→canvas map ``inverse`` and the soft ``mask``.
    Only the face's bounding box is warped and blended, in float32, :data:`PASTE_ROWS` rows at a
    time: a close-up on a 36 MP photo at ×2 spans 25 MP, which would otherwise take 1.5 GB of
    float32 temporaries."""
    size = face.shape[0]
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float32) @ inverse.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return  # the face lies wholly outside the canvas (cv2 would read a 0-wide box as "the source's size")
    top = 1.0 if canvas.dtype == np.float32 else float(np.iinfo(canvas.dtype).max)
    for row in range(y0, y1, PASTE_ROWS):
        end = min(row + PASTE_ROWS, y1)
        local = inverse.copy()
        local[:, 2] -= (x0, row)
        box = (x1 - x0, end - row)
        warped = cv2.warpAffine(face, local, box, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(mask, local, box, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        region = canvas[row:end, x0:x1]
        if top == 1.0:
            region += alpha * (warped - region)
            continue
        blend = region.astype(np.float32) / top
        blend += alpha * (warped - blend)
        region[...] = np.rint(blend.clip(0, 1) * top)
