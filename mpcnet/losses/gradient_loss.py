"""An edge loss that needs no pretrained network (ours; the paper's perceptual and style losses,
eq. 8 and 10, need VGG/VGGFace weights these machines do not have)."""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y, per channel: (B, C, H, W−1) and (B, C, H−1, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


@LOSS_REGISTRY.register()
class GradientL1Loss(nn.Module):
    """λ · (‖∂x(out) − ∂x(gt)‖₁ + ‖∂y(out) − ∂y(gt)‖₁) / 2: penalises edges that are missing or
    misplaced, which a plain L1 averages away into blur."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        (px, py), (tx, ty) = image_gradients(pred), image_gradients(target)
        return self.loss_weight * (F.l1_loss(px, tx) + F.l1_loss(py, ty)) / 2
