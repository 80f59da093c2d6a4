"""Perceptual term of eq. 8 and Gram-matrix style loss of eq. 10 on VGG(Face) features."""
from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """φ^T φ for a (B, C, H, W) feature map: (B, C, C), computed in fp32."""
    b, c, h, w = feat.shape
    flat = feat.reshape(b, c, h * w).float()
    return flat @ flat.transpose(1, 2)


def style_distance(pred_feat: torch.Tensor, gt_feat: torch.Tensor) -> torch.Tensor:
    """One term of eq. 10: ||φ^Tφ − φ̂^Tφ̂||²_F / (C·H·W), averaged over the batch."""
    b, c, h, w = pred_feat.shape
    diff = gram_matrix(pred_feat) - gram_matrix(gt_feat)
    return diff.pow(2).sum() / (b * c * h * w)


@LOSS_REGISTRY.register()
class MPCPerceptualStyleLoss(nn.Module):
    """Returns ``(perceptual, style)`` for images in [-1, 1].

    perceptual = λ_perc Σ_i ||φ_i(I_HQ) − φ_i(Î_HQ)||_1 over ``perceptual_layers`` (eq. 8, 2nd term);
    style      = λ_style Σ_i ||φ_i^Tφ_i − φ̂_i^Tφ̂_i||² / (C_i·H_i·W_i) over ``style_layers`` (eq. 10).
    A term whose weight is 0 is returned as ``None``. The VGG network is built from ``vgg`` (an ARCH_REGISTRY option dict, by default our
    ``MPCVGGFeatureExtractor``), whose weights resolve through the checked registry, never a download.
    """

    def __init__(self, vgg: dict | None = None,
                 perceptual_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
                 style_layers=("relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 perceptual_weight: float = 1.0, style_weight: float = 0.0):
        super().__init__()
        self.perceptual_layers = list(perceptual_layers)
        self.style_layers = list(style_layers)
        self.perceptual_weight = perceptual_weight
        self.style_weight = style_weight
        vgg = dict(vgg or {"type": "MPCVGGFeatureExtractor"})
        layers = sorted(set(self.perceptual_layers if perceptual_weight else [])
                        | set(self.style_layers if style_weight else []))
        self.vgg = ARCH_REGISTRY.get(vgg.pop("type"))(layer_name_list=layers, **vgg)
        for p in self.vgg.parameters():
            p.requires_grad_(False)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor):
        pred_f = self.vgg((pred + 1) / 2)
        gt_f = self.vgg(((gt + 1) / 2).detach())
        percep = style = None
        if self.perceptual_weight:
            percep = self.perceptual_weight * sum(F.l1_loss(pred_f[k], gt_f[k]) for k in self.perceptual_layers)
        if self.style_weight:
            style = self.style_weight * sum(style_distance(pred_f[k], gt_f[k]) for k in self.style_layers)
        return percep, style
