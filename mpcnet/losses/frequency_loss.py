"""A patch-wise spectrum loss that needs no pretrained network (ours, like the gradient loss; in
the spirit of the focal frequency loss of Jiang et al., ICCV 2021, without its focal weights)."""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


def patch_amplitudes(x: torch.Tensor, patch: int) -> torch.Tensor:
    """|FFT| of each non-overlapping ``patch``×``patch`` tile of x (B, C, H, W), orthonormal so a tile's
    amplitudes are on the pixels' scale; H and W must be multiples of ``patch``."""
    b, c, h, w = x.shape
    tiles = x.reshape(b, c, h // patch, patch, w // patch, patch).transpose(3, 4)
    spectrum = torch.fft.rfft2(tiles.float(), norm="ortho")
    return torch.sqrt(spectrum.real ** 2 + spectrum.imag ** 2 + 1e-12)


@LOSS_REGISTRY.register()
class PatchFrequencyLoss(nn.Module):
    """λ · ‖ |FFT(out_tile)| − |FFT(gt_tile)| ‖₁ over ``patch``-pixel tiles: each tile must carry the GT's
    energy at every frequency, wherever its edges lie. An L1 on pixels or gradients is minimised by
    the average of the plausible faces, which is blurred; this term is blind to the phase within a
    tile, so it is not, and it pushes the output towards the GT's amount of detail in each region."""

    def __init__(self, loss_weight: float = 1.0, patch: int = 32):
        super().__init__()
        self.loss_weight, self.patch = loss_weight, patch

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * F.l1_loss(patch_amplitudes(pred, self.patch), patch_amplitudes(target, self.patch))
