"""ONNX export of a face network, and the check that ONNX Runtime reproduces PyTorch on real faces."""
from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from mpcnet import archs
from mpcnet.deploy import require
from mpcnet.deploy.runtime import INPUT, META_PARSES, META_SIZE, META_WEIGHTS, OrtNetwork
from mpcnet.utils.safe_output import write_bytes_atomic
from mpcnet.weights import cache_dir, sha256_of

OPSET = 18  # the lowest opset PyTorch's (dynamo) ONNX exporter writes
CHECK_TOLERANCE = 1e-3  # max |ONNX − PyTorch| in fp32, on the [-1, 1] output
CHECK_BATCH = 2


class _Deployed(torch.nn.Module):
    """The exported graph: image, and with a parsing prior its class map (argmax of the logits),
    the two things ``restore`` takes from the network."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.parses = getattr(net, "parsenet", None) is not None

    def forward(self, x: torch.Tensor):
        if not self.parses:
            return self.net(x)
        image, logits = self.net(x, return_parse=True)
        return image, logits.argmax(dim=1)


def export_onnx(net: torch.nn.Module, size: int, name: str = "") -> bytes:
    """The fp32 ONNX model (opset :data:`OPSET`, dynamic batch) of ``net`` for (B, 3, size, size)
    inputs, with its size, parsing output and source recorded in the model's metadata. The StyleGAN2
    prior's modulated convolutions and the parsing prior are part of the graph."""
    require("onnx", "onnxscript")
    import onnx

    wrapper = _Deployed(net.eval().float().cpu())
    x = torch.rand(CHECK_BATCH, 3, size, size) * 2 - 1
    outputs = ["hq", "parse"] if wrapper.parses else ["hq"]
    # the exporter reports its progress on stdout, which belongs to --json
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, (x,), dynamo=True, opset_version=OPSET, input_names=[INPUT],
                                    output_names=outputs, dynamic_shapes=({0: torch.export.Dim("batch")},),
                                    external_data=False, verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {META_SIZE: str(size), META_PARSES: "1" if wrapper.parses else "0",
                                        META_WEIGHTS: name})
    return proto.SerializeToString()


def graph_code_key() -> str:
    """What an export depends on besides the checkpoint: this PyTorch and the source of the
    architectures and of this module, hashed."""
    digest = hashlib.sha256(torch.__version__.encode())
    for file in sorted(Path(archs.__file__).parent.glob("*.py")) + [Path(__file__)]:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def cached_export(source: Path, name: str = "") -> Path | bytes:
    """:func:`export_onnx`'s model of the checkpoint file ``source``, exported once and kept in
    ``$MPCNET_CACHE_DIR/onnx`` under the file's sha256 and :func:`graph_code_key`; a later call
    returns that file without exporting. Where the cache cannot be written, the model's bytes
    (exported on every call)."""
    path = cache_dir() / "onnx" / f"{sha256_of(source)[:24]}-{graph_code_key()}.onnx"
    if path.is_file():
        return path
    net, size = archs.load_network(source)
    model = export_onnx(net, size, name)
    with contextlib.suppress(OSError):  # a read-only cache: nothing kept, as before it existed
        write_bytes_atomic(path, model)
    return model


def load_faces(paths: list[Path], size: int) -> torch.Tensor:
    """Aligned face photos → the network's (N, 3, size, size) input batch in [-1, 1], as ``restore``
    prepares crops."""
    from mpcnet.restoration.restorer import network_input
    from mpcnet.utils.image_io import read_image

    return network_input([read_image(p).float_bgr() for p in paths], size)


def run_batched(fn, faces: torch.Tensor, batch: int = CHECK_BATCH) -> torch.Tensor:
    """``fn`` on ``faces`` in batches of ``batch``, outputs concatenated (the image output only)."""
    outs = []
    for start in range(0, len(faces), batch):
        out = fn(faces[start:start + batch])
        outs.append(out[0] if isinstance(out, (tuple, list)) else out)
    return torch.cat(outs)


def max_abs_difference(net: torch.nn.Module, model: bytes, faces: torch.Tensor) -> float:
    """max |ONNX Runtime − PyTorch| of the output image over ``faces`` (fp32, CPU, unclamped)."""
    reference = _Deployed(net.eval().float().cpu())
    with torch.inference_mode():
        expected = run_batched(reference, faces)
    got = run_batched(OrtNetwork(model), faces)
    return float(np.abs(got.numpy() - expected.numpy()).max())
