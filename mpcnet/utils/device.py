"""Choosing the compute device: ``auto``, ``cpu``, ``cuda`` (or ``cuda:N``) or ``mps``.

On Apple silicon, operators that PyTorch's MPS backend lacks run on the CPU instead of failing:
``PYTORCH_ENABLE_MPS_FALLBACK`` is read once, when torch is imported, so it is set here, before
that import (the CLI imports torch lazily, after this module)."""
from __future__ import annotations

import os
import sys

# Whether torch runs MPS-missing operators on the CPU: it read the variable when it was imported.
_MPS_FALLBACK = os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK", None if "torch" in sys.modules else "1") == "1"
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

import torch  # noqa: E402 - after the environment variable above

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> tuple[str, str]:
    """``(device, note)`` for a device name: ``auto`` takes CUDA, else MPS (Apple silicon), else
    the CPU; ``cuda:N`` names one GPU (as a launcher's process gets). ``note`` says what happens to
    operators MPS lacks ("" for other devices). Raises ValueError with a one-line reason when the
    device is unknown or absent."""
    kind = "cuda" if name.startswith("cuda:") and name[5:].isdigit() else name
    if kind not in DEVICES:
        raise ValueError(f"the device must be one of {', '.join(DEVICES)}, not '{name}'")
    if kind == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    elif kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name} was asked for but PyTorch sees no CUDA GPU; use the CPU")
    elif kind == "mps" and not _mps_available():
        raise ValueError("device mps was asked for but PyTorch sees no Apple-silicon GPU (MPS); use the CPU")
    if name != "mps":
        return name, ""
    if _MPS_FALLBACK:
        return name, "operators missing on MPS run on the CPU (PyTorch warns once for each)"
    return name, "operators missing on MPS will fail: set PYTORCH_ENABLE_MPS_FALLBACK=1 to run them on the CPU"
