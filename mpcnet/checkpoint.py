"""Checkpoints: loaded with ``torch.load(weights_only=True)`` only, saved atomically.

An MPCNet checkpoint is a dict ``{'params' or 'params_ema': state_dict, 'arch': {'type': ...,
**kwargs}, 'meta': {...}}``; ``build_network`` rebuilds the network from it through BasicSR's
ARCH_REGISTRY.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch

from mpcnet.utils.safe_output import write_bytes_atomic


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says why."""


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


def build_network(ckpt: dict) -> torch.nn.Module:
    """Rebuild the registered architecture recorded in ``ckpt['arch']`` and load its weights."""
    from basicsr.utils.registry import ARCH_REGISTRY

    import mpcnet.archs  # noqa: F401 - fills ARCH_REGISTRY

    arch = dict(ckpt.get("arch") or {})
    if "type" not in arch:
        raise CheckpointError("checkpoint does not record its architecture ('arch': {'type': ...})")
    net = ARCH_REGISTRY.get(arch.pop("type"))(**arch)
    net.load_state_dict(state_dict_of(ckpt), strict=True)
    return net.eval()
