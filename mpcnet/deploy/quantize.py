"""Static int8 quantisation of an exported model (ONNX Runtime), calibrated on real faces, and its
quality cost: PSNR of its output against the fp32 model's on held-out faces."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch

from mpcnet.deploy import require
from mpcnet.deploy.export import run_batched
from mpcnet.deploy.runtime import INPUT, OrtNetwork


def quantize_int8(model: bytes, calibration: torch.Tensor) -> bytes:
    """The int8 model of an fp32 ONNX model: weights int8 per output channel, activations uint8 with
    ranges from min/max over ``calibration`` (a (N, 3, S, S) batch of real faces in [-1, 1]); QDQ
    format, which ONNX Runtime fuses into integer convolutions and matrix products."""
    require("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Faces(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{INPUT: calibration[i:i + 1].numpy()} for i in range(len(calibration))])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="mpcnet-int8-") as tmp:
        fp32, int8 = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        fp32.write_bytes(model)
        logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process: the exporter already optimised
        quantize_static(str(fp32), str(int8), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return int8.read_bytes()


def psnr_against(reference: bytes, model: bytes, faces: torch.Tensor) -> float:
    """Mean PSNR (dB, images in [0, 1], clamped as ``restore`` clamps) of ``model``'s output against
    ``reference``'s on ``faces``."""
    ref = run_batched(OrtNetwork(reference), faces).clamp(-1, 1).add(1).div(2)
    out = run_batched(OrtNetwork(model), faces).clamp(-1, 1).add(1).div(2)
    mse = (ref - out).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(1 / mse)).mean())
