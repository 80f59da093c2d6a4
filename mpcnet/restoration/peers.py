"""Peer restorers run through our own pipeline (``mpcnet eval --method``): the networks the installed
``gfpgan`` package provides, loaded from GFPGAN's released files through the weights registry.

* ``gfpgan``: GFPGANv1Clean, the architecture of GFPGAN v1.3 and v1.4 (``gfpgan-v1.3``, ``gfpgan-v1.4``).
  Its size, widths, mapping depth and SFT layout are read off the file's tensor shapes, so a file of
  another size works too. GFPGANer draws fresh StyleGAN noise on every call; here the noise is the
  file's own stored noise buffers (``randomize_noise=False``), so a run is reproducible.
* ``restoreformer``: RestoreFormer (``restoreformer``), at the released configuration except for the
  widths, codebook and attention levels, which are read off the file.

Both map (B,3,S,S) RGB in [-1, 1] to the same, as GFPGANer feeds them, and run NCHW (GFPGANv1Clean's
``.view`` of its 4×4 features fails on channels-last tensors).
"""
from __future__ import annotations

import contextlib
import io
import re

import torch

from mpcnet.checkpoint import load_model_file, load_state_into
from mpcnet.restoration import PEER_METHODS


class PeerError(Exception):
    """A peer that cannot be built here; the message says what to install or fetch."""


def _count(state: dict, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.fullmatch(k))})


def gfpgan_config(state: dict) -> dict:
    """GFPGANv1Clean's constructor arguments, read off a state dict's shapes."""
    try:
        downs = _count(state, r"conv_body_down\.(\d+)\..*")
        out_size = 2 ** (downs + 2)
        narrow = state["final_conv.weight"].shape[0] / 256  # channels['4'] = 512 · narrow / 2
        first = state["conv_body_first.weight"].shape[0]  # channels[out_size] = 2¹⁴ / out_size · cm · narrow / 2
        channel_multiplier = round(first / (2 ** 14 / out_size * narrow / 2))
        log_size = downs + 2
        num_style_feat = state["final_linear.weight"].shape[0] // (2 * log_size - 2)
        num_mlp = _count(state, r"stylegan_decoder\.style_mlp\.(\d+)\.weight")
        sft_half = state["condition_scale.0.2.weight"].shape[0] == state["conv_body_up.0.conv2.weight"].shape[0]
    except KeyError as exc:
        raise PeerError(f"the weights are not GFPGANv1Clean's (GFPGAN v1.3/v1.4): no {exc.args[0]}") from exc
    if out_size < 64 or channel_multiplier < 1:
        raise PeerError(f"unsupported GFPGANv1Clean layout ({out_size} px, {first} input channels)")
    return dict(out_size=out_size, num_style_feat=num_style_feat, channel_multiplier=channel_multiplier,
                decoder_load_path=None, fix_decoder=False, num_mlp=num_mlp, input_is_latent=True,
                different_w=True, narrow=narrow, sft_half=sft_half)


def restoreformer_config(state: dict) -> dict:
    """RestoreFormer's constructor arguments: widths, depth, codebook and attention levels read off the
    shapes (the head count is not visible in them: the released 8)."""
    try:
        ch = state["encoder.conv_in.weight"].shape[0]
        levels = _count(state, r"encoder\.down\.(\d+)\..*")
        ch_mult = tuple(state[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] // ch for i in range(levels))
        n_embed, embed_dim = state["quantize.embedding.weight"].shape
        z_channels = state["encoder.conv_out.weight"].shape[0]
    except KeyError as exc:
        raise PeerError(f"the weights are not RestoreFormer's: no {exc.args[0]}") from exc
    resolution = 512
    attn = tuple(resolution // 2 ** i for i in range(levels) if f"encoder.down.{i}.attn.0.q.weight" in state)
    return dict(n_embed=n_embed, embed_dim=embed_dim, ch=ch, ch_mult=ch_mult,
                num_res_blocks=_count(state, r"encoder\.down\.0\.block\.(\d+)\..*"),
                attn_resolutions=attn, resolution=resolution, z_channels=z_channels)


class _AsReleased(torch.nn.Module):
    """A peer called as GFPGANer calls it, returning only the restored image."""

    def __init__(self, net: torch.nn.Module, **call_kwargs):
        super().__init__()
        self.net, self.call_kwargs = net, call_kwargs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, **self.call_kwargs)[0]


def build_peer(method: str, weights: str | None = None) -> tuple[torch.nn.Module, int, str]:
    """``(network, input size, weights name)`` of a peer; ``weights`` is a registry name or a file path,
    None the method's default (``PEER_METHODS``)."""
    if method not in PEER_METHODS:
        raise PeerError(f"unknown method '{method}'; peers: {', '.join(PEER_METHODS)}")
    weights = weights or PEER_METHODS[method]
    try:
        if method == "gfpgan":
            from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean as arch
        else:
            from gfpgan.archs.restoreformer_arch import RestoreFormer as arch
    except ImportError as exc:
        raise PeerError(f"the peer {method} needs the gfpgan package (pip install --no-deps gfpgan==1.3.8)") from exc
    state = load_model_file(weights).state
    config = gfpgan_config(state) if method == "gfpgan" else restoreformer_config(state)
    with contextlib.redirect_stdout(io.StringIO()):  # RestoreFormer prints its latent shape; stdout is for --json
        net = arch(**config)
    load_state_into(net, state, weights)
    call = {"return_rgb": False, "randomize_noise": False} if method == "gfpgan" else {}
    return _AsReleased(net, **call).eval(), config.get("out_size", 512), weights
