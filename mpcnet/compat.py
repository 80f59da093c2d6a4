"""The one place for workarounds of BasicSR 1.4 on current torch and on CPU-only machines.

* ``init_dist``: BasicSR's ``_init_dist_pytorch`` calls ``torch.cuda.set_device(rank % 0)`` when no
  GPU is present (ZeroDivisionError) and hard-codes NCCL; here CPU runs use the gloo backend. The
  group is destroyed at exit: a gloo group left to interpreter finalization can abort the process
  (SIGABRT) as its worker threads free tensors without the GIL (pytorch/pytorch#179291).
* ``wrap_ddp``: BasicSR's ``BaseModel.model_to_device`` passes ``device_ids=[torch.cuda.current_device()]``,
  which fails on CPU.
* ``model_device``: ``BaseModel.__init__`` picks CUDA whenever ``num_gpu != 0``, even without a GPU.
* BasicSR's ``train.load_resume_state`` maps the state with ``torch.cuda.current_device()`` and loads
  it with a full pickle; ``mpcnet.train`` loads training states with ``mpcnet.checkpoint.load_checkpoint``
  (``weights_only=True``, CPU) instead.
* BasicSR's ``PerceptualLoss`` builds ``basicsr.archs.vgg_arch.VGGFeatureExtractor``, which downloads
  ``vgg19`` from the internet; ``mpcnet.losses.perceptual_style_loss`` uses our
  ``MPCVGGFeatureExtractor`` whose weights come from the sha256-checked registry instead.
"""
from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def init_dist(backend: str | None = None) -> None:
    """Join the process group started by ``torchrun`` (env:// rendezvous): NCCL on GPUs, gloo on CPU.

    Joins once: later stages of a multi-stage ``mpcnet train`` reuse the group; it is left at exit
    (:func:`leave_dist`)."""
    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    atexit.register(leave_dist)


def leave_dist() -> None:
    """Destroy the process group while the interpreter is whole (at exit, or earlier); a peer
    that already died does not matter here."""
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except RuntimeError:
            pass


def model_device(num_gpu) -> torch.device:
    """CUDA when it was asked for and exists, else CPU (BasicSR would pick CUDA blindly)."""
    if num_gpu != 0 and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_ddp(net: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False):
    """DistributedDataParallel that works for CPU (gloo) as well as CUDA processes."""
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
