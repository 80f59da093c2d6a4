"""`mpcnet train`: training stages from BasicSR option files (logic in ``mpcnet.train``)."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List

import typer

from mpcnet_cli.common import console, emit_json, fail


def train(
    opts: List[Path] = typer.Option(..., "-opt", "--opt", help="BasicSR-style option file (options/*.yml); "
                                    "repeat it to run several stages in order, e.g. the GAN prior then MPCNet."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's last training state."),
    launcher: str = typer.Option("none", "--launcher",
                                 help="none, or pytorch under torchrun for multi-GPU / multi-process DDP."),
    tiny: bool = typer.Option(False, "--tiny", help="A CPU-minutes budget for any MPCNet option file: 64 px, "
                              "narrow channels, 20 iterations, L1 only, priors trained from scratch, no validation "
                              "(mpcnet.train.TINY_BUDGET); the training faces are read from a folder."),
    sets: List[str] = typer.Option([], "--set", help="KEY=VALUE: override an option (dotted key, YAML value; "
                                   "'~' removes it) in every -opt, e.g. --set train.total_iter=100 "
                                   "--set datasets.train.dataroot_gt=faces --set path.experiments_root=runs."),
) -> None:
    """Train a stage (ParseNet, StyleGAN2 prior, MPCNet) from a BasicSR option file, or several
    stages in order (each -opt runs to its end before the next starts).

    Multi-GPU: torchrun --nproc_per_node N -m mpcnet_cli.main train -opt FILE --launcher pytorch
    """
    import yaml

    from mpcnet.checkpoint import CheckpointError
    from mpcnet.train import TINY_BUDGET, TrainError, absent_keys, check_dataset_paths, read_options, train_pipeline
    from mpcnet.utils.text_files import load_yaml
    from mpcnet.weights import WeightsError

    overrides = dict(TINY_BUDGET) if tiny else {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set {item!r}: expected KEY=VALUE, e.g. train.total_iter=100")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            fail(f"--set {item!r}: the value is not valid YAML")
    try:
        for opt in opts:  # every stage's file is checked before the first stage starts
            options = read_options(opt, overrides)
            if tiny and options.get("model_type") != "MPCNetModel":
                fail(f"--tiny shrinks MPCNet option files; {opt} trains a {options.get('model_type')}")
            for key in absent_keys(load_yaml(opt, "option file"), [k for k in overrides if k not in TINY_BUDGET]):
                console.print(f"[yellow]note:[/] --set {key}: {opt} has no such option; it is added (a typo?)")
            check_dataset_paths(options, opt)
        with contextlib.redirect_stdout(sys.stderr):  # BasicSR prints; stdout is for the JSON summary
            summaries = [train_pipeline(opt, resume=resume, launcher=launcher, overrides=overrides) for opt in opts]
    except (TrainError, WeightsError, CheckpointError) as exc:
        fail(str(exc))
    if _is_rank0():
        emit_json(summaries[0] if len(summaries) == 1 else summaries)


def _is_rank0() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0
