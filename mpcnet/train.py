"""Training driver for the three stages (section 4.1), built from BasicSR's pieces.

BasicSR's ``train_pipeline`` parses ``sys.argv`` itself and its resume maps states onto CUDA; this
loop keeps its option files, registries, logger, tensorboard logger and ``MessageLogger`` and adds:
exact resume (each sample's degradation is a function of (seed, epoch, index) and the sampler
skips the batches already consumed, so a resumed run equals an uninterrupted one), gloo DDP on
CPU, a tqdm progress bar with it/s and ETA, and a JSON-able summary.
"""
from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path

import torch
from basicsr.data import build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.models import build_model
from basicsr.utils import (
    AvgTimer,
    MessageLogger,
    get_env_info,
    get_root_logger,
    get_time_str,
    init_tb_logger,
    mkdir_and_rename,
    set_random_seed,
)
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.options import dict2str
from torch.utils.data import DataLoader
from tqdm import tqdm

import mpcnet.archs  # noqa: F401 - registers our networks
import mpcnet.data  # noqa: F401 - registers our datasets
import mpcnet.losses  # noqa: F401 - registers our losses
import mpcnet.models  # noqa: F401 - registers our models
from mpcnet.compat import init_dist
from mpcnet.data.eq1_degradation import check_ranges
from mpcnet.utils.safe_output import remove_stale_parts
from mpcnet.utils.text_files import load_yaml


class TrainError(Exception):
    """A training run that cannot start; the message says why."""


# `mpcnet train --tiny`: any MPCNet option file at a CPU-minutes budget (64 px, narrow channels, L1 only,
# priors trained from scratch with the rest, no validation), so a sequence of stages (the Table 1
# ablations) can itself be run and tested; `--set` still overrides any of it. None removes a key.
TINY_BUDGET = {
    "network_g.out_size": 64, "network_g.num_style_feat": 64, "network_g.narrow": 0.125, "network_g.num_mlp": 2,
    "network_g.num_rcab": 1, "network_g.parse_base_ch": 16, "network_g.parse_res_depth": 1,
    "network_g.parse_max_ch": 32, "network_g.freeze_gan": False, "network_g.freeze_parse": False,
    "network_g.gan_prior_path": None, "network_g.parse_prior_path": None, "network_d": None,
    "datasets.train.io_backend": {"type": "disk"}, "datasets.train.gt_size": 64,
    "datasets.train.batch_size_per_gpu": 2, "datasets.train.num_worker_per_gpu": 0,
    "datasets.val": None, "val": None, "train.total_iter": 20, "train.amp": None, "train.gan_opt": None,
    "train.perceptual_opt": None, "channels_last": False, "cpu_threads": 1,
    "logger.save_checkpoint_freq": 1000000, "logger.use_tb_logger": False,
}


def apply_overrides(opt: dict, overrides: dict) -> dict:
    """Set dotted keys (``datasets.train.dataroot_gt``) of an option mapping; a None value removes the key."""
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = opt
        for key in parents:
            if not isinstance(node.get(key, {}), dict):
                raise TrainError(f"--set {dotted}: '{key}' is not a mapping in the option file")
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return opt


def absent_keys(opt: dict, dotted_keys) -> list[str]:
    """Those of ``dotted_keys`` that the option mapping ``opt`` does not have: a ``--set`` that adds an
    option, or mistypes one."""
    absent = []
    for dotted in dotted_keys:
        node = opt
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                absent.append(dotted)
                break
            node = node[key]
    return absent


def read_options(opt_path: str | Path, overrides: dict | None = None) -> dict:
    """A BasicSR option file, parsed, with ``overrides`` applied (:func:`apply_overrides`) and checked
    (:func:`check_options`), nothing filled in."""
    opt_path = Path(opt_path)
    if not opt_path.is_file():
        raise TrainError(f"option file {opt_path} does not exist")
    try:
        opt = load_yaml(opt_path, "option file")
    except ValueError as exc:
        raise TrainError(str(exc)) from None
    if overrides and isinstance(opt, dict):
        apply_overrides(opt, overrides)
    check_options(opt, opt_path)
    return opt


def load_options(opt_path: str | Path, launcher: str = "none", overrides: dict | None = None) -> dict:
    """Read a BasicSR option file (with ``overrides``) and fill in the distributed and path settings."""
    opt = read_options(opt_path, overrides)
    if launcher == "none":
        opt["dist"] = False
    elif launcher == "pytorch":
        init_dist()
        opt["dist"] = True
    else:
        raise TrainError(f"launcher must be 'none' or 'pytorch', not {launcher!r}")
    opt["rank"], opt["world_size"] = get_dist_info()
    opt["is_train"] = True
    opt.setdefault("num_gpu", "auto")
    if opt["num_gpu"] == "auto":
        opt["num_gpu"] = torch.cuda.device_count()
    opt["manual_seed"] = int(opt.get("manual_seed", 0))
    opt.setdefault("logger", {})
    opt["logger"].setdefault("print_freq", 10)
    opt["logger"].setdefault("save_checkpoint_freq", 1000)
    opt["logger"].setdefault("use_tb_logger", False)
    for phase, dataset in opt["datasets"].items():
        dataset["phase"] = phase.split("_")[0]
        dataset.setdefault("seed", opt["manual_seed"])
    root = Path(opt.setdefault("path", {}).get("experiments_root") or "experiments") / opt["name"]
    opt["path"].update(experiments_root=str(root), models=str(root / "models"),
                       training_states=str(root / "training_states"), log=str(root),
                       visualization=str(root / "visualization"))
    return opt


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_options(opt, opt_path: Path) -> None:
    """Refuse an option file that would fail later: missing entries, iteration and batch counts that
    are not positive integers, degradation ranges eq. 1 cannot sample. The message names the key."""
    if not isinstance(opt, dict):
        raise TrainError(f"{opt_path} must hold a mapping of options (name, model_type, datasets, train, …)")
    for key in ("name", "model_type", "datasets", "train"):
        if key not in opt:
            raise TrainError(f"{opt_path} has no '{key}' entry")
    for key in ("datasets", "train"):
        if not isinstance(opt[key], dict):
            raise TrainError(f"{opt_path}: '{key}' must be a mapping")
    if "train" not in opt["datasets"]:
        raise TrainError(f"{opt_path}: 'datasets' has no 'train' entry")
    if not _positive_int(opt["train"].get("total_iter")):
        raise TrainError(f"{opt_path}: train.total_iter must be an integer ≥ 1, "
                         f"not {opt['train'].get('total_iter')!r}")
    for phase, dataset in opt["datasets"].items():
        key = f"datasets.{phase}"
        if not isinstance(dataset, dict) or "type" not in dataset:
            raise TrainError(f"{opt_path}: {key} must be a mapping with a 'type'")
        for name in ("batch_size_per_gpu", "gt_size"):
            if name in dataset and not _positive_int(dataset[name]):
                raise TrainError(f"{opt_path}: {key}.{name} must be an integer ≥ 1, not {dataset[name]!r}")
        try:
            check_ranges(dataset.get("degradation") or {})
        except ValueError as exc:
            raise TrainError(f"{opt_path}: {key}.degradation: {exc}") from None


def check_dataset_paths(opt: dict, opt_path: str | Path) -> None:
    """Refuse, before the experiment folder is created, a dataset folder or list file that does not
    exist (BasicSR would fail only at the first batch)."""
    for phase, dataset in opt["datasets"].items():
        for name, value in dataset.items():
            if (name.startswith("dataroot") or name == "meta_info_file") and (
                    not isinstance(value, str) or not Path(value).exists()):
                raise TrainError(f"{opt_path}: datasets.{phase}.{name} {value!r} does not exist (relative paths "
                                 f"start from the folder you run in, {Path.cwd()})")


def latest_state(opt: dict) -> Path | None:
    states = sorted(Path(opt["path"]["training_states"]).glob("*.state"), key=lambda p: int(p.stem))
    return states[-1] if states else None


def run_logger(opt: dict, log_file: Path) -> logging.Logger:
    """BasicSR's root logger, writing to this run's own file (BasicSR sets its file up once per process,
    so a later stage of a multi-stage ``mpcnet train`` would otherwise log into the first one's)."""
    logger = get_root_logger(logger_name="basicsr", log_level=logging.INFO)
    for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        logger.removeHandler(old)
        old.close()
    if opt["rank"] == 0:
        logger.setLevel(logging.INFO)
        handler = logging.FileHandler(log_file, "w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    return logger


def make_tb_logger(opt: dict):
    """Tensorboard logger when asked for and installed, else None."""
    if not opt["logger"]["use_tb_logger"] or opt["rank"] != 0:
        return None
    try:
        return init_tb_logger(log_dir=str(Path(opt["path"]["experiments_root"]) / "tb_logger"))
    except ImportError:
        get_root_logger().warning("tensorboard is not installed; logging to the log file only")
        opt["logger"]["use_tb_logger"] = False
        return None


def train_loader_for(train_set, sampler, dataset_opt: dict, epoch: int, skip_batches: int) -> DataLoader:
    """The loader of one epoch; the first ``skip_batches`` batches (already trained on) are left out."""
    sampler.set_epoch(epoch)
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(epoch)
    batch = dataset_opt["batch_size_per_gpu"]
    indices = list(sampler)[skip_batches * batch:]
    workers = dataset_opt.get("num_worker_per_gpu", 0)
    return DataLoader(train_set, batch_size=batch, sampler=indices, num_workers=workers, drop_last=True,
                      pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(epoch),
                      persistent_workers=False)


def val_loaders_for(opt: dict) -> list[DataLoader]:
    return [DataLoader(build_dataset(d), batch_size=1, shuffle=False, num_workers=0)
            for phase, d in opt["datasets"].items() if phase.startswith("val")]


def train_pipeline(opt_path: str | Path, resume: bool = False, launcher: str = "none",
                   overrides: dict | None = None) -> dict:
    """Train one stage as its option file (with ``overrides``) says; returns a summary (iterations, it/s,
    last metrics)."""
    opt = load_options(opt_path, launcher, overrides)
    check_dataset_paths(opt, opt_path)
    rank = opt["rank"]
    if opt.get("cpu_threads"):  # on a busy shared CPU one thread per process is often much faster
        torch.set_num_threads(int(opt["cpu_threads"]))
    set_random_seed(opt["manual_seed"] + rank)
    state_path = latest_state(opt) if resume else None
    if resume and state_path is None:
        raise TrainError(f"--resume: no training state under {opt['path']['training_states']}")
    exp_root = Path(opt["path"]["experiments_root"])
    # a checkpoint write killed outright (kill -9) leaves its temporary file
    stale = remove_stale_parts(exp_root) if rank == 0 and resume else []
    if rank == 0 and not resume:
        mkdir_and_rename(str(exp_root))  # an earlier run of the same name is kept, renamed
        for key in ("models", "training_states"):
            Path(opt["path"][key]).mkdir(parents=True, exist_ok=True)
    if opt["dist"]:
        torch.distributed.barrier()
    logger = run_logger(opt, exp_root / f"train_{opt['name']}_{get_time_str()}.log")
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    if stale:
        logger.info(f"Removed {len(stale)} stale partial file(s) of an interrupted write: {', '.join(map(str, stale))}")
    tb_logger = make_tb_logger(opt)

    train_opt = opt["datasets"]["train"]
    train_set = build_dataset(train_opt)
    sampler = EnlargedSampler(train_set, opt["world_size"], rank, train_opt.get("dataset_enlarge_ratio", 1))
    iters_per_epoch = len(sampler) // train_opt["batch_size_per_gpu"]
    if iters_per_epoch == 0:
        raise TrainError(f"{len(train_set)} training images are fewer than one batch per process")
    val_loaders = val_loaders_for(opt)
    total_iter = int(opt["train"]["total_iter"])
    model = build_model(opt)

    current_iter = 0
    if state_path is not None:
        current_iter = model.load_training_state(state_path)["iter"]
        logger.info(f"Resuming from {state_path} (iteration {current_iter})")
    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    val_freq = (opt.get("val") or {}).get("val_freq")
    save_freq = opt["logger"]["save_checkpoint_freq"]
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    progress = tqdm(total=total_iter, initial=current_iter, unit="it", disable=rank != 0, mininterval=2,
                    dynamic_ncols=True, desc=opt["name"])
    start, start_iter, metrics = time.time(), current_iter, {}
    epoch = current_iter // iters_per_epoch
    while current_iter < total_iter:
        epoch = current_iter // iters_per_epoch
        loader = train_loader_for(train_set, sampler, train_opt, epoch, current_iter % iters_per_epoch)
        data_timer.start()
        iter_timer.start()
        for batch in loader:
            data_timer.record()
            current_iter += 1
            model.update_learning_rate(current_iter, warmup_iter=opt["train"].get("warmup_iter", -1))
            model.feed_data(batch)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            progress.update(1)
            if current_iter % opt["logger"]["print_freq"] == 0:
                log_vars = {"epoch": epoch, "iter": current_iter, "lrs": model.get_current_learning_rate(),
                            "time": iter_timer.get_avg_time(), "data_time": data_timer.get_avg_time()}
                log_vars.update(model.get_current_log())
                msg_logger(log_vars)
                progress.set_postfix({k: f"{float(v):.4f}" for k, v in model.get_current_log().items()})
            if current_iter % save_freq == 0:
                model.save(epoch, current_iter)
            if val_freq and current_iter % val_freq == 0:
                for val_loader in val_loaders:
                    metrics = model.validation(val_loader, current_iter, tb_logger, False)
            data_timer.start()
            iter_timer.start()
            if current_iter >= total_iter:
                break
    progress.close()
    elapsed = time.time() - start
    if current_iter % save_freq:
        model.save(epoch, current_iter)
    model.save(epoch, -1)
    if val_loaders and not (val_freq and current_iter % val_freq == 0):
        for val_loader in val_loaders:
            metrics = model.validation(val_loader, current_iter, tb_logger, False)
    its = (current_iter - start_iter) / elapsed if elapsed > 0 else 0.0
    logger.info(f"End of training: {current_iter} iterations, {datetime.timedelta(seconds=int(elapsed))}, "
                f"{its:.3f} it/s")
    if tb_logger is not None:
        tb_logger.close()
    return {"name": opt["name"], "iter": current_iter, "seconds": round(elapsed, 2), "it_per_s": round(its, 4),
            "metrics": metrics, "latest": str(Path(opt["path"]["models"]) / "net_g_latest.pth"),
            "experiments_root": str(exp_root)}
