"""`mpcnet train`: one training stage from a BasicSR option file (logic in ``mpcnet.train``)."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from mpcnet_cli.common import emit_json, fail


def train(
    opt: Path = typer.Option(..., "-opt", "--opt", help="BasicSR-style option file (options/*.yml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's last training state."),
    launcher: str = typer.Option("none", "--launcher",
                                 help="none, or pytorch under torchrun for multi-GPU / multi-process DDP."),
) -> None:
    """Train a stage (ParseNet, StyleGAN2 prior, MPCNet) from a BasicSR option file.

    Multi-GPU: torchrun --nproc_per_node N -m mpcnet_cli.main train -opt FILE --launcher pytorch
    """
    from mpcnet.checkpoint import CheckpointError
    from mpcnet.train import TrainError, train_pipeline
    from mpcnet.weights import WeightsError

    try:
        with contextlib.redirect_stdout(sys.stderr):  # BasicSR prints; stdout is for the JSON summary
            summary = train_pipeline(opt, resume=resume, launcher=launcher)
    except (TrainError, WeightsError, CheckpointError) as exc:
        fail(str(exc))
    if _is_rank0():
        emit_json(summary)


def _is_rank0() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0
