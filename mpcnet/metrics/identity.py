"""Identity similarity: cosine similarity of ArcFace embeddings of restored and ground-truth faces.

The network is GFPGAN's ResNet-18 ArcFace (``ResNetArcFace``, IRBlock ×[2,2,2,2], no SE), fed as
GFPGAN feeds it: luminance (0.2989 R + 0.587 G + 0.114 B) in [-1, 1], resized to 128×128. Its file
comes from the weights registry ('arcface'); its layout from the gfpgan package, imported lazily.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mpcnet.checkpoint import load_model_file
from mpcnet.metrics import MetricUnavailable, model_file_needed
from mpcnet.metrics.pixel import bgr_to_tensor

WEIGHTS_NAME = "arcface"


def arcface_input(bgr: np.ndarray, size: int = 128) -> torch.Tensor:
    """1×1×size×size luminance in [-1, 1]."""
    rgb = bgr_to_tensor(bgr)
    gray = (0.2989 * rgb[:, 0] + 0.5870 * rgb[:, 1] + 0.1140 * rgb[:, 2]).unsqueeze(1)
    return F.interpolate(gray, (size, size), mode="bilinear", align_corners=False)


class IdentitySimilarity:
    """Cosine similarity in [-1, 1] of ArcFace embeddings; 1 for identical faces, higher is better."""

    def __init__(self, state_dict: dict | None = None, device: str = "cpu"):
        try:
            from gfpgan.archs.arcface_arch import ResNetArcFace
        except ImportError as exc:
            raise MetricUnavailable("identity similarity needs the gfpgan package (ResNetArcFace layout)") from exc
        if state_dict is None:
            with model_file_needed():
                state_dict = load_model_file(WEIGHTS_NAME).state
        self.net = ResNetArcFace(block="IRBlock", layers=(2, 2, 2, 2), use_se=False)
        self.net.load_state_dict({k.removeprefix("module."): v for k, v in state_dict.items()})
        self.net.eval().to(device)
        self.device = device

    @torch.no_grad()
    def __call__(self, restored_bgr: np.ndarray, gt_bgr: np.ndarray) -> float:
        batch = torch.cat([arcface_input(restored_bgr), arcface_input(gt_bgr)]).to(self.device)
        emb = self.net(batch)
        return float(F.cosine_similarity(emb[:1], emb[1:]).item())
