"""Per-pixel cross-entropy for pretraining the parsing prior (stage 1, section 4.1)."""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


@LOSS_REGISTRY.register()
class ParseCELoss(nn.Module):
    """λ · CE(logits (B, 19, H, W), labels (B, H, W) int64); ``ignore_index`` pixels do not count."""

    def __init__(self, loss_weight: float = 1.0, ignore_index: int = 255):
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        return self.loss_weight * F.cross_entropy(logits.float(), labels.long(), ignore_index=self.ignore_index)
