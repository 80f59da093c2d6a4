"""The face network outside PyTorch: ONNX export with a check against PyTorch (:mod:`.export`),
static int8 quantisation (:mod:`.quantize`) and an ONNX Runtime backend for ``restore`` (:mod:`.runtime`).

onnx, onnxscript (PyTorch's ONNX exporter) and onnxruntime are the optional extra ``onnx``."""
from __future__ import annotations

import importlib

CALIBRATION_FACES = 8  # int8 calibration set by default: the first 8 faces (name order) of the folder given


class OnnxUnavailable(Exception):
    """The optional ONNX packages are missing; the message says what to install."""


def require(*modules: str) -> None:
    """Import ``modules`` or raise :class:`OnnxUnavailable` naming the extra that provides them."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise OnnxUnavailable(f"{', '.join(missing)} not installed: ONNX export and the onnxruntime backend need "
                              "the optional extra (pip install 'mpcnet[onnx]', or scripts/setup.sh test)")
