"""MPCNet's discriminator (section 3.4): spectral normalisation on every layer's weights, for the
hinge adversarial loss of eq. 9."""
from __future__ import annotations

import math

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from mpcnet.archs.stylegan2_nonoise_arch import stylegan_channels


@ARCH_REGISTRY.register()
class MPCDiscriminator(nn.Module):
    """Image → one real/fake score per image (B, 1).

    A 3×3 conv, then per scale S…8 a 3×3 conv and a stride-2 4×4 conv down to 4×4, a 3×3 conv and two
    linear layers; LeakyReLU(0.2) between, spectral norm (Miyato et al., 2018) on every conv and
    linear. Widths: GFPGAN's table (``channel_multiplier``) times ``narrow``.
    """

    def __init__(self, out_size=512, num_in_ch=3, channel_multiplier=1, narrow=0.5):
        super().__init__()
        log_size = int(math.log2(out_size))
        if 2**log_size != out_size or out_size < 8:
            raise ValueError(f"MPCDiscriminator out_size must be a power of two ≥ 8, got {out_size}")
        ch = stylegan_channels(channel_multiplier, narrow)
        act = nn.LeakyReLU(0.2, inplace=True)
        layers = [spectral_norm(nn.Conv2d(num_in_ch, ch[out_size], 3, 1, 1)), act]
        for s in (2**i for i in range(log_size, 2, -1)):
            layers += [spectral_norm(nn.Conv2d(ch[s], ch[s], 3, 1, 1)), act,
                       spectral_norm(nn.Conv2d(ch[s], ch[s // 2], 4, 2, 1)), act]
        layers += [spectral_norm(nn.Conv2d(ch[4], ch[4], 3, 1, 1)), act]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), spectral_norm(nn.Linear(ch[4] * 16, ch[4])), act,
                                  spectral_norm(nn.Linear(ch[4], 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@ARCH_REGISTRY.register()
class MPCPatchDiscriminator(nn.Module):
    """Image → a map of real/fake scores, one per ~46 px patch (B, 1, S/2^n, S/2^n), for eq. 9's hinge
    loss (averaged over the map), with spectral norm on every conv as section 3.4 asks.

    Ours, for narrow CPU-sized networks: ``MPCDiscriminator``'s fifteen spectrally normalised layers
    down to 4×4 shrink the difference between inputs until its score is the same for every image (at
    256 px and ``narrow`` 0.125, hinge loss 2.000 = chance after 60 Adam steps on real against restored
    pool faces, and for ~1,300 iterations of stage 3), so its adversarial term carried nothing. Three
    stride-2 4×4 convs (width ``base_ch``, doubling to ``max_ch``) and two 3×3 convs judge local
    texture, the detail the L1 terms blur, and separate real from restored faces within those steps.
    """

    def __init__(self, num_in_ch=3, base_ch=32, max_ch=128, num_down=3):
        super().__init__()
        act = nn.LeakyReLU(0.2, inplace=True)
        layers, ch = [], num_in_ch
        for i in range(num_down):
            out = min(base_ch * 2**i, max_ch)
            layers += [spectral_norm(nn.Conv2d(ch, out, 4, 2, 1)), act]
            ch = out
        layers += [spectral_norm(nn.Conv2d(ch, ch, 3, 1, 1)), act, spectral_norm(nn.Conv2d(ch, 1, 3, 1, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
