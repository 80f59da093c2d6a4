"""The whole restore pipeline on a folder, timed per stage by the pipeline's own :class:`StageTimer`,
with the whole pipeline's time as a multiple of its network stage's and the process's peak resident
memory during the passes (models included); with ``against='gfpgan'`` interleaved with GFPGAN's own pipeline (:mod:`mpcnet.bench.gfpganer`) on
the same photos, passes in the order ours, peer, peer, ours, … so that load drifts hit both alike."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from mpcnet.bench import BenchError
from mpcnet.restoration.background import BackgroundUpsamplerError
from mpcnet.restoration.builder import build_pipeline
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.results import STAGES
from mpcnet.utils.image_io import DEFAULT_MAX_PIXELS, list_images
from mpcnet.utils.memory import peak_rss_bytes, reset_peak_rss
from mpcnet.weights import WeightsError


def run_restore_benchmark(source: Path, weights: str | None, aligned: bool = False, device: str = "cpu",
                          batch_size: int = 8, amp: bool = False, backend: str = "torch",
                          against: str | None = None, rounds: int = 1, peer_narrow: float = 1.0,
                          upscale: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Restore ``source`` into a temporary folder (discarded) at ``upscale`` (restore's default when
    None) and report seconds per stage, the whole pipeline ÷ its network stage and the peak resident
    memory of our passes; with ``against`` also GFPGAN's pipeline, ``rounds`` passes each, and the
    ratios ours ÷ peer."""
    from mpcnet.deploy import OnnxUnavailable

    if against not in (None, "gfpgan"):
        raise BenchError(f"unknown peer '{against}'; peers: gfpgan")
    if against and aligned:
        raise BenchError("--against gfpgan compares whole-photo pipelines: drop --aligned")
    if rounds < 1:
        raise BenchError("--rounds must be ≥ 1")
    try:
        options = RestoreOptions(aligned=aligned, upscale=upscale, max_pixels=max_pixels)
        root, files = list_images(source)
        if not files:
            raise BenchError(f"no images in {source}")
        pipeline = build_pipeline(weights, device, "retinaface" if against else None, options, backend=backend,
                                  amp=amp, batch_size=batch_size).pipeline
    except (WeightsError, OnnxUnavailable, BackgroundUpsamplerError, FileNotFoundError, ValueError) as exc:
        raise BenchError(str(exc).splitlines()[0]) from exc
    peak = 0
    with tempfile.TemporaryDirectory(prefix="mpcnet-bench-") as tmp:
        peer = None
        if against:
            from mpcnet.bench.gfpganer import GFPGANerPipeline

            try:
                peer = GFPGANerPipeline(pipeline.detector, Path(tmp), device, upscale=options.upscale, narrow=peer_narrow)
            except ValueError as exc:
                raise BenchError(str(exc)) from exc
        passes = {"mpcnet": [], "gfpgan": []}
        for i in range(rounds):
            for name in (("mpcnet", "gfpgan") if i % 2 == 0 else ("gfpgan", "mpcnet")):
                out = Path(tmp, f"{name}-{i}")
                out.mkdir()
                if name == "mpcnet":
                    reset_peak_rss()
                    summary = pipeline.run(files, root, out).to_dict()
                    peak = max(peak, peak_rss_bytes())
                    failed = [r for r in summary.pop("results") if r["status"] == "failed"]
                    if failed:
                        raise BenchError(f"{failed[0]['source']}: {failed[0]['message']}")
                    passes[name].append(summary)
                elif peer is not None:
                    passes[name].append(peer.run(files, out))
    result = {"source": str(source), "aligned": aligned, "device": device, "backend": backend, "amp": amp,
              "batch_size": batch_size, "threads": torch.get_num_threads(), "weights": pipeline.restorer.name,
              "detector": getattr(pipeline.detector, "name", None), "rounds": rounds, "upscale": options.upscale,
              **_total(passes["mpcnet"]), "peak_rss_mib": round(peak / 2 ** 20, 1)}
    network = result["stage_seconds"]["network"]
    result["pipeline_per_network"] = round(result["seconds"] / network, 2) if network else None
    if peer is not None:
        result["peer"] = {"name": "gfpgan", "pipeline": "GFPGANer (GFPGANv1Clean, channel multiplier 2, random "
                          f"weights, narrow {peer_narrow}; ParseNet paste mask)", **_total(passes["gfpgan"])}
        result["ratios"] = {"faces_per_s": _ratio(result["faces_per_s"], result["peer"]["faces_per_s"]),
                            "stage_seconds_per_face": {
                                s: _ratio(result["stage_seconds"][s] / max(result["faces"], 1),
                                          result["peer"]["stage_seconds"][s] / max(result["peer"]["faces"], 1))
                                for s in STAGES}}
    return result


def _total(passes: list[dict]) -> dict:
    """Passes summed: faces and seconds over all passes, faces/s of the sum, per-pass stage seconds."""
    n = len(passes)
    faces, seconds = sum(p["faces"] for p in passes), sum(p["seconds"] for p in passes)
    out = {k: v for k, v in passes[0].items() if k not in ("faces", "seconds", "faces_per_s", "stage_seconds")}
    return {**out, "faces": faces // n, "seconds": round(seconds / n, 3),
            "faces_per_s": round(faces / seconds, 3) if seconds else None,
            "stage_seconds": {s: round(sum(p["stage_seconds"][s] for p in passes) / n, 3) for s in STAGES}}


def _ratio(ours: float | None, peer: float | None) -> float | None:
    return round(ours / peer, 3) if ours and peer else None


def markdown(result: dict) -> str:
    total = result["seconds"] or 1.0
    peer = result.get("peer")
    precision = "bf16 autocast" if result["amp"] else "fp32" if result["backend"] == "torch" else "the model's precision"
    lines = [f"{result['files']} files, {result['faces']} faces from {result['source']} on {result['device']} "
             f"({result['threads']} threads), weights {result['weights']} ({result['backend']}), batch "
             f"{result['batch_size']}, {precision}, upscale {result['upscale']}: {result['seconds']:.2f} s per pass, "
             f"{result['faces_per_s'] or 0:.3f} faces/s ({result['rounds']} passes); **whole pipeline ÷ network "
             f"stage: {result['pipeline_per_network']}**; peak resident memory {result['peak_rss_mib']:.0f} MiB "
             "(the process, models included)."]
    if peer:
        lines.append(f"Peer {peer['pipeline']}: {peer['faces']} faces, {peer['seconds']:.2f} s per pass, "
                     f"{peer['faces_per_s'] or 0:.3f} faces/s; same photos, same detector, passes interleaved. "
                     f"**ours ÷ peer faces/s: {result['ratios']['faces_per_s']}**")
        lines += ["", "| stage | ours s | share | peer s | share | ours ÷ peer (s per face) |", "|---|---|---|---|---|---|"]
        for stage in STAGES:
            sec, psec = result["stage_seconds"][stage], peer["stage_seconds"][stage]
            r = result["ratios"]["stage_seconds_per_face"][stage]
            lines.append(f"| {stage} | {sec:.3f} | {100 * sec / total:.1f}% | {psec:.3f} | "
                         f"{100 * psec / (peer['seconds'] or 1.0):.1f}% | {'—' if r is None else r} |")
        return "\n".join(lines) + "\n"
    lines += ["", "Reading and detecting, the network, and pasting and writing run on three threads, so the "
              "stages' seconds may add up to more than the pass.", "",
              "| stage | seconds | share |", "|---|---|---|"]
    for stage in STAGES:
        sec = result["stage_seconds"].get(stage, 0.0)
        lines.append(f"| {stage} | {sec:.3f} | {100 * sec / total:.1f}% |")
    return "\n".join(lines) + "\n"
