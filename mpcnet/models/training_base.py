"""What the three training stages share, on top of BasicSR's ``BaseModel``.

* mixed precision: option ``train.amp: bf16 | fp16`` (CUDA autocast; fp16 with a GradScaler per
  optimiser); on CPU the step runs in fp32 unless ``train.amp_on_cpu`` (bf16 only, for testing);
* ``channels_last`` memory format for networks and inputs;
* DistributedDataParallel on CPU (gloo) as well as CUDA (``mpcnet.compat.wrap_ddp``);
* ``ReduceLROnPlateau`` stepped on the validation reconstruction loss (section 4.1), next to
  BasicSR's iteration schedulers;
* checkpoints in the toolkit's format (``{'params', ['params_ema'], 'arch', 'meta'}``) and training
  states (optimisers, schedulers, scalers, RNG, epoch, iteration) written atomically through
  ``mpcnet.checkpoint.save_checkpoint``, so ``kill -9`` never leaves a torn file.
"""
from __future__ import annotations

import random
from copy import deepcopy
from pathlib import Path

import numpy as np
import torch
from basicsr.models.base_model import BaseModel
from basicsr.utils.dist_util import master_only

from mpcnet.checkpoint import load_checkpoint, save_checkpoint
from mpcnet.compat import model_device, wrap_ddp

AMP_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


def rng_state() -> dict:
    """Torch, CUDA, NumPy and Python RNG states as tensors (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
                       "cached": cached},
             "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                        "gauss_next": gauss_next}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of ``rng_state``."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class MPCTrainingModel(BaseModel):
    """Base of the stage models. Subclasses build their networks, then call ``prepare`` on each,
    list them in ``self.saved_nets`` ({label: option key of its 'arch'}) and use ``backward_step``."""

    def __init__(self, opt: dict):
        super().__init__(opt)
        self.device = model_device(opt["num_gpu"])
        train_opt = opt.get("train") or {}
        amp = train_opt.get("amp")
        if amp not in AMP_DTYPES:
            raise ValueError(f"train.amp must be bf16, fp16 or empty, not {amp!r}")
        on_cpu = self.device.type == "cpu"
        if on_cpu and (amp == "fp16" or not train_opt.get("amp_on_cpu")):
            amp = None  # CPU runs in fp32 (bf16 autocast on CPU only when asked for explicitly)
        self.amp_dtype = AMP_DTYPES[amp]
        self.use_scaler = amp == "fp16"
        self.channels_last = bool(opt.get("channels_last"))
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.plateau_schedulers: list = []
        self.saved_nets: dict[str, str] = {}
        self.log_dict = {}
        self.last_iter = 0

    def optimize_parameters(self, current_iter: int) -> None:
        self.last_iter = current_iter
        self.train_step(current_iter)

    def train_step(self, current_iter: int) -> None:
        raise NotImplementedError

    # -- devices, precision -------------------------------------------------------------------
    def prepare(self, net: torch.nn.Module, ddp: bool = True) -> torch.nn.Module:
        """Move to the device (channels_last if asked) and wrap for DDP when distributed."""
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if ddp and self.opt.get("dist") and any(p.requires_grad for p in net.parameters()):
            net = wrap_ddp(net, self.device, self.opt.get("find_unused_parameters", False))
        return net

    def to_input(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str) -> None:
        """zero_grad, backward and step, through a GradScaler when training in fp16."""
        optimizer.zero_grad(set_to_none=True)
        if not self.use_scaler:
            loss.backward()
            optimizer.step()
            return
        scaler = self.scalers.setdefault(name, torch.amp.GradScaler("cuda"))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    # -- optimisers and schedulers ----------------------------------------------------------------
    def make_optimizer(self, optim_opt: dict, params) -> torch.optim.Optimizer:
        optim_opt = dict(optim_opt)
        return self.get_optimizer(optim_opt.pop("type"), [p for p in params if p.requires_grad], **optim_opt)

    def setup_schedulers(self) -> None:
        """``ReduceLROnPlateau`` (section 4.1: halve lr when the validation reconstruction loss stops
        falling) or any of BasicSR's iteration schedulers."""
        sched_opt = deepcopy(self.opt["train"].get("scheduler"))
        if not sched_opt:
            return
        if sched_opt["type"] == "ReduceLROnPlateau":
            sched_opt.pop("type")
            sched_opt.setdefault("factor", 0.5)
            self.plateau_schedulers = [torch.optim.lr_scheduler.ReduceLROnPlateau(o, **sched_opt)
                                       for o in self.optimizers]
            self.schedulers = self.plateau_schedulers
        else:
            self.opt["train"]["scheduler"] = sched_opt
            super().setup_schedulers()

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        """Iteration schedulers step every iteration; plateau ones only in ``plateau_step``."""
        if self.plateau_schedulers:
            return
        super().update_learning_rate(current_iter, warmup_iter)

    def plateau_step(self, val_loss: float) -> None:
        for sched in self.plateau_schedulers:
            sched.step(val_loss)

    # -- checkpoints ----------------------------------------------------------------------------
    def network_checkpoint(self, label: str, current_iter: int) -> dict:
        """The toolkit's checkpoint format for ``self.<label>`` (and ``<label>_ema`` when present)."""
        net = self.get_bare_model(getattr(self, label))
        arch = getattr(net, "arch_config", None) or dict(self.opt[self.saved_nets[label]])
        ckpt = {"params": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "arch": dict(arch),
                "meta": {"name": self.opt["name"], "iter": int(current_iter), "model": self.opt["model_type"]}}
        ema = getattr(self, f"{label}_ema", None)
        if ema is not None:
            ckpt["params_ema"] = {k: v.detach().cpu() for k, v in ema.state_dict().items()}
        return ckpt

    @master_only
    def save(self, epoch: int, current_iter: int) -> None:
        """``models/<label>_<iter>.pth`` for each network, then ``training_states/<iter>.state``;
        ``current_iter == -1`` writes ``<label>_latest.pth`` only."""
        models = Path(self.opt["path"]["models"])
        tag = "latest" if current_iter == -1 else str(current_iter)
        for label in self.saved_nets:
            save_checkpoint(self.network_checkpoint(label, self.last_iter), models / f"{label}_{tag}.pth")
        if current_iter == -1:
            return
        state = {"epoch": int(epoch), "iter": int(current_iter),
                 "optimizers": [o.state_dict() for o in self.optimizers],
                 "schedulers": [s.state_dict() for s in self.schedulers],
                 "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
                 "rng": rng_state()}
        save_checkpoint(state, Path(self.opt["path"]["training_states"]) / f"{current_iter}.state")

    def load_training_state(self, state_path: Path) -> dict:
        """Restore networks, optimisers, schedulers, scalers and RNG from a saved iteration."""
        state = load_checkpoint(state_path)
        models = Path(self.opt["path"]["models"])
        for label in self.saved_nets:
            ckpt = load_checkpoint(models / f"{label}_{state['iter']}.pth")
            self.get_bare_model(getattr(self, label)).load_state_dict(ckpt["params"], strict=True)
            ema = getattr(self, f"{label}_ema", None)
            if ema is not None:
                ema.load_state_dict(ckpt["params_ema"], strict=True)
        for opt, sd in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(sd)
        for sched, sd in zip(self.schedulers, state["schedulers"]):
            sched.load_state_dict(sd)
        for name, sd in state["scalers"].items():
            self.scalers.setdefault(name, torch.amp.GradScaler("cuda")).load_state_dict(sd)
        if self.opt.get("world_size", 1) == 1:
            set_rng_state(state["rng"])
        self.last_iter = state["iter"]
        return state
