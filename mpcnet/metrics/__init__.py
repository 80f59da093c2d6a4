"""Section 4.2's metrics: PSNR/SSIM (8-bit RGB), LPIPS, FID, NIQE, and ArcFace identity similarity.

Metrics that need network weights raise :class:`MetricUnavailable` with a one-line reason when the
weights (``mpcnet weights list``) are absent; the eval driver reports them as skipped.
"""


class MetricUnavailable(Exception):
    """A metric that cannot be computed here; the message says why."""
