"""The adaptive prior feature fusion (APFF) block of MPCNet (section 3.3, eq. 4–7, Fig. 4)."""
from __future__ import annotations

import torch
from basicsr.archs.rcan_arch import RCAB
from torch import nn


class AdaIN(nn.Module):
    """Eq. 4: AdaIN(F_GAN, F_spatial) = σ(F_spatial)·(F_GAN − μ(F_GAN))/σ(F_GAN) + μ(F_spatial).

    μ is the per-channel spatial mean and σ the standard deviation (the paper's text swaps the names).
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, f_gan: torch.Tensor, f_spatial: torch.Tensor) -> torch.Tensor:
        var_g, mu_g = torch.var_mean(f_gan, dim=(2, 3), keepdim=True, correction=0)
        var_s, mu_s = torch.var_mean(f_spatial, dim=(2, 3), keepdim=True, correction=0)
        return (f_gan - mu_g) * torch.rsqrt(var_g + self.eps) * torch.sqrt(var_s + self.eps) + mu_s


class SFTParams(nn.Module):
    """Eq. 5: (α, β) = f(F_parse), two 1×1-conv branches as in SFT (Wang et al., 2018b)."""

    def __init__(self, parse_channels: int, hidden_channels: int, out_channels: int):
        super().__init__()

        def branch():
            return nn.Sequential(nn.Conv2d(parse_channels, hidden_channels, 1), nn.LeakyReLU(0.1, inplace=True),
                                 nn.Conv2d(hidden_channels, out_channels, 1))

        self.alpha = branch()
        self.beta = branch()

    def forward(self, f_parse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.alpha(f_parse), self.beta(f_parse)


def pairwise_softmax_gate(f_guide: torch.Tensor) -> torch.Tensor:
    """Eq. 7's softmax(F_guide): a softmax over the pair (GAN half, spatial half) of the 2C guide
    channels, per pixel and channel; returns the GAN half's weight w ∈ (0, 1), C channels.

    softmax((a, b))[0] = sigmoid(a − b), computed in that (cheaper, same) form.
    """
    g, s = f_guide.chunk(2, dim=1)
    return torch.sigmoid(g - s)


class APFF(nn.Module):
    """Adaptive prior feature fusion block (Fig. 4), eq. 4–7:

    A = AdaIN(F_GAN, F_sp); F_g1, F_g2 = conv_g1(A), conv_g2(A); F_s1, F_s2 = conv_s1(R), conv_s2(R)
    with R = RCAB cascade(F_sp); F_guide = α ⊙ concat[F_g1, F_s1] + β with (α, β) = f(F_parse);
    F_out = (F_g2 − F_s2) ⊙ w + F_s2 with w = pairwise softmax of F_guide.

    Ablations (Table 1): ``use_adain=False`` feeds F_GAN to conv_g1/g2 unchanged;
    ``use_sft=False`` replaces the SFT by a 1×1 conv on concat[F_g1, F_s1, F_parse];
    ``use_parse_prior=False`` takes F_guide = concat[F_g1, F_s1]; ``use_gan_prior=False`` has no
    GAN branch and no gate (nothing left to blend): F_out = F_guide, computed from F_s1 alone.
    """

    def __init__(self, channels: int, parse_channels: int = 0, num_rcab: int = 2, use_gan_prior=True,
                 use_adain=True, use_parse_prior=True, use_sft=True):
        super().__init__()
        c = channels
        self.use_gan_prior = use_gan_prior
        self.rcabs = nn.Sequential(*[RCAB(c, squeeze_factor=min(16, c)) for _ in range(num_rcab)])
        self.conv_s1 = nn.Conv2d(c, c, 3, 1, 1)
        guide_ch = c
        if use_gan_prior:
            self.adain = AdaIN() if use_adain else None
            self.conv_g1 = nn.Conv2d(c, c, 3, 1, 1)
            self.conv_g2 = nn.Conv2d(c, c, 3, 1, 1)
            self.conv_s2 = nn.Conv2d(c, c, 3, 1, 1)
            guide_ch = 2 * c
        self.sft = self.fuse = None
        if use_parse_prior:
            if use_sft:
                self.sft = SFTParams(parse_channels, c, guide_ch)
            else:
                self.fuse = nn.Conv2d(guide_ch + parse_channels, guide_ch, 1)

    def guide(self, x: torch.Tensor, f_parse: torch.Tensor | None) -> torch.Tensor:
        """Eq. 6: F_guide = SFT(x | α, β) = α ⊙ x + β, x = concat[F_g1, F_s1]."""
        if self.sft is not None:
            alpha, beta = self.sft(f_parse)
            return alpha * x + beta
        if self.fuse is not None:
            return self.fuse(torch.cat([x, f_parse], dim=1))
        return x

    def forward(self, f_spatial: torch.Tensor, f_gan: torch.Tensor | None = None,
                f_parse: torch.Tensor | None = None) -> torch.Tensor:
        r = self.rcabs(f_spatial)
        f_s1 = self.conv_s1(r)
        if not self.use_gan_prior:
            return self.guide(f_s1, f_parse)
        a = self.adain(f_gan, f_spatial) if self.adain is not None else f_gan
        f_g1, f_g2, f_s2 = self.conv_g1(a), self.conv_g2(a), self.conv_s2(r)
        w = pairwise_softmax_gate(self.guide(torch.cat([f_g1, f_s1], dim=1), f_parse))
        return (f_g2 - f_s2) * w + f_s2
