"""`mpcnet benchmark`: timings, always as ratios against a peer measured in the same run."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
import yaml

from mpcnet.utils.image_io import DEFAULT_MAX_PIXELS
from mpcnet_cli import benchmark_degrade
from mpcnet_cli.common import console, emit_json, fail

app = typer.Typer(help="Time the network, the restore pipeline and the degradation pipeline; "
                       "figures are reported as ratios against a peer measured in the same run.",
                  no_args_is_help=True)


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{option} takes comma-separated integers, got '{text}'")
    if not values or min(values) < 1:
        fail(f"{option} needs positive integers, got '{text}'")
    return values


def _arch_options(pairs: list[str]) -> tuple:
    out = []
    for pair in pairs:
        if "=" not in pair:
            fail(f"--arch takes KEY=VALUE, got '{pair}'")
        key, value = pair.split("=", 1)
        out.append((key.strip(), yaml.safe_load(value)))
    return tuple(out)


def _write_md(path: Optional[Path], text: str) -> None:
    if path is not None:
        from mpcnet.utils.safe_output import write_bytes_atomic
        write_bytes_atomic(path, text.encode())
        console.print(f"wrote {path}")


@app.command()
def net(
    size: int = typer.Option(512, "--size", help="Input/output side in pixels (a power of two)."),
    batch_sizes: str = typer.Option("1", "--batch-sizes", help="Comma-separated batch sizes."),
    dtype: str = typer.Option("fp32", "--dtype", help="Comma-separated precisions: fp32, bf16, fp16 "
                              "(autocast; fp16 on CUDA only); with --backend onnxruntime fp32, int8 (static "
                              "quantisation calibrated on --faces; the peer then runs fp32)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    backend: str = typer.Option("torch", "--backend", help="What runs MPCNet: torch or onnxruntime (exported "
                                "in memory; the peer always runs in PyTorch)."),
    faces: Optional[Path] = typer.Option(None, "--faces", help="Folder of real aligned faces to calibrate "
                                         "--dtype int8 on."),
    channels_last: bool = typer.Option(True, "--channels-last/--no-channels-last", help="MPCNet's convolutions "
                                       "in channels-last memory, as restore runs them (the peer always runs NCHW, "
                                       "as GFPGAN does)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile both networks (compile time shows "
                                 "in the first-call column)."),
    narrow: float = typer.Option(1.0, "--narrow", help="Channel width factor (both networks)."),
    channel_multiplier: int = typer.Option(1, "--channel-multiplier", help="MPCNet's StyleGAN2 channel "
                                           "multiplier (1: the public FFHQ-512 prior's layout)."),
    peer_channel_multiplier: int = typer.Option(2, "--peer-channel-multiplier", help="The peer's channel "
                                                "multiplier (2: GFPGAN v1.3/v1.4 as released)."),
    num_style_feat: int = typer.Option(512, "--num-style-feat", help="Style/latent width (both networks)."),
    arch: List[str] = typer.Option([], "--arch", help="Extra MPCNet constructor option KEY=VALUE "
                                   "(repeatable), e.g. --arch parse_max_ch=32."),
    against: Optional[str] = typer.Option(None, "--against", help="Also time this peer in the same run: "
                                          "gfpgan (GFPGANv1Clean, random weights)."),
    iters: int = typer.Option(10, "--iters", help="Timed iterations per network."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed warm-up iterations per network."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak memory (on CPU: one fresh "
                                "process per network)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    md: Optional[Path] = typer.Option(None, "--md", help="Also write the Markdown table to this file."),
) -> None:
    """Network throughput, latency (p50/p95) and peak memory, interleaved with a peer; prints ours ÷ peer."""
    from mpcnet.bench import BenchError
    from mpcnet.bench.network import NetConfig, markdown, run_network_benchmark
    from mpcnet.utils.image_io import list_images

    cfg = NetConfig(size=size, narrow=narrow, channel_multiplier=channel_multiplier,
                    num_style_feat=num_style_feat, mpcnet_kwargs=_arch_options(arch),
                    peer_channel_multiplier=peer_channel_multiplier)
    models = ["mpcnet"] + ([against] if against else [])
    try:
        face_files = list_images(faces)[1] if faces is not None else None
        with console.status("timing…"):
            result = run_network_benchmark(models, cfg, _ints(batch_sizes, "--batch-sizes"),
                                           [d.strip() for d in dtype.split(",") if d.strip()], device=device,
                                           channels_last=channels_last, compile=compile, iters=iters,
                                           warmup=warmup, memory=memory, backend=backend, faces=face_files)
    except (BenchError, ValueError, TypeError, FileNotFoundError) as exc:
        fail(str(exc).splitlines()[0])
    text = markdown(result)
    console.print(text)
    _write_md(md, text)
    if as_json:
        emit_json(result)


@app.command()
def restore(
    source: Path = typer.Argument(..., help="Folder (or file) of photos to restore, or videos (a video, or a folder "
                                  "with videos): then frames/s and flicker with face tracking off and on."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Registry name or checkpoint path "
                                          "[default: restore's default]."),
    aligned: bool = typer.Option(False, "--aligned", help="Inputs are aligned 512 faces (no detection/paste)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    batch_size: int = typer.Option(8, "--batch-size", help="Faces per network call."),
    amp: bool = typer.Option(False, "--amp", help="Run the face network under bf16 autocast, as restore --amp."),
    fidelity: float = typer.Option(0.0, "--fidelity", "-w", min=0.0, max=1.0, help="Videos: as restore --fidelity."),
    backend: str = typer.Option("torch", "--backend", help="What runs the face network, as restore --backend: "
                                "torch or onnxruntime (--weights may then be an .onnx file, e.g. int8)."),
    against: Optional[str] = typer.Option(None, "--against", help="Also run GFPGAN's own pipeline (GFPGANer, "
                                          "random GFPGANv1Clean and ParseNet weights, restore's RetinaFace file) on "
                                          "the same photos, interleaved: gfpgan."),
    rounds: int = typer.Option(1, "--rounds", help="Passes over the folder per pipeline (ours, peer, peer, ours, …)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="N ≥ 2: restore the folder with 1 process and with N "
                              "processes under torchrun (--launcher pytorch), one thread each, and report the "
                              "faces/s of N ÷ 1 (and whether the outputs are byte-identical)."),
    upscale: Optional[int] = typer.Option(None, "--upscale", "-s", min=1, help="Photos: as restore --upscale "
                                          "(default 2; 1 with --aligned)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="As restore --max-pixels (a 36 MP "
                                   "photo at --upscale 2 needs 150000000)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    md: Optional[Path] = typer.Option(None, "--md", help="Also write the Markdown table to this file."),
) -> None:
    """The whole restore pipeline on a folder: wall time per stage (read, detect, align, network, background,
    paste, write), faces/s, the whole pipeline's time ÷ the network stage's, and the peak resident memory
    of the passes; with --against gfpgan the same for GFPGANer and the ratios ours ÷ peer.
    On videos: frames/s and the flicker of the restored faces (mean absolute difference of
    consecutive aligned restored faces), each with face tracking off and on, and on ÷ off.
    With --nproc N: the scaling across processes (N processes of one thread ÷ 1 process of one thread)."""
    from mpcnet.bench import BenchError, restore_stages, scaling, video

    if nproc > 1 and (against or backend != "torch"):
        fail("--nproc compares process counts of restore itself: drop --against and --backend")
    try:
        with console.status("restoring…"):
            if nproc > 1:
                result = scaling.run_scaling_benchmark(source, nproc, weights, aligned=aligned, device=device,
                                                       batch_size=batch_size, amp=amp, rounds=rounds,
                                                       upscale=upscale, max_pixels=max_pixels)
                text = scaling.markdown(result)
            elif video.video_files(source):
                result = video.run_video_benchmark(source, weights, device=device, batch_size=batch_size, amp=amp,
                                                   fidelity=fidelity)
                text = video.markdown(result)
            else:
                result = restore_stages.run_restore_benchmark(source, weights, aligned=aligned, device=device,
                                                              batch_size=batch_size, amp=amp, backend=backend,
                                                              against=against, rounds=rounds, upscale=upscale,
                                                              max_pixels=max_pixels)
                text = restore_stages.markdown(result)
    except BenchError as exc:
        fail(str(exc))
    console.print(text)
    _write_md(md, text)
    if as_json:
        emit_json(result)


app.command("degrade")(benchmark_degrade.degrade)
