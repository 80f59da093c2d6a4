"""The parsing-mask prior of MPCNet (section 3.2.3): facexlib's (PSFRGAN's) ParseNet, exposing F_parse^j."""
from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from facexlib.parsing.parsenet import ParseNet
from torch import nn

from mpcnet.parsing_classes import NUM_PARSE_CLASSES


@ARCH_REGISTRY.register()
class MPCParseNet(ParseNet):
    """Encoder-decoder face parser: down-sampling residual blocks, ``res_depth`` residual blocks,
    up-sampling residual blocks, then 19-class logits (``out_mask_conv``) and an image (``out_img_conv``).

    The default ``min_feat_size=4`` is the paper's depth at 512 px (7 down, 10 res, 7 up); with
    ``in_size=out_size=512, min_feat_size=32`` it is facexlib's public ``parsing_parsenet.pth``
    layout (4 down, 10 res, 4 up), whose weights load with ``strict=True``.
    """

    def __init__(self, in_size=512, out_size=512, min_feat_size=4, base_ch=64, parsing_ch=NUM_PARSE_CLASSES,
                 res_depth=10, relu_type='LeakyReLU', norm_type='bn', ch_range=(32, 256)):
        super().__init__(in_size=in_size, out_size=out_size, min_feat_size=min_feat_size, base_ch=base_ch,
                         parsing_ch=parsing_ch, res_depth=res_depth, relu_type=relu_type, norm_type=norm_type,
                         ch_range=list(ch_range))
        self.min_feat_size = min(in_size, min_feat_size)

    def feature_channels(self) -> dict[int, int]:
        """Channels of :meth:`features` by size."""
        body_ch = [m for m in self.encoder.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        chans = {self.min_feat_size: body_ch}
        for i, block in enumerate(self.decoder):
            chans[self.min_feat_size * 2**(i + 1)] = block.conv2.conv2d.out_channels
        return chans

    def features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """F_parse^j by size: the body output at ``min_feat_size`` and every decoder block's output
        (min_feat_size·2 … out_size); ``out_mask_conv`` of the last gives the parsing logits."""
        feat = self.encoder(x)
        feat = feat + self.body(feat)
        feats = {feat.shape[-1]: feat}
        for block in self.decoder:
            feat = block(feat)
            feats[feat.shape[-1]] = feat
        return feats
