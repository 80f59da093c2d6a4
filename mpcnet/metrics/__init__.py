"""Section 4.2's metrics: PSNR/SSIM (8-bit RGB), LPIPS, FID, NIQE, and ArcFace identity similarity.

Metrics that need network weights raise :class:`MetricUnavailable` with a one-line reason when the
weights (``mpcnet weights list``) are absent; the eval driver reports them as skipped.
"""
from pathlib import Path

from mpcnet.weights import WeightsError, resolve

# Every metric, and whether higher is better (the arrows of Tables 3 and 7).
METRICS = {"psnr": True, "ssim": True, "lpips": False, "identity": True, "niqe": False, "fid": False}


class MetricUnavailable(Exception):
    """A metric that cannot be computed here; the message says why."""


def metric_weights(name: str) -> Path:
    """The verified registry file ``name``, or :class:`MetricUnavailable` saying why it cannot be used."""
    try:
        return resolve(name)
    except WeightsError as exc:
        raise MetricUnavailable(str(exc)) from exc
