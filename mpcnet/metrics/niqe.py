"""NIQE (no-reference, lower is better) with BasicSR's implementation and its shipped pristine parameters.

As BasicSR and the MATLAB reference: on the Y channel (the model was fitted on luminance), 96×96
blocks, no border crop.
"""
from __future__ import annotations

import numpy as np
from basicsr.metrics import calculate_niqe

from mpcnet.metrics.pixel import to_rgb8

BLOCK = 96  # BasicSR's block size


def niqe(bgr: np.ndarray) -> float:
    """NIQE of an H×W×3 BGR image (uint8 or float in [0,1])."""
    h, w = bgr.shape[:2]
    if (h // BLOCK) * (w // BLOCK) < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}×{BLOCK} blocks; the image is {w}×{h}")
    bgr8 = to_rgb8(bgr)[..., ::-1]
    return float(calculate_niqe(bgr8.astype(np.float32), crop_border=0, input_order='HWC', convert_to='y'))
