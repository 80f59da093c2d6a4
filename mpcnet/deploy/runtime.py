"""An exported MPCNet run by ONNX Runtime, with the calling convention of the PyTorch network in
:class:`~mpcnet.restoration.restorer.FaceRestorer`."""
from __future__ import annotations

import os

import torch

from mpcnet.deploy import OnnxUnavailable, require

INPUT = "lq"
META_SIZE, META_PARSES, META_WEIGHTS = "mpcnet.out_size", "mpcnet.parses", "mpcnet.weights"


class OrtNetwork:
    """(B, 3, S, S) float32 RGB in [-1, 1] → (image, parsing class map or None), run by ONNX
    Runtime's CUDA provider on ``device='cuda'``, else its CPU provider with PyTorch's thread count
    (so that both backends get the same cores). ``model`` is a file or the bytes of one written by
    :func:`mpcnet.deploy.export.export_onnx`, which records the network's size and whether it parses."""

    def __init__(self, model: bytes | str | os.PathLike, device: str = "cpu"):
        require("onnxruntime")
        import onnxruntime as ort

        if torch.device(device).type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise OnnxUnavailable("this onnxruntime has no CUDA provider (install onnxruntime-gpu), "
                                      "or use --device cpu")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        model = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self.session = ort.InferenceSession(model, options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ValueError(f"not a loadable ONNX model: {str(exc).splitlines()[0]}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_SIZE not in meta:
            raise ValueError("this ONNX model was not written by 'mpcnet export onnx' (no mpcnet metadata)")
        self.size = int(meta[META_SIZE])
        self.parses = meta.get(META_PARSES) == "1"
        self.provider = self.session.get_providers()[0]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outs = self.session.run(None, {INPUT: x.detach().float().cpu().contiguous().numpy()})
        return torch.from_numpy(outs[0]), (torch.from_numpy(outs[1]) if self.parses else None)
