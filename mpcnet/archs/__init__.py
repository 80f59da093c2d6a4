"""Importing this package registers every `*_arch.py` module in it with BasicSR's registry; a
checkpoint that records its architecture is rebuilt here (:func:`network_from_checkpoint`), or
rebuilt wider with the same output (:func:`widen_checkpoint`)."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from mpcnet.checkpoint import (
    CheckpointError,
    load_error_detail,
    load_model_file,
    load_state_into,
    save_checkpoint,
    state_dict_of,
)

_modules = [importlib.import_module(f"mpcnet.archs.{p.stem}") for p in sorted(Path(__file__).parent.glob("*_arch.py"))]


def network_from_checkpoint(ckpt: dict, source: str | os.PathLike = "the checkpoint") -> torch.nn.Module:
    """The registered architecture recorded in ``ckpt['arch']``, built with its kwargs and the
    checkpoint's weights loaded strictly, in eval mode (``ckpt`` is not consumed). A checkpoint that
    records no architecture, or one this version cannot build, is a :class:`CheckpointError`."""
    return load_state_into(_build(ckpt, source), state_dict_of(ckpt), source,
                           "was it saved by another version of mpcnet?").eval()


def _build(ckpt: dict, source: str | os.PathLike, **arch_changes) -> torch.nn.Module:
    """The registered architecture ``ckpt['arch']`` records, with ``arch_changes``, freshly initialised."""
    kwargs = {**(ckpt.get("arch") or {}), **arch_changes}
    if "type" not in kwargs:
        raise CheckpointError(f"{source} does not record its architecture ('arch': {{'type': ...}})")
    name = kwargs.pop("type")
    try:
        return ARCH_REGISTRY.get(name)(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:  # an unknown arch, or kwargs of another version
        raise CheckpointError(f"{source} records a {name} this version of mpcnet cannot build "
                              f"({load_error_detail(exc)})") from exc


def widen_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, **arch_changes) -> dict:
    """Write the model ``src`` (registry name or path) rebuilt with ``arch_changes`` that only widen its
    layers (MPCNet's ``channel_floor``) as a checkpoint ``dst`` that computes the same output: every
    weight keeps its values in its leading slice, new output channels keep the wider network's own
    initialisation, and weights on new input channels start at zero, so no new channel reaches the
    output until training moves them. Holds where channels meet only in convolutions (MPCNet without
    its GAN prior). Returns the new architecture."""
    model = load_model_file(src)
    wide = _build(model.checkpoint, src, **arch_changes)
    state = wide.state_dict()
    if set(state) != set(model.state):
        raise CheckpointError(f"{arch_changes} changes which weights the network has, not only their widths")
    for key, new in state.items():
        old = model.state[key].to(new.dtype)
        if old.dim() != new.dim() or any(o > n for o, n in zip(old.shape, new.shape)):
            raise CheckpointError(f"{arch_changes} narrows {key} ({tuple(old.shape)} to {tuple(new.shape)})")
        if old.dim() > 1:
            new[:, old.shape[1]:] = 0
        new[tuple(slice(0, n) for n in old.shape)] = old
    save_checkpoint({"params": state, "arch": wide.arch_config,
                     "meta": {"widened_from": str(src), "arch_changes": arch_changes}}, dst)
    return wide.arch_config


def load_network(name_or_path: str | os.PathLike) -> tuple[torch.nn.Module, int]:
    """The network a checkpoint (registry name or path) records, and its face size (``out_size``)."""
    model = load_model_file(name_or_path)
    return network_from_checkpoint(model.checkpoint, model.path), int(model.checkpoint["arch"].get("out_size", 512))
