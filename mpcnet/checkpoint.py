"""The checkpoint format, written and read here only: loaded with ``torch.load(weights_only=True)``
only, saved atomically.

An MPCNet checkpoint is a dict ``{'params' or 'params_ema': state_dict, 'arch': {'type': ...,
**kwargs}, 'meta': {...}}``; :func:`mpcnet.archs.network_from_checkpoint` rebuilds the network it
records. Every model file (ours, a prior, a peer's, a metric's network) is loaded by
:func:`load_model_file`: registry name or path → sha256-verified file → safe load → state dict, and
each failure is one :class:`~mpcnet.weights.WeightsError` whose message names the file.
"""
from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from mpcnet.utils.safe_output import write_bytes_atomic
from mpcnet.weights import WeightsError, resolve


class CheckpointError(WeightsError, ValueError):
    """A model file that is there but cannot be used; the message says why."""


def load_checkpoint(path: str | Path) -> dict:
    """Load tensors and plain containers only; a pickle that needs more is refused. Only a pickle
    that asks for a Python global gets the security message; random bytes, a truncated or a text
    file are "not a PyTorch checkpoint"."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):
            raise CheckpointError(
                f"{path} needs arbitrary Python objects to load, which could run code; refused "
                "(only tensors and plain containers are accepted)") from exc
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt, or a plain "
                              "pickle rather than torch.save's format)") from exc
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    except Exception as exc:  # noqa: BLE001 - torch's errors for damaged files vary (RuntimeError, KeyError…)
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated: "
                              f"{type(exc).__name__})") from exc


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """``torch.save`` through a temporary file and rename: a crash never leaves a torn file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(Path(path), buffer.getvalue())


def release_checkpoint(src: str | Path, dst: str | Path, meta: dict) -> int:
    """Write the training checkpoint ``src`` as a model file to ship: its network weights (EMA
    preferred, :func:`state_dict_of`) stored as fp16 (they load into fp32 networks), the architecture
    it records and ``meta`` (name, iteration, note). Returns the number of values stored."""
    ckpt = load_checkpoint(src)
    if "arch" not in ckpt:
        raise CheckpointError(f"{src} does not record its architecture ('arch'), so no model file can be made of it")
    params = {k: v.half() if v.is_floating_point() else v for k, v in state_dict_of(ckpt).items()}
    save_checkpoint({"params": params, "arch": ckpt["arch"],
                     "meta": {**meta, "storage": "fp16 parameters (loaded into fp32)"}}, dst)
    return sum(v.numel() for v in params.values())


def state_dict_of(ckpt: dict) -> dict:
    """The network weights in a checkpoint (EMA preferred, as BasicSR saves them)."""
    for key in ("params_ema", "params"):
        if key in ckpt:
            return ckpt[key]
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise CheckpointError(f"no network weights in checkpoint (keys: {sorted(ckpt)[:8]})")


def load_error_detail(exc: Exception) -> str:
    """The first informative line of a ``load_state_dict``/constructor error (PyTorch's first line
    is only "Error(s) in loading state_dict for …:")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else (lines or [""])[0]
    return detail[:300]


def load_state_into(module: torch.nn.Module, state: dict, source: str | os.PathLike, hint: str = "") -> torch.nn.Module:
    """``module.load_state_dict(state, strict=True)``; weights that do not fit are a
    :class:`CheckpointError` naming ``source`` and the first informative line, then ``hint``."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source} does not fit this {type(module).__name__} ({load_error_detail(exc)})"
                              + (f"; {hint}" if hint else "")) from exc
    return module


@dataclass(frozen=True)
class ModelFile:
    """A loaded model file: where it is, the whole checkpoint, and its network weights."""

    path: Path
    checkpoint: dict
    state: dict


def load_model_file(name_or_path: str | os.PathLike, into: torch.nn.Module | None = None,
                    hint: str = "") -> ModelFile:
    """The one way to load a model file: a registry name (its sha256 verified) or a path, read with
    ``weights_only``, its state dict (:func:`state_dict_of`), loaded strictly ``into`` a module when
    one is given (:func:`load_state_into`). Every failure is a :class:`~mpcnet.weights.WeightsError`
    (a :class:`CheckpointError` once the file is found)."""
    path = resolve(name_or_path)
    checkpoint = load_checkpoint(path)
    try:
        state = state_dict_of(checkpoint)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if into is not None:
        load_state_into(into, state, name_or_path, hint)
    return ModelFile(path, checkpoint, state)
