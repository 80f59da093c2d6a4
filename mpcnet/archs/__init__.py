"""Importing this package registers every `*_arch.py` module in it with BasicSR's registry; a
checkpoint that records its architecture is rebuilt here (:func:`network_from_checkpoint`)."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from mpcnet.checkpoint import CheckpointError, load_error_detail, load_model_file, load_state_into, state_dict_of

_modules = [importlib.import_module(f"mpcnet.archs.{p.stem}") for p in sorted(Path(__file__).parent.glob("*_arch.py"))]


def network_from_checkpoint(ckpt: dict, source: str | os.PathLike = "the checkpoint") -> torch.nn.Module:
    """The registered architecture recorded in ``ckpt['arch']``, built with its kwargs and the
    checkpoint's weights loaded strictly, in eval mode (``ckpt`` is not consumed). A checkpoint that
    records no architecture, or one this version cannot build, is a :class:`CheckpointError`."""
    arch = dict(ckpt.get("arch") or {})
    if "type" not in arch:
        raise CheckpointError(f"{source} does not record its architecture ('arch': {{'type': ...}})")
    name = arch.pop("type")
    try:
        net = ARCH_REGISTRY.get(name)(**arch)
    except (KeyError, TypeError, ValueError) as exc:  # an unknown arch, or kwargs of another version
        raise CheckpointError(f"{source} records a {name} this version of mpcnet cannot build "
                              f"({load_error_detail(exc)})") from exc
    return load_state_into(net, state_dict_of(ckpt), source, "was it saved by another version of mpcnet?").eval()


def load_network(name_or_path: str | os.PathLike) -> tuple[torch.nn.Module, int]:
    """The network a checkpoint (registry name or path) records, and its face size (``out_size``)."""
    model = load_model_file(name_or_path)
    return network_from_checkpoint(model.checkpoint, model.path), int(model.checkpoint["arch"].get("out_size", 512))
