"""The face network at inference: aligned 512² crops in, restored crops out, in batches, under
``torch.inference_mode`` with channels-last memory and optional bf16 autocast."""
from __future__ import annotations

from contextlib import nullcontext

import cv2
import numpy as np
import torch
from basicsr.utils import img2tensor

from mpcnet.checkpoint import CheckpointError, build_network, load_checkpoint, load_error_detail
from mpcnet.restoration import DEFAULT_WEIGHTS
from mpcnet.restoration.align import FACE_SIZE
from mpcnet.weights import resolve_any


def channels_last_convs(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with every ``nn.Conv2d`` weight in channels-last (NHWC) memory, in place.

    The StyleGAN prior's modulated weights are rebuilt per sample on every call and stay NCHW:
    measured on CPU, its chain of bilinear up-sampling and grouped convolutions ran a third slower
    with channels-last weights (the up-sampling copies), while the plain convolutions of the U-Net,
    APFF blocks and parser run faster (compare ``mpcnet benchmark net`` with ``--no-channels-last``)."""
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return net


class FaceRestorer:
    """Runs a restoration network mapping (B,3,S,S) RGB in [-1, 1] to the same, on 512² BGR crops
    (resized to the network's size S; see :meth:`__call__` for the way back); ``channels_last=False``
    for networks that need NCHW."""

    def __init__(self, net: torch.nn.Module, size: int = FACE_SIZE, device: str = "cpu",
                 amp: bool = False, batch_size: int = 8, name: str = "network", channels_last: bool = True):
        self.device = torch.device(device)
        self.channels_last = channels_last
        net = net.eval().to(self.device)
        self.net = channels_last_convs(net) if channels_last else net
        self.size, self.amp, self.batch_size, self.name = size, amp, batch_size, name

    @classmethod
    def from_weights(cls, weights: str | None = None, device: str = "cpu", amp: bool = False,
                     batch_size: int = 8) -> FaceRestorer:
        """Build the network recorded in a checkpoint: ``weights`` is a path or registry name, None
        the bundled default."""
        path = resolve_any(DEFAULT_WEIGHTS if weights is None else weights)
        ckpt = load_checkpoint(path)
        try:
            net = build_network(ckpt)
        except (RuntimeError, TypeError, KeyError) as exc:  # weights or kwargs of another arch version
            first = load_error_detail(exc)
            raise CheckpointError(f"{path} does not fit the network it records ({first}); was it saved by "
                                  "another version of mpcnet?") from exc
        size = int(ckpt["arch"].get("out_size", FACE_SIZE))
        return cls(net, size, device, amp, batch_size, name=str(weights or DEFAULT_WEIGHTS))

    def _autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @property
    def parses(self) -> bool:
        """The network has a parsing prior (MPCNet's ParseNet): each face's parsing comes with it."""
        return getattr(self.net, "parsenet", None) is not None

    def run_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward pass on a (B,3,S,S) batch in [-1, 1]: float32 output in [-1, 1], and, when the
        network has a parsing prior, its class map (B,S,S) — the frozen prior is computed once and
        serves both the network and the paste mask."""
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
            inputs = [c if side == self.size else cv2.resize(c, (self.size, self.size), interpolation=cv2.INTER_AREA)
                      for c in chunk]
            out, labels = self.run_tensor(torch.stack(img2tensor(inputs)) * 2 - 1)
            out = ((out + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()[..., ::-1]
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
