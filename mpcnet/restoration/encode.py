"""A composed photo back into its input's form before it is written: gray stays gray, alpha is
kept (upscaled), 16 bits are kept where the format holds them; and the notes saying what a format
could not keep."""
from __future__ import annotations

import cv2
import numpy as np

from mpcnet.utils.image_io import LoadedImage

_SINGLE_CHANNEL_MODES = {"L", "LA", "I", "I;16", "I;16B", "I;16L", "1"}
_NO_ALPHA = (".jpg", ".jpeg", ".bmp")


def single_channel(image: LoadedImage) -> bool:
    """The file itself has one colour channel (not three equal ones)."""
    return image.mode in _SINGLE_CHANNEL_MODES


def like_input(image: LoadedImage, bgr: np.ndarray, single: bool, ext: str) -> np.ndarray:
    """Composed BGR at the output size → the input's mode (``single``: the file had one channel;
    ``ext``: the output's extension, which decides whether alpha can be kept)."""
    out = bgr
    if image.gray:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        out = gray if single and image.alpha is None else cv2.merge([gray] * 3)
    if image.alpha is not None and ext not in _NO_ALPHA:
        alpha = image.alpha if image.alpha.shape == out.shape[:2] else \
            cv2.resize(image.alpha, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = np.dstack([out, alpha])
    return out


def format_notes(image: LoadedImage, ext: str) -> str:
    """What the output's format ``ext`` cannot keep of the input, in words ('' when nothing)."""
    notes = []
    if image.bit_depth == 16 and ext in (".jpg", ".jpeg", ".webp", ".bmp"):
        notes.append(f"16-bit input written as 8-bit ({ext[1:]} holds 8 bits)")
    if image.alpha is not None and ext in _NO_ALPHA:
        notes.append(f"alpha channel dropped ({ext[1:]} has none)")
    return "; ".join(notes)
