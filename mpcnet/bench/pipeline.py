"""The whole restore pipeline on a folder, timed per stage by the pipeline's own :class:`StageTimer`."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from mpcnet.checkpoint import CheckpointError
from mpcnet.restoration.detectors import make_detector
from mpcnet.restoration.paste import load_parsenet
from mpcnet.restoration.pipeline import STAGES, RestoreOptions, RestorePipeline
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.utils.files import list_images
from mpcnet.weights import WeightsError


class BenchError(Exception):
    """A benchmark that cannot run; the message says why."""


def run_restore_benchmark(source: Path, weights: str | None, aligned: bool = False, device: str = "cpu",
                          batch_size: int = 8, amp: bool = False) -> dict:
    """Restore ``source`` into a temporary folder (discarded) and report seconds per stage."""
    try:
        root, files = list_images(source)
        restorer = FaceRestorer.from_weights(weights, device, amp, batch_size)
        detector = None if aligned else make_detector(None, device)
        parsenet = None if aligned or restorer.parses else load_parsenet(device)
    except (WeightsError, CheckpointError, FileNotFoundError, ValueError) as exc:
        raise BenchError(str(exc)) from exc
    if not files:
        raise BenchError(f"no images in {source}")
    pipeline = RestorePipeline(restorer, detector, RestoreOptions(aligned=aligned, upscale=1 if aligned else 2),
                               parsenet)
    with tempfile.TemporaryDirectory(prefix="mpcnet-bench-") as out:
        summary = pipeline.run(files, root, Path(out)).to_dict()
    summary.pop("results")
    return {"source": str(source), "aligned": aligned, "device": device, "amp": amp, "batch_size": batch_size,
            "threads": torch.get_num_threads(), "weights": restorer.name,
            "detector": type(detector).__name__ if detector else None, **summary}


def markdown(result: dict) -> str:
    total = result["seconds"] or 1.0
    lines = [f"{result['files']} files, {result['faces']} faces from {result['source']} on {result['device']} "
             f"({result['threads']} threads), weights {result['weights']}, batch {result['batch_size']}, "
             f"{'bf16 autocast' if result['amp'] else 'fp32'}: "
             f"{result['seconds']:.2f} s, {result['faces_per_s'] or 0:.3f} faces/s.", "",
             "| stage | seconds | share |", "|---|---|---|"]
    for stage in STAGES:
        sec = result["stage_seconds"].get(stage, 0.0)
        lines.append(f"| {stage} | {sec:.3f} | {100 * sec / total:.1f}% |")
    return "\n".join(lines) + "\n"
