"""Section 4.2's PSNR/SSIM, the detail ratio and parsing IoU against formulas written here, on
real faces given as float images *off* the 1/255 grid (so rounding vs truncation shows)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from mpcnet.metrics.parsing import class_iou, confusion, mean_iou
from mpcnet.metrics.pixel import bgr_to_tensor, grad_ratio, gradient_magnitude, psnr, ssim, to_rgb8


@pytest.fixture(scope="module")
def pair(hq_faces):
    """A real face and a blurred, noisy copy, both float BGR in [0, 1] with values between the
    8-bit levels (k + 0.3)/255 … (k + 0.7)/255."""
    gt8 = cv2.resize(cv2.imread(str(hq_faces[1])), (96, 96), interpolation=cv2.INTER_AREA)
    out8 = cv2.GaussianBlur(gt8, (0, 0), 1.2)
    rng = np.random.default_rng(4)
    off = lambda img: ((img.astype(np.float64) + rng.uniform(0.3, 0.7, img.shape)) / 255).astype(np.float32)  # noqa: E731
    return off(out8), off(gt8)


def quantise(img: np.ndarray) -> np.ndarray:
    """The 8-bit value nearest to each float sample."""
    return np.floor(img.astype(np.float64) * 255 + 0.5).clip(0, 255)


def reference_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((quantise(a) - quantise(b)) ** 2)
    return 10 * math.log10(255 ** 2 / mse)


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Eq. 13 per channel with an 11×11 Gaussian window (σ 1.5), 'valid' positions only, C1 = (0.01·255)²,
    C2 = (0.03·255)², averaged over the three channels."""
    g = np.exp(-(np.arange(11) - 5) ** 2 / (2 * 1.5 ** 2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(x):  # 'valid' correlation with the window
        h, w = x.shape
        out = np.zeros((h - 10, w - 10))
        for dy in range(11):
            for dx in range(11):
                out += win[dy, dx] * x[dy:dy + h - 10, dx:dx + w - 10]
        return out

    values = []
    for c in range(3):
        x, y = quantise(a)[..., c], quantise(b)[..., c]
        mx, my = filt(x), filt(y)
        vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
        values.append(np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))))
    return float(np.mean(values))


def test_psnr_is_eq11_on_rounded_8bit_values(pair):
    out, gt = pair
    assert psnr(out, gt) == pytest.approx(reference_psnr(out, gt), abs=1e-6)
    truncated = 10 * math.log10(255 ** 2 / np.mean((np.floor(out * 255.0) - np.floor(gt * 255.0)) ** 2))
    assert abs(psnr(out, gt) - truncated) > 0.01  # the inputs are chosen so that rounding matters
    assert psnr(out, gt) == psnr(gt, out)


def test_ssim_is_eq13_with_the_papers_constants(pair):
    out, gt = pair
    assert ssim(out, gt) == pytest.approx(reference_ssim(out, gt), abs=1e-6)
    assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)


def test_channel_order_and_8bit_conversion(pair):
    out, gt = pair
    rgb = to_rgb8(out)
    assert rgb.dtype == np.uint8 and np.array_equal(rgb, quantise(out)[..., ::-1].astype(np.uint8))
    assert np.array_equal(to_rgb8(rgb[..., ::-1].copy()), rgb)  # uint8 passes through, only reordered
    beyond = np.array([[[-0.2, 1.3, 0.5]]], np.float32)  # an unclamped network output
    assert to_rgb8(beyond).tolist() == [[[128, 255, 0]]]
    t = bgr_to_tensor(out)
    assert t.shape == (1, 3, 96, 96)
    torch.testing.assert_close(t[0, 0], torch.from_numpy(out[..., 2]) * 2 - 1)  # red first, in [-1, 1]
    torch.testing.assert_close(bgr_to_tensor(rgb[..., ::-1].copy())[0, 2], torch.from_numpy(rgb[..., 2] / 255.0).float() * 2 - 1)


def test_detail_ratio_is_the_sobel_energy_ratio(pair):
    out, gt = pair

    def energy(img):
        r, g, b = (quantise(img)[..., i] for i in (2, 1, 0))
        y = np.floor(0.299 * r + 0.587 * g + 0.114 * b + 0.5)  # 8-bit luma
        gx = cv2.Sobel(y.astype(np.float32), cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(y.astype(np.float32), cv2.CV_32F, 0, 1)
        return float(np.mean(np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2)))

    assert gradient_magnitude(gt) == pytest.approx(energy(gt), rel=2e-3)
    assert grad_ratio(out, gt) == pytest.approx(energy(out) / energy(gt), rel=3e-3)
    assert grad_ratio(out, gt) < 1 < grad_ratio(gt, out)  # the blurred copy has less detail
    assert grad_ratio(np.zeros_like(gt), np.zeros_like(gt)) == 0.0  # flat GT: no division by zero
    faint = np.zeros((32, 32, 3), np.float32)
    faint[:, 16:] = 1 / 255  # one grey level of edge: mean gradient under 1
    assert 0 < gradient_magnitude(faint) < 1
    assert grad_ratio(gt, faint) == pytest.approx(gradient_magnitude(gt) / gradient_magnitude(faint))


def test_parsing_iou_counts_by_hand():
    ref = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 2, 0]])
    m = confusion(pred, ref, 4)
    assert m.tolist() == [[1, 1, 1, 0], [1, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    # class 0: TP 1, FP 1, FN 2 → 1/4; class 1: TP 2, FP 1, FN 1 → 2/4; class 2: TP 2, FP 1, FN 0 → 2/3
    iou = class_iou(m)
    assert iou[:3].tolist() == pytest.approx([1 / 4, 2 / 4, 2 / 3]) and math.isnan(iou[3])
    assert mean_iou(m) == pytest.approx((1 / 4 + 2 / 4 + 2 / 3) / 3)
    assert mean_iou(m, classes=[1, 2]) == pytest.approx((2 / 4 + 2 / 3) / 2)
    assert math.isnan(mean_iou(m, classes=[3]))
    assert torch.equal(confusion(torch.from_numpy(pred), torch.from_numpy(ref), 4), m)
    one = confusion(np.array([0, 0, 3]), np.array([0, 0, 3]), 4)  # class 3: a single pixel, right
    assert class_iou(one)[3] == 1.0 and mean_iou(one) == 1.0
