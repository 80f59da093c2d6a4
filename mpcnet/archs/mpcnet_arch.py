"""MPCNet: U-shaped restoration network with a noise-free StyleGAN2 prior and a parsing prior fused
by APFF blocks (paper section 3.2–3.3, Fig. 2)."""
from __future__ import annotations

import math

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from mpcnet.archs.apff_arch import APFF
from mpcnet.archs.parsenet_arch import MPCParseNet
from mpcnet.archs.stylegan2_nonoise_arch import StyleGAN2GeneratorNoNoise, stylegan_channels
from mpcnet.checkpoint import load_model_file, load_state_into

PRIOR_PATH_KWARGS = ('gan_prior_path', 'parse_prior_path')


def load_prior(module: nn.Module, name_or_path: str, prefix: str) -> None:
    """Load a registry name or a file (``params_ema``/``params``/bare state dict) strictly into ``module``:
    the prior's own file, or a whole MPCNet file, whose ``prefix.*`` weights are that prior."""
    state = load_model_file(name_or_path).state
    inside = {key[len(prefix) + 1:]: value for key, value in state.items() if key.startswith(prefix + ".")}
    load_state_into(module, inside or state, name_or_path,
                    hint="build MPCNet with the prior's channel_multiplier/narrow/num_style_feat/num_mlp (the public "
                    "FFHQ-512 StyleGAN2 is channel_multiplier=1, narrow=1, num_style_feat=512, num_mlp=8)")


class DownResBlock(nn.Module):
    """A down-sampling residual block of the U-Net encoder (eq. 2): a 3×3 conv at the input's width
    and size, bilinear ↓2, a 3×3 conv to the output width (LeakyReLU 0.2 after each); the skip is
    ↓2 and a 1×1 conv. Widening after ↓2, as GFPGAN's clean U-Net does, costs less than half of a
    block that widens at full size (facexlib's ``ResidualBlock``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    @staticmethod
    def _half(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x), 0.2, inplace=True)
        out = F.leaky_relu(self.conv2(self._half(out)), 0.2, inplace=True)
        return out + self.skip(self._half(x))


@ARCH_REGISTRY.register()
class MPCNet(nn.Module):
    """Multi-prior collaboration network for blind face restoration.

    Eq. 2: F_latent, F_spatial = Unet(x): a conv and log2(S)−2 down-sampling residual blocks
    (:class:`DownResBlock`) to 4×4 (skips kept per scale). Eq. 3: F_latent = MLP(globalpool(F_spatial)), one latent per StyleGAN
    layer, F_GAN = StyleGAN(F_latent). The decoder is one APFF block (eq. 4–7) per scale 8…S, fed
    F_spatial^j = up(F_out^{j−1}) + skip^j, F_GAN^j and F_parse^j; a 1×1 ToRGB conv gives I_HQ.

    Input and output: (B, 3, S, S) RGB in [-1, 1] (output not clamped). Width per scale is
    GFPGAN's table (``channel_multiplier``) times ``narrow``, shared by the U-Net, the APFF
    blocks and the StyleGAN prior (AdaIN needs equal channels). ``channel_multiplier=1`` by default:
    the layout of the public FFHQ-512 prior in ``weights.yaml``, and half the compute of 2.
    ``num_mlp`` is the StyleGAN mapping depth (kept to load its checkpoint; unused, latents are
    predicted in W+), and ``num_latent_mlp`` the depth of the encoder's latent MLP. ``parse_*``
    configure the parsing prior (:class:`MPCParseNet`): the paper gives its depth (7 down, 10 res,
    7 up at 512), not its width. ``parse_base_ch=16`` (16 channels at 512 px, doubling per scale
    down to 256) instead of PSFRGAN's 64 cuts its compute at 512 from 223 to 24 GMAC, in line with
    the paper's remark that LQ → parsing is much simpler than restoration.
    ``channel_floor`` (ours) raises every width under it to it: the finest scales of a narrow network
    (8 channels at 256 px for ``narrow=0.125``) at a small cost in compute; without the GAN prior only,
    since AdaIN needs the prior's widths. :func:`mpcnet.archs.widen_checkpoint` starts a floored network
    from a narrower one's weights, giving the same output.
    ``residual=True`` (ours, not the paper's) makes ToRGB predict a correction on top of the input,
    I_HQ = I_LQ + ToRGB(F_out): the untrained network is the identity, so it starts from "do no harm"
    and only has to learn what the bicubic-upsampled LQ lacks.
    ``gan_prior_path``/``parse_prior_path`` (registry names or files) load pretrained priors; they are not needed to rebuild a saved network (see :attr:`arch_config`).
    Priors are frozen by default and then stay in eval mode; parts off the restoration path
    (StyleGAN mapping and ToRGB layers, ParseNet output convs) never train.
    """

    def __init__(self, out_size=512, num_style_feat=512, channel_multiplier=1, narrow=1.0, num_mlp=8,
                 num_latent_mlp=2, num_rcab=2, use_gan_prior=True, use_adain=True, use_parse_prior=True,
                 use_sft=True, freeze_gan=True, freeze_parse=True, parse_min_feat_size=4, parse_base_ch=16,
                 parse_res_depth=10, parse_max_ch=256, residual=False, channel_floor=0, gan_prior_path=None,
                 parse_prior_path=None):
        super().__init__()
        # the checkpoint's 'arch': every constructor kwarg but the prior files (the state dict holds the priors)
        kwargs = dict(locals())
        self.arch_config = {'type': type(self).__name__}
        self.arch_config.update((k, v) for k, v in kwargs.items() if k not in ('self', '__class__', *PRIOR_PATH_KWARGS))
        self.out_size = out_size
        self.log_size = int(math.log2(out_size))
        if 2**self.log_size != out_size or out_size < 8:
            raise ValueError(f"MPCNet out_size must be a power of two ≥ 8, got {out_size}")
        self.freeze_gan, self.freeze_parse, self.residual = freeze_gan, freeze_parse, residual
        ch = stylegan_channels(channel_multiplier, narrow)
        if channel_floor and use_gan_prior:
            raise ValueError("channel_floor widens the U-Net and APFF blocks past the StyleGAN prior's widths, "
                             "which AdaIN must match: use it with use_gan_prior=False")
        ch = {s: max(c, channel_floor) for s, c in ch.items()}
        self.scales = [2**i for i in range(3, self.log_size + 1)]

        # U-Net encoder (eq. 2)
        self.conv_first = nn.Sequential(nn.Conv2d(3, ch[out_size], 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.down = nn.ModuleList(DownResBlock(ch[s], ch[s // 2]) for s in reversed(self.scales))
        self.final_conv = nn.Sequential(nn.Conv2d(ch[4], ch[4], 3, 1, 1), nn.LeakyReLU(0.2, True))

        # GAN prior and latent MLP (eq. 3)
        self.stylegan = self.latent_mlp = None
        if use_gan_prior:
            self.stylegan = StyleGAN2GeneratorNoNoise(out_size, num_style_feat, num_mlp, channel_multiplier, narrow)
            layers, width = [], ch[4]
            for _ in range(num_latent_mlp - 1):
                layers += [nn.Linear(width, num_style_feat), nn.LeakyReLU(0.2, True)]
                width = num_style_feat
            layers.append(nn.Linear(width, self.stylegan.num_latent * num_style_feat))
            self.latent_mlp = nn.Sequential(*layers)

        # parsing prior
        self.parsenet = None
        parse_ch = {}
        if use_parse_prior:
            self.parsenet = MPCParseNet(out_size, out_size, parse_min_feat_size, parse_base_ch, res_depth=parse_res_depth,
                                        ch_range=(min(32, parse_base_ch), parse_max_ch))
            parse_ch = self.parsenet.feature_channels()
            # scales under the parser's smallest map get that map, average-pooled
            parse_ch = {s: parse_ch.get(s, parse_ch[self.parsenet.min_feat_size]) for s in self.scales}

        # decoder: one APFF block per scale
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[s // 2], ch[s], 3, 1, 1), nn.LeakyReLU(0.2, True),
                          nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)) for s in self.scales)
        self.apff = nn.ModuleList(
            APFF(ch[s], parse_ch.get(s, 0), num_rcab, use_gan_prior, use_adain, use_parse_prior, use_sft)
            for s in self.scales)
        self.to_rgb = nn.Conv2d(ch[out_size], 3, 1)
        if residual:  # the untrained network is exactly the identity
            nn.init.zeros_(self.to_rgb.weight)
            nn.init.zeros_(self.to_rgb.bias)

        if use_gan_prior:
            self._freeze(self.stylegan if freeze_gan else
                         [self.stylegan.style_mlp, self.stylegan.to_rgb1, self.stylegan.to_rgbs])
        if use_parse_prior:
            self._freeze(self.parsenet if freeze_parse else [self.parsenet.out_img_conv, self.parsenet.out_mask_conv])
        if gan_prior_path or parse_prior_path:
            self.load_priors(gan_prior_path, parse_prior_path)

    @staticmethod
    def _freeze(modules) -> None:
        for m in modules if isinstance(modules, list) else [modules]:
            m.requires_grad_(False)

    def load_priors(self, gan_prior: str | None = None, parse_prior: str | None = None) -> None:
        """Load pretrained prior weights (registry names such as ``stylegan2-ffhq512-clean`` and
        ``parsenet``, or files; a whole MPCNet file gives its own priors) into :attr:`stylegan` and :attr:`parsenet`."""
        if gan_prior:
            if self.stylegan is None:
                raise ValueError("gan prior weights given, but this MPCNet is built with use_gan_prior=False")
            load_prior(self.stylegan, gan_prior, "stylegan")
        if parse_prior:
            if self.parsenet is None:
                raise ValueError("parse prior weights given, but this MPCNet is built with use_parse_prior=False")
            load_prior(self.parsenet, parse_prior, "parsenet")

    def train(self, mode: bool = True):
        """Frozen priors stay in eval mode (BatchNorm statistics of the parser are kept)."""
        super().train(mode)
        if self.stylegan is not None and self.freeze_gan:
            self.stylegan.eval()
        if self.parsenet is not None and self.freeze_parse:
            self.parsenet.eval()
        return self

    def encode(self, x: torch.Tensor):
        """Eq. 2: (F_spatial at 4×4, encoder skips by scale)."""
        feat = self.conv_first(x)
        skips = {feat.shape[-1]: feat}
        for block in self.down:
            feat = block(feat)
            skips[feat.shape[-1]] = feat
        return self.final_conv(feat), skips

    def parse_features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """F_parse^j for every decoder scale (a frozen parser runs without grad)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_parse):
            feats = self.parsenet.features(x)
        src = feats[self.parsenet.min_feat_size]
        return {s: feats[s] if s in feats else F.adaptive_avg_pool2d(src, s) for s in self.scales}

    def forward(self, x: torch.Tensor, return_parse: bool = False):
        """I_HQ for I_LQ; with ``return_parse`` also the parser's 19-class logits (None without parse prior)."""
        if x.shape[-2:] != (self.out_size, self.out_size):
            raise ValueError(f"MPCNet({self.out_size}) needs {self.out_size}×{self.out_size} input, got "
                             f"{tuple(x.shape[-2:])}")
        f_spatial, skips = self.encode(x)
        f_gan = f_parse = None
        if self.stylegan is not None:
            latent = self.latent_mlp(f_spatial.mean(dim=(2, 3)))
            f_gan = self.stylegan.features(latent.view(x.shape[0], self.stylegan.num_latent, -1))
        if self.parsenet is not None:
            f_parse = self.parse_features(x)
        feat = f_spatial
        for s, up, apff in zip(self.scales, self.up, self.apff):
            feat = apff(up(feat) + skips[s], f_gan[s] if f_gan else None, f_parse[s] if f_parse else None)
        out = self.to_rgb(feat)
        if self.residual:
            out = out + x
        if not return_parse:
            return out
        return out, (self.parsenet.out_mask_conv(f_parse[self.out_size]) if f_parse else None)
