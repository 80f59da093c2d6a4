"""How ``mpcnet restore`` scales across processes: the same folder restored by one process and by N
processes under torchrun (``--launcher pytorch``, gloo on the CPU), one CPU thread each, passes
interleaved (1, N, N, 1, …) so that load drifts hit both alike. Throughput is faces ÷ the batch's
wall seconds (the slowest process's; start-up and model loading excluded, as they do not grow with
the archive); the outputs of the two are compared byte for byte."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mpcnet.bench import BenchError


def _restore(source: Path, out: Path, nproc: int, options: list[str]) -> tuple[dict, float]:
    """One ``mpcnet restore`` pass in fresh processes: its JSON summary and its wall seconds."""
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
              if nproc > 1 else [sys.executable])
    launcher = ["--launcher", "pytorch"] if nproc > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    run = subprocess.run([*launch, "-m", "mpcnet_cli.main", "restore", str(source), "-o", str(out), "--json",
                          "--quiet", "--fixed-batch", *options, *launcher], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if run.returncode not in (0, 1):  # 1: some photos failed, as they would in any run
        lines = [line for line in run.stderr.splitlines() if "error" in line.lower()] or run.stderr.splitlines() or ["?"]
        raise BenchError(f"restore with {nproc} process(es) failed: {lines[-1][:200]}")
    return json.loads(run.stdout), wall


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_scaling_benchmark(source: Path, nproc: int, weights: str | None = None, aligned: bool = False,
                          device: str = "cpu", batch_size: int = 8, amp: bool = False, rounds: int = 1,
                          upscale: int | None = None, max_pixels: int | None = None) -> dict:
    """Restore ``source`` ``rounds`` times each with 1 and with ``nproc`` processes of one thread;
    faces/s of each and the ratio N ÷ 1, and whether their outputs are byte-identical."""
    if nproc < 2:
        raise BenchError("--nproc compares N processes with one: give 2 or more")
    if rounds < 1:
        raise BenchError("--rounds must be ≥ 1")
    options = ["--device", device, "--batch-size", str(batch_size)] + (["--aligned"] if aligned else []) \
        + (["--amp"] if amp else []) + (["--weights", weights] if weights else []) \
        + (["--upscale", str(upscale)] if upscale else []) + (["--max-pixels", str(max_pixels)] if max_pixels else [])
    passes = {1: [], nproc: []}
    with tempfile.TemporaryDirectory(prefix="mpcnet-bench-") as tmp:
        for i in range(rounds):
            for n in ((1, nproc) if i % 2 == 0 else (nproc, 1)):
                out = Path(tmp, f"{n}-{i}")
                report, wall = _restore(source, out, n, options)
                passes[n].append({"faces": report["faces"], "seconds": report["seconds"], "wall": wall})
        identical = _hashes(Path(tmp, "1-0")) == _hashes(Path(tmp, f"{nproc}-0"))
    totals = {}
    for n, runs in passes.items():
        faces, seconds = sum(r["faces"] for r in runs), sum(r["seconds"] for r in runs)
        totals[n] = {"processes": n, "faces": faces // rounds, "seconds": round(seconds / rounds, 3),
                     "wall_seconds": round(sum(r["wall"] for r in runs) / rounds, 3),
                     "faces_per_s": round(faces / seconds, 3) if seconds else None}
    one, many = totals[1]["faces_per_s"], totals[nproc]["faces_per_s"]
    return {"source": str(source), "device": device, "threads_per_process": 1, "batch_size": batch_size,
            "weights": report["weights"], "detector": report["detector"], "rounds": rounds, "cpus": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()], "one": totals[1], "many": totals[nproc],
            "scaling": round(many / one, 3) if one and many else None, "identical_outputs": identical}


def markdown(result: dict) -> str:
    one, many = result["one"], result["many"]
    lines = [f"{one['faces']} faces from {result['source']}, weights {result['weights']}, detector "
             f"{result['detector']}, batch {result['batch_size']}, {result['device']}, one thread per process, "
             f"{result['rounds']} pass(es) each, interleaved; {result['cpus']} CPUs, load average "
             f"{', '.join(map(str, result['load_average']))} at the end.", "",
             "| processes | batch wall s | faces/s | wall s with start-up |", "|---|---|---|---|"]
    for row in (one, many):
        lines.append(f"| {row['processes']} | {row['seconds']:.2f} | {row['faces_per_s'] or 0:.3f} | "
                     f"{row['wall_seconds']:.1f} |")
    lines += ["", f"**{many['processes']} processes ÷ 1: {result['scaling']}× the faces/s**; outputs "
              f"{'byte-identical' if result['identical_outputs'] else 'DIFFER'}."]
    return "\n".join(lines) + "\n"
