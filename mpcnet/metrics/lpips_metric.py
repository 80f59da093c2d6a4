"""LPIPS (Zhang et al. 2018) with the ``lpips`` package's AlexNet linear heads (v0.1, shipped in the wheel).

The package would fetch its AlexNet backbone from torchvision's hub at run time; we build it with
random weights instead and load torchvision's ImageNet AlexNet file through the weights registry
('lpips-alex', sha256-verified), so nothing downloads.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from mpcnet.checkpoint import load_model_file
from mpcnet.metrics import MetricUnavailable, model_file_needed
from mpcnet.metrics.pixel import bgr_to_tensor

WEIGHTS_NAME = "lpips-alex"


class LPIPS:
    """LPIPS distance between two images; 0 for identical images, lower is better."""

    def __init__(self, backbone: Path | None = None, device: str = "cpu"):
        try:
            import lpips
        except ImportError as exc:
            raise MetricUnavailable("the 'lpips' package is not installed (pip install lpips)") from exc
        with model_file_needed():
            tv_state = load_model_file(backbone or WEIGHTS_NAME).state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        self.net.net.load_state_dict(_alexnet_slices(tv_state, self.net.net.state_dict()))
        self.net.eval().to(device)
        self.device = device

    @torch.no_grad()
    def __call__(self, restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
        a, b = bgr_to_tensor(restored_bgr).to(self.device), bgr_to_tensor(gt_bgr).to(self.device)
        return float(self.net(a, b).item())


def _alexnet_slices(tv_state: dict, lpips_state: dict) -> dict:
    """torchvision's ``features.{i}.*`` keys renamed to lpips' ``slice{k}.{i}.*`` layout."""
    by_index = {tuple(k.split(".")[1:]): k for k in lpips_state}  # ('0', 'weight') -> 'slice1.0.weight'
    renamed = {}
    for key, value in tv_state.items():
        parts = key.split(".")
        if parts[0] == "features" and tuple(parts[1:]) in by_index:
            renamed[by_index[tuple(parts[1:])]] = value
    missing = set(lpips_state) - set(renamed)
    if missing:
        raise MetricUnavailable(f"the LPIPS backbone file is not torchvision's AlexNet (missing {sorted(missing)[0]})")
    return renamed
