"""The noise-free StyleGAN2 prior of MPCNet (section 3.2.2, eq. 3, Fig. 3).

The weight layout is that of GFPGAN/BasicSR's ``StyleGAN2GeneratorClean``, so a public FFHQ
checkpoint of that layout loads with ``strict=True``; its noise inputs (the per-layer noise
strengths and the stored noise buffers) are dropped on load, as the paper abandons them.
"""
from __future__ import annotations

import math

import torch
from basicsr.archs.arch_util import default_init_weights
from basicsr.archs.stylegan2_bilinear_arch import ConstantInput, NormStyleCode
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F


def stylegan_channels(channel_multiplier: float = 2, narrow: float = 1.0) -> dict[int, int]:
    """Feature width per resolution, StyleGAN2/GFPGAN's table scaled by ``narrow``."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {size: max(1, int(ch * narrow)) for size, ch in base.items()}


class CleanModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution (no bias), in the clean layout: w' = w·s, demodulated.

    The weight is held as (out, in, k, k) so the module takes ``channels_last``; state dicts keep
    the clean layout's (1, out, in, k, k) shape in both directions.
    """

    def __init__(self, in_channels, out_channels, kernel_size, num_style_feat, demodulate=True, upsample=False,
                 eps=1e-8):
        super().__init__()
        self.out_channels = out_channels
        self.demodulate = demodulate
        self.upsample = upsample
        self.eps = eps
        self.modulation = nn.Linear(num_style_feat, in_channels, bias=True)
        default_init_weights(self.modulation, scale=1, bias_fill=1, a=0, mode='fan_in', nonlinearity='linear')
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / math.sqrt(in_channels * kernel_size**2))
        self.padding = kernel_size // 2
        self._register_state_dict_hook(_weight_to_clean_layout)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        weight = state_dict.get(prefix + 'weight')
        if weight is not None and weight.ndim == 5:
            state_dict[prefix + 'weight'] = weight[0]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """conv(x, w·s) demodulated, computed as StyleGAN2's unfused form: conv(x·s, w)·d with
        d = rsqrt(Σ_{in,k} (w·s)²) = rsqrt(s² · Σ_k w²). One shared convolution for the whole batch,
        so the weights can be channels-last and the ONNX graph keeps a dynamic batch (a grouped
        convolution with one group per sample fixes the batch size)."""
        b, c = x.shape[:2]
        s = self.modulation(style)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
        out = F.conv2d(x * s.view(b, c, 1, 1), self.weight, padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt(s.square() @ self.weight.square().sum([2, 3]).t() + self.eps)
            out = out * d.view(b, self.out_channels, 1, 1)
        return out


def _weight_to_clean_layout(module, state_dict, prefix, local_metadata):
    state_dict[prefix + 'weight'] = state_dict[prefix + 'weight'].unsqueeze(0)


class StyleConvNoNoise(nn.Module):
    """StyleGAN2 style conv without the noise input: lrelu(√2·modconv(x, s) + bias) (Fig. 4)."""

    def __init__(self, in_channels, out_channels, num_style_feat, upsample=False):
        super().__init__()
        self.modulated_conv = CleanModulatedConv2d(in_channels, out_channels, 3, num_style_feat, upsample=upsample)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.activate = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.activate(self.modulated_conv(x, style) * 2**0.5 + self.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + 'weight', None)  # the noise strength of the clean layout: unused here
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ToRGBClean(nn.Module):
    """1×1 modulated conv to RGB (no demodulation), added to the upsampled previous RGB."""

    def __init__(self, in_channels, num_style_feat, upsample=True):
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = CleanModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2, mode='bilinear', align_corners=False)
            out = out + skip
        return out


@ARCH_REGISTRY.register()
class StyleGAN2GeneratorNoNoise(nn.Module):
    """StyleGAN2 synthesis network with no noise inputs (paper section 3.2.2).

    ``F_GAN = StyleGAN(F_latent)`` (eq. 3): :meth:`features` gives the feature map after the two
    style convs of every resolution 8…out_size (the F_GAN^j of the APFF blocks). Deterministic:
    the same latent always gives the same output.
    """

    def __init__(self, out_size=512, num_style_feat=512, num_mlp=8, channel_multiplier=2, narrow=1.0):
        super().__init__()
        self.num_style_feat = num_style_feat
        self.log_size = int(math.log2(out_size))
        if 2**self.log_size != out_size or out_size < 8:
            raise ValueError(f"StyleGAN2 out_size must be a power of two ≥ 8, got {out_size}")
        self.num_latent = self.log_size * 2 - 2
        self.channels = stylegan_channels(channel_multiplier, narrow)

        mlp = [NormStyleCode()]
        for _ in range(num_mlp):
            mlp += [nn.Linear(num_style_feat, num_style_feat), nn.LeakyReLU(negative_slope=0.2, inplace=True)]
        self.style_mlp = nn.Sequential(*mlp)
        default_init_weights(self.style_mlp, scale=1, bias_fill=0, a=0.2, mode='fan_in', nonlinearity='leaky_relu')

        ch4 = self.channels[4]
        self.constant_input = ConstantInput(ch4, size=4)
        self.style_conv1 = StyleConvNoNoise(ch4, ch4, num_style_feat)
        self.to_rgb1 = ToRGBClean(ch4, num_style_feat, upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch4
        for i in range(3, self.log_size + 1):
            out_ch = self.channels[2**i]
            self.style_convs.append(StyleConvNoNoise(in_ch, out_ch, num_style_feat, upsample=True))
            self.style_convs.append(StyleConvNoNoise(out_ch, out_ch, num_style_feat))
            self.to_rgbs.append(ToRGBClean(out_ch, num_style_feat))
            in_ch = out_ch

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix + 'noises.')]:
            del state_dict[key]  # the clean layout's stored noise maps: no noise inputs here
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _synthesis(self, latent: torch.Tensor, rgb: bool):
        """Run the synthesis network on W+ latents (B, num_latent, num_style_feat)."""
        out = self.style_conv1(self.constant_input(latent.shape[0]), latent[:, 0])
        image = self.to_rgb1(out, latent[:, 1]) if rgb else None
        feats = {}
        for j, (conv1, conv2) in enumerate(zip(self.style_convs[::2], self.style_convs[1::2])):
            out = conv2(conv1(out, latent[:, 2 * j + 1]), latent[:, 2 * j + 2])
            feats[out.shape[-1]] = out
            if rgb:
                image = self.to_rgbs[j](out, latent[:, 2 * j + 3], image)
        return image, feats

    def features(self, latent: torch.Tensor) -> dict[int, torch.Tensor]:
        """F_GAN^j by resolution, {8: …, 16: …, …, out_size: …}, for W+ latents (eq. 3); no ToRGB."""
        return self._synthesis(latent, rgb=False)[1]

    def forward(self, styles, input_is_latent=False, truncation=1.0, truncation_latent=None, return_latents=False):
        """Generate an image from one style code (B, num_style_feat) or W+ latents (B, num_latent, num_style_feat).

        Same call as ``StyleGAN2GeneratorClean`` (a list of one code), returns ``(image, latent or None)``.
        """
        style = styles[0] if isinstance(styles, (list, tuple)) else styles
        if not input_is_latent:
            style = self.style_mlp(style)
        if truncation < 1:
            style = truncation_latent + truncation * (style - truncation_latent)
        latent = style if style.ndim == 3 else style.unsqueeze(1).repeat(1, self.num_latent, 1)
        image, _ = self._synthesis(latent, rgb=True)
        return image, (latent if return_latents else None)
