"""PSNR (eq. 11–12) and SSIM (eq. 13) exactly as section 4.2: BasicSR's implementations on 8-bit RGB;
and the detail ratio (ours): how much edge energy the output has compared with the GT.

MAX = L = 255, k1 = 0.01, k2 = 0.03, 11×11 Gaussian window (σ 1.5), no border crop, all three RGB
channels (SSIM is averaged over channels), not the Y channel.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import img2tensor


def to_rgb8(bgr: np.ndarray) -> np.ndarray:
    """An H×W×3 BGR image (uint8, or float in [0,1]) as uint8 RGB."""
    if bgr.dtype != np.uint8:
        bgr = np.clip(np.round(bgr * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(bgr[..., ::-1])


def bgr_to_tensor(bgr: np.ndarray) -> torch.Tensor:
    """H×W×3 BGR (uint8 or float in [0,1]) → 1×3×H×W RGB in [-1, 1]."""
    img = bgr.astype(np.float32) / 255.0 if bgr.dtype == np.uint8 else bgr.astype(np.float32)
    return img2tensor(img).unsqueeze(0) * 2 - 1


def psnr(restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
    """PSNR in dB on 8-bit RGB; ``inf`` for identical images."""
    return float(calculate_psnr(to_rgb8(restored_bgr), to_rgb8(gt_bgr), crop_border=0, test_y_channel=False))


def ssim(restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
    """SSIM on 8-bit RGB, mean of the per-channel SSIMs; 1 for identical images."""
    return float(calculate_ssim(to_rgb8(restored_bgr), to_rgb8(gt_bgr), crop_border=0, test_y_channel=False))


def gradient_magnitude(bgr: np.ndarray) -> float:
    """Mean Sobel (3×3) gradient magnitude of the 8-bit luma, in grey levels per pixel."""
    gray = cv2.cvtColor(to_rgb8(bgr), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.mean(np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))))


def grad_ratio(restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
    """Detail ratio: :func:`gradient_magnitude` of the output ÷ the GT's (a blurry output < 1,
    over-sharpened or noisy > 1)."""
    return gradient_magnitude(restored_bgr) / max(gradient_magnitude(gt_bgr), 1e-6)
