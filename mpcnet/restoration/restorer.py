"""The face network at inference: aligned 512² crops in, restored crops out, in batches, run by
PyTorch (``torch.inference_mode``, channels-last memory, optional bf16 autocast) or by ONNX Runtime
(:class:`~mpcnet.deploy.runtime.OrtNetwork`)."""
from __future__ import annotations

from contextlib import nullcontext

import cv2
import numpy as np
import torch
from basicsr.utils import img2tensor

from mpcnet.archs import load_network
from mpcnet.restoration import BACKENDS, DEFAULT_WEIGHTS
from mpcnet.restoration.align import FACE_SIZE
from mpcnet.utils.dist import pad_batch
from mpcnet.weights import resolve


def channels_last_convs(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with every convolution weight in channels-last (NHWC) memory, in place: ``nn.Conv2d``
    and the StyleGAN prior's modulated convolutions (which modulate the activations, not the
    weights, so one shared weight serves the batch). Measured once on the 2-core CPU at 512 px, the
    whole network took 1.6 s per face instead of 2.1 s in NCHW (compare ``mpcnet benchmark net`` with
    ``--no-channels-last``)."""
    from mpcnet.archs.stylegan2_nonoise_arch import CleanModulatedConv2d

    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=torch.channels_last)
        elif isinstance(module, CleanModulatedConv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
    return net


def network_input(crops: list[np.ndarray], size: int) -> torch.Tensor:
    """float32 BGR [0, 1] crops of one size → the network's (B, 3, size, size) RGB batch in [-1, 1]
    (area-resized when the crops are larger or smaller)."""
    side = crops[0].shape[0]
    inputs = [c if side == size else cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]
    return torch.stack(img2tensor(inputs)) * 2 - 1


def check_backend(backend: str, amp: bool) -> None:
    """What runs the face network: one of :data:`~mpcnet.restoration.BACKENDS`; bf16 autocast
    (``amp``) is PyTorch's, so it needs the torch backend."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")
    if amp and backend != "torch":
        raise ValueError("bf16 autocast (amp) needs the torch backend; an ONNX model runs in the precision it "
                         "was exported in (int8 when exported as int8)")


class FaceRestorer:
    """Runs a restoration network mapping (B,3,S,S) RGB in [-1, 1] to the same, on 512² BGR crops
    (resized to the network's size S; see :meth:`__call__` for the way back): a PyTorch module
    (``channels_last=False`` for networks that need NCHW), or an
    :class:`~mpcnet.deploy.runtime.OrtNetwork` (backend ``onnxruntime``). ``fixed_batch`` runs
    every call at ``batch_size`` faces (:func:`~mpcnet.utils.dist.pad_batch`), so that a face's
    result does not depend on the faces beside it in its batch."""

    def __init__(self, net, size: int = FACE_SIZE, device: str = "cpu", amp: bool = False, batch_size: int = 8,
                 name: str = "network", channels_last: bool = True):
        self.device = torch.device(device)
        self.backend = "torch" if isinstance(net, torch.nn.Module) else "onnxruntime"
        check_backend(self.backend, amp)
        self.channels_last = channels_last and self.backend == "torch"
        if self.backend == "torch":
            net = net.eval().to(self.device)
            net = channels_last_convs(net) if self.channels_last else net
        self.net = net
        self.size, self.amp, self.batch_size, self.name = size, amp, batch_size, name
        self.fixed_batch = False

    @classmethod
    def from_weights(cls, weights: str | None = None, device: str = "cpu", amp: bool = False,
                     batch_size: int = 8, backend: str = "torch") -> FaceRestorer:
        """Build the network recorded in a checkpoint: ``weights`` is a path or registry name, None
        the bundled default. Backend ``onnxruntime`` exports it to ONNX first (once: the export is
        cached, :func:`~mpcnet.deploy.export.cached_export`), or takes an ``.onnx`` file written by
        ``mpcnet export onnx`` (fp32 or int8)."""
        check_backend(backend, amp)
        if backend == "onnxruntime":
            from mpcnet.deploy import require

            require("onnxruntime")  # before any work; the exporter's packages only if it must export
        name = str(weights or DEFAULT_WEIGHTS)
        path = resolve(name)
        if path.suffix.lower() == ".onnx":
            if backend != "onnxruntime":
                raise ValueError(f"{path} is an ONNX model: it runs on the onnxruntime backend")
            from mpcnet.deploy.runtime import OrtNetwork

            net = OrtNetwork(path, device)
            return cls(net, net.size, device, amp, batch_size, name)
        if backend == "onnxruntime":
            from mpcnet.deploy.export import cached_export
            from mpcnet.deploy.runtime import OrtNetwork

            net = OrtNetwork(cached_export(path, name), device)
            return cls(net, net.size, device, amp, batch_size, name)
        net, size = load_network(path)
        return cls(net, size, device, amp, batch_size, name)

    def _autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @property
    def parses(self) -> bool:
        """The network has a parsing prior (MPCNet's ParseNet): each face's parsing comes with it."""
        return self.net.parses if self.backend == "onnxruntime" else getattr(self.net, "parsenet", None) is not None

    def run_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward pass on a (B,3,S,S) batch in [-1, 1]: float32 output in [-1, 1], and, when the
        network has a parsing prior, its class map (B,S,S) — the frozen prior is computed once and
        serves both the network and the paste mask."""
        if self.backend == "onnxruntime":
            image, labels = self.net(x)
            return image.clamp(-1, 1), labels
        x = x.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        with torch.inference_mode():
            with self._autocast():
                out = self.net(x, return_parse=True) if self.parses else self.net(x)
            image, extra = out if isinstance(out, (tuple, list)) else (out, None)  # GFPGAN-style (image, extras)
            return image.float().clamp(-1, 1), (extra.argmax(dim=1) if self.parses else None)

    def __call__(self, crops: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Restore float32 BGR [0, 1] crops (any equal size): ``(face, labels)`` at the crops' size,
        ``labels`` the parsing prior's class map (uint8) or None.

        A crop larger than the network is restored at its own resolution: the network's change at
        its size, restored − input, is upsampled and added to the crop, so the detail the crop
        already has above the network's resolution is kept (not replaced by an upscale)."""
        restored = []
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            side = chunk[0].shape[0]
            x = network_input(chunk, self.size)
            out, labels = self.run_tensor(pad_batch(x, self.batch_size) if self.fixed_batch else x)
            out, labels = out[:len(chunk)], labels if labels is None else labels[:len(chunk)]
            inputs, out = (((t + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()[..., ::-1] for t in (x, out))
            labels = [None] * len(out) if labels is None else labels.to(torch.uint8).cpu().numpy()
            for crop, small, face, label in zip(chunk, inputs, out, labels):
                face = np.ascontiguousarray(face)
                if side > self.size:
                    change = cv2.resize(face - small, (side, side), interpolation=cv2.INTER_CUBIC)
                    face = (crop + change).clip(0, 1)
                elif side < self.size:
                    face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA).clip(0, 1)
                if label is not None and side != self.size:
                    label = cv2.resize(label, (side, side), interpolation=cv2.INTER_NEAREST)
                restored.append((face, label))
        return restored
