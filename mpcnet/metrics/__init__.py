"""Section 4.2's metrics: PSNR/SSIM (8-bit RGB), LPIPS, FID, NIQE; ArcFace identity; dlib identity and LMD.

Metrics that need network weights raise :class:`MetricUnavailable` with a one-line reason when the
weights (``mpcnet weights list``) or the package are absent; the eval driver reports them as skipped.
"""
from contextlib import contextmanager

from mpcnet.weights import WeightsError

# Every metric, and whether higher is better (the arrows of Tables 3 and 7); None: closest to 1 is best.
METRICS = {"psnr": True, "ssim": True, "grad_ratio": None, "lpips": False,
           "deg_arcface": False, "cos_arcface": True,
           "deg_dlib": False, "cos_dlib": True, "l2_dlib": False, "lmd_dlib68": False,
           "niqe": False, "fid": False}

# What each metric is, for report headers: a dlib angle must never read as the papers' ArcFace Deg.
DESCRIPTIONS = {
    "psnr": "PSNR, dB, 8-bit RGB",
    "ssim": "SSIM, 8-bit RGB, mean over channels",
    "grad_ratio": "detail: mean Sobel gradient magnitude ÷ the GT's (1 = as detailed as the GT, < 1 blurrier)",
    "lpips": "LPIPS v0.1, AlexNet",
    "deg_arcface": "identity angle, degrees, ArcFace ResNet-18 (GFPGAN's; the papers' Deg)",
    "cos_arcface": "identity cosine, ArcFace ResNet-18 (the papers' IDS)",
    "deg_dlib": "identity angle, degrees, dlib 128-D ResNet — not comparable with ArcFace Deg",
    "cos_dlib": "identity cosine, dlib 128-D ResNet — not comparable with ArcFace IDS",
    "l2_dlib": "identity distance, dlib 128-D ResNet (< 0.6: same person by dlib's threshold)",
    "lmd_dlib68": "landmark distance, px at 512², dlib 68 points (iBUG 300-W) — not the papers' FAN LMD",
    "niqe": "NIQE, Y channel (no reference)",
    "fid": "FID, Inception-v3 (see the FID protocol)",
}


def arrow(metric: str) -> str:
    """The direction of ``metric`` in a table header: ↑ higher is better, ↓ lower, →1 closest to 1."""
    return {True: "↑", False: "↓", None: "→1"}[METRICS[metric]]


class MetricUnavailable(Exception):
    """A metric that cannot be computed here; the message says why."""


@contextmanager
def model_file_needed():
    """A metric's model file that cannot be used (absent, unverified, unreadable: a
    :class:`~mpcnet.weights.WeightsError`) makes the metric :class:`MetricUnavailable`, with the reason."""
    try:
        yield
    except WeightsError as exc:
        raise MetricUnavailable(str(exc)) from exc
