"""Network throughput, latency and peak memory of MPCNet against GFPGANv1Clean, measured in one run.

Both networks get random weights and the same input size and width (``narrow``); each has its own
channel multiplier, by default as released (MPCNet 1: the public FFHQ-512 prior's layout; GFPGAN
v1.3/v1.4: 2). With ``channels_last`` MPCNet runs as ``restore`` runs it (:func:`channels_last_convs`);
GFPGANv1Clean always runs NCHW, as GFPGAN runs it (its ``.view`` of the 4×4 features fails on
channels-last). After warm-up, timed calls alternate between the networks (ours, peer, peer, ours, …)
so that drifts in machine load hit both alike. Peak memory: on CUDA ``max_memory_allocated`` during
one forward minus what was allocated before it; on CPU the peak resident set (Linux VmHWM, reset
before the call) during one forward minus the resident set before it, measured in a fresh process
per network (the allocator's cache would hide it in a shared one).

With ``backend='onnxruntime'`` MPCNet is exported to ONNX (:mod:`mpcnet.deploy`) and run by ONNX
Runtime, in fp32 or statically quantised int8 (calibrated on real faces); the peer stays PyTorch,
in fp32 where it has no such precision (int8), so each ratio is ours in that setting ÷ GFPGAN as
it runs in PyTorch. ONNX Runtime's memory is not measured.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch

from mpcnet.bench import BenchError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ORT_DTYPES = ("fp32", "int8")
PEERS = ("gfpgan",)
OURS = "mpcnet"


@dataclass(frozen=True)
class NetConfig:
    size: int = 512
    narrow: float = 1.0
    channel_multiplier: int = 1  # MPCNet's (the public FFHQ-512 prior's layout)
    num_style_feat: int = 512
    mpcnet_kwargs: tuple = ()  # extra MPCNet constructor options as (key, value) pairs
    peer_channel_multiplier: int = 2  # GFPGAN v1.3/v1.4 as released


def build(model: str, cfg: NetConfig) -> torch.nn.Module:
    """``mpcnet`` (MPCNet from the registry) or ``gfpgan`` (GFPGANv1Clean, imported lazily), random weights."""
    if model == "mpcnet":
        from basicsr.utils.registry import ARCH_REGISTRY

        import mpcnet.archs  # noqa: F401 - fills ARCH_REGISTRY
        return ARCH_REGISTRY.get("MPCNet")(out_size=cfg.size, num_style_feat=cfg.num_style_feat,
                                           channel_multiplier=cfg.channel_multiplier, narrow=cfg.narrow,
                                           **dict(cfg.mpcnet_kwargs))
    if model == "gfpgan":
        try:
            from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
        except ImportError as exc:
            raise BenchError("--against gfpgan needs the gfpgan package (a test-only dependency: "
                             "pip install -r requirements-test.txt)") from exc
        # GFPGAN v1.3/1.4's inference configuration, at our size and width
        return GFPGANv1Clean(out_size=cfg.size, num_style_feat=cfg.num_style_feat,
                             channel_multiplier=cfg.peer_channel_multiplier, decoder_load_path=None, fix_decoder=False,
                             num_mlp=8, input_is_latent=True, different_w=True, narrow=cfg.narrow, sft_half=True)
    raise BenchError(f"unknown network '{model}'; peers: {', '.join(PEERS)}")


def _forward(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _autocast(device: str, dtype: str):
    if dtype not in ("bf16", "fp16"):  # fp32, or int8 (an ONNX Runtime model: no autocast)
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype])


def skip_reason(device: str, dtype: str, backend: str = "torch") -> str | None:
    """Why a precision cannot be measured on a device (with a backend), or None."""
    if backend == "onnxruntime":
        return None if dtype in ORT_DTYPES else f"dtype '{dtype}' with onnxruntime; choose from {', '.join(ORT_DTYPES)}"
    if dtype not in DTYPES:
        return f"unknown dtype '{dtype}'; choose from {', '.join(DTYPES)}"
    if dtype == "fp16" and not device.startswith("cuda"):
        return "fp16 autocast is measured on CUDA only (CPU kernels for fp16 are slow emulations)"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "CUDA is not available on this machine"
    if dtype == "bf16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16"
    return None


@dataclass
class Timing:
    model: str
    batch: int
    dtype: str
    backend: str
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_mean: float
    throughput_img_s: float
    first_call_ms: float
    params_m: float
    gmac: float  # multiply-accumulates per image
    peak_mem_mb: float | None
    iters: int


def gmac_per_image(model: str, cfg: NetConfig) -> float:
    """Multiply-accumulates (10⁹) of one image's forward, counted on the meta device (nothing runs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = build(model, cfg).eval()
        x = torch.zeros(1, 3, cfg.size, cfg.size)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        _forward(net, x)
    return counter.get_total_flops() / 2e9


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _cpu_peak_rss_mb(model: str, cfg: NetConfig, batch: int, dtype: str, channels_last: bool) -> float:
    """Run in a fresh process: peak RSS during one forward minus RSS before it, in MiB.

    The peak is Linux's VmHWM, reset just before the forward (``/proc/self/clear_refs``), so that
    building the network does not mask it.
    """
    torch.manual_seed(0)
    net = place(model, build(model, cfg), "cpu", channels_last)
    x = _input(model, cfg, batch, "cpu", channels_last)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    with torch.inference_mode(), _autocast("cpu", dtype):
        _forward(net, x)
    return (_status_kib("VmHWM") - before) / 1024


def place(model: str, net: torch.nn.Module, device: str, channels_last: bool) -> torch.nn.Module:
    """``net`` in eval mode on ``device``; ours with ``channels_last`` as ``restore`` places it."""
    from mpcnet.restoration.restorer import channels_last_convs

    net = net.eval().to(device)
    return channels_last_convs(net) if channels_last and model == OURS else net


def _input(model: str, cfg: NetConfig, batch: int, device: str, channels_last: bool) -> torch.Tensor:
    """The seeded input batch, channels-last where :func:`place` put the network so."""
    torch.manual_seed(0)
    x = torch.rand(batch, 3, cfg.size, cfg.size, device=device).mul(2).sub(1)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and model == OURS else x


def _onnx_networks(net: torch.nn.Module, cfg: NetConfig, dtypes: list[str], device: str,
                   faces: list | None) -> dict:
    """ONNX Runtime sessions of ``net`` by precision: fp32 export, and int8 calibrated on the first
    :data:`~mpcnet.deploy.CALIBRATION_FACES` of ``faces``."""
    from mpcnet.deploy import CALIBRATION_FACES, OnnxUnavailable
    from mpcnet.deploy.export import export_onnx, load_faces
    from mpcnet.deploy.quantize import quantize_int8
    from mpcnet.deploy.runtime import OrtNetwork

    if "int8" in dtypes and not faces:
        raise BenchError("--dtype int8 needs --faces: real aligned faces to calibrate the quantisation on")
    try:
        with torch.inference_mode(False):  # the exporter traces with autograd's bookkeeping
            model = export_onnx(net, cfg.size, "benchmark")
        out = {"fp32": OrtNetwork(model, device)}
        if "int8" in dtypes:
            out["int8"] = OrtNetwork(quantize_int8(model, load_faces(faces[:CALIBRATION_FACES], cfg.size)), device)
    except OnnxUnavailable as exc:
        raise BenchError(str(exc)) from exc
    return out


@torch.inference_mode()
def run_network_benchmark(models: list[str], cfg: NetConfig, batch_sizes: list[int], dtypes: list[str],
                          device: str = "cpu", channels_last: bool = True, compile: bool = False,
                          iters: int = 10, warmup: int = 2, memory: bool = True, backend: str = "torch",
                          faces: list | None = None) -> dict:
    """Timings of every model × batch size × dtype, interleaved, plus ratios ours/peer. With
    ``backend='onnxruntime'`` ours runs in ONNX Runtime (``faces``: calibration images for int8)."""
    if iters < 1 or warmup < 0:
        raise BenchError("--iters must be ≥ 1 and --warmup ≥ 0")
    if backend not in ("torch", "onnxruntime"):
        raise BenchError(f"unknown --backend '{backend}'; choose from torch, onnxruntime")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda asked for, but CUDA is not available on this machine")
    unknown = [d for d in dtypes if d not in DTYPES and d not in ORT_DTYPES]
    if unknown:
        raise BenchError(f"unknown --dtype '{unknown[0]}'; choose from {', '.join(dict.fromkeys([*DTYPES, *ORT_DTYPES]))}")
    if all(skip_reason(device, d, backend) for d in dtypes):
        raise BenchError("nothing to measure: " + "; ".join(f"{d}: {skip_reason(device, d, backend)}" for d in dtypes))
    built = {m: build(m, cfg) for m in models}  # fail early (e.g. gfpgan missing) before timing anything
    nets, onnx = {}, {}
    for m, net in built.items():
        info = (sum(p.numel() for p in net.parameters()) / 1e6, gmac_per_image(m, cfg))
        if m == OURS and backend == "onnxruntime":
            onnx = _onnx_networks(net, cfg, [d for d in dtypes if skip_reason(device, d, backend) is None],
                                  device, faces)
            nets[m] = (None, *info)
            continue
        net = place(m, net, device, channels_last)
        nets[m] = (torch.compile(net) if compile else net, *info)
    timings, ratio_rows, skipped = [], [], []
    for dtype in dtypes:
        reason = skip_reason(device, dtype, backend)
        if reason:
            skipped.append({"dtype": dtype, "reason": reason})
            continue
        # ours in this setting; a peer in the same precision where PyTorch has it, else fp32
        runs = {m: (onnx[dtype] if m == OURS and backend == "onnxruntime" else nets[m][0],
                    dtype if m == OURS or dtype in DTYPES else "fp32",
                    backend if m == OURS else "torch") for m in nets}
        for batch in batch_sizes:
            xs = {m: _input(m, cfg, batch, device, channels_last and runs[m][2] == "torch") for m in nets}
            rows = _time_interleaved(nets, runs, xs, device, iters, warmup)
            if memory:
                _attach_memory([r for r in rows if r.backend == "torch"], cfg, batch, device, channels_last,
                               nets, xs)
            timings += rows
            ratio_rows += ratios(rows)
    return {
        "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(), "backend": backend,
        "config": asdict(cfg), "channels_last": channels_last, "compile": compile, "iters": iters,
        "warmup": warmup, "memory_kind": _memory_kind(device) if memory else None,
        "timings": [asdict(t) for t in timings], "ratios": ratio_rows, "skipped": skipped,
    }


def _time_interleaved(nets: dict, runs: dict, xs: dict, device: str, iters: int, warmup: int) -> list[Timing]:
    """``runs``: per network (callable, dtype, backend) of this group; warm-up, then alternating timed calls."""
    first = {}
    for name, (net, dtype, _) in runs.items():
        for i in range(max(warmup, 1)):
            _sync(device)
            start = time.perf_counter()
            with torch.inference_mode(), _autocast(device, dtype):
                _forward(net, xs[name])
            _sync(device)
            if i == 0:
                first[name] = (time.perf_counter() - start) * 1e3
    samples = {name: [] for name in runs}
    order = list(runs)
    for i in range(iters):
        for name in (order if i % 2 == 0 else order[::-1]):
            net, dtype, _ = runs[name]
            _sync(device)
            start = time.perf_counter()
            with torch.inference_mode(), _autocast(device, dtype):
                _forward(net, xs[name])
            _sync(device)
            samples[name].append((time.perf_counter() - start) * 1e3)
    out = []
    for name, ms in samples.items():
        ms_arr = np.array(ms)
        batch = xs[name].shape[0]
        out.append(Timing(name, batch, runs[name][1], runs[name][2], float(np.percentile(ms_arr, 50)),
                          float(np.percentile(ms_arr, 95)),
                          float(ms_arr.mean()), float(batch * 1e3 / ms_arr.mean()), first[name],
                          round(nets[name][1], 3), round(nets[name][2], 2), None, iters))
    return out


def _memory_kind(device: str) -> str:
    if device.startswith("cuda"):
        return "cuda: torch.cuda.max_memory_allocated during one forward minus memory allocated before it"
    return ("cpu: peak RSS (VmHWM, reset before the call) during one forward minus RSS before it, "
            "in a fresh process per network")


def _attach_memory(rows: list[Timing], cfg: NetConfig, batch: int, device: str,
                   channels_last: bool, nets: dict, xs: dict) -> None:
    for row in rows:
        dtype = row.dtype
        if device.startswith("cuda"):
            _sync(device)
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode(), _autocast(device, dtype):
                _forward(nets[row.model][0], xs[row.model])
            _sync(device)
            row.peak_mem_mb = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
        elif not os.path.exists("/proc/self/clear_refs"):  # not Linux: no resettable peak RSS
            row.peak_mem_mb = None
        else:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                mb = pool.apply(_cpu_peak_rss_mb, (row.model, cfg, batch, dtype, channels_last))
            row.peak_mem_mb = round(mb, 1)


def ratios(group: list[Timing], ours: str = "mpcnet") -> list[dict]:
    """ours ÷ peer for p50 latency, throughput and peak memory, within one interleaved group (one
    batch size; ours in one backend and precision, the peer in the same or, lacking it, fp32)."""
    mine = next((t for t in group if t.model == ours), None)
    out = []
    for t in group:
        if mine is None or t.model == ours:
            continue
        out.append({
            "ours": ours, "peer": t.model, "batch": t.batch, "dtype": mine.dtype, "backend": mine.backend,
            "peer_dtype": t.dtype,
            "latency_p50": round(mine.latency_ms_p50 / t.latency_ms_p50, 3),
            "throughput": round(mine.throughput_img_s / t.throughput_img_s, 3),
            "peak_mem": (round(mine.peak_mem_mb / t.peak_mem_mb, 3)
                         if mine.peak_mem_mb and t.peak_mem_mb else None),
            "params": round(mine.params_m / t.params_m, 3),
            "gmac": round(mine.gmac / t.gmac, 3),
        })
    return out


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _or_dash(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown(result: dict) -> str:
    """A Markdown table of the timings and the ratios."""
    cfg = result["config"]
    lines = [f"Device {result['device']} ({result['threads']} threads), torch {result['torch']}, size {cfg['size']}, "
             f"narrow {cfg['narrow']}, channel multiplier {cfg['channel_multiplier']} (peer "
             f"{cfg['peer_channel_multiplier']}), channels_last {result['channels_last']} (ours; the peer runs NCHW), "
             f"compile {result['compile']}, {result['iters']} timed iterations after {result['warmup']} warm-up.", "",
             "| network | backend | batch | dtype | p50 ms | p95 ms | img/s | first call ms | params M | GMAC/img | "
             "peak MiB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in result["timings"]:
        lines.append(_row(t["model"], t["backend"], t["batch"], t["dtype"], f"{t['latency_ms_p50']:.1f}",
                          f"{t['latency_ms_p95']:.1f}", f"{t['throughput_img_s']:.2f}", f"{t['first_call_ms']:.1f}",
                          f"{t['params_m']:.2f}", f"{t['gmac']:.1f}", _or_dash(t["peak_mem_mb"], ".1f")))
    if result["ratios"]:
        lines += ["", "| ours ÷ peer | batch | ours | peer | latency p50 | throughput | peak memory | params | GMAC |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in result["ratios"]:
            lines.append(_row(f"{r['ours']} ÷ {r['peer']}", r["batch"], f"{r['backend']} {r['dtype']}",
                              f"torch {r['peer_dtype']}", *(f"{r[k]:.3f}" for k in ("latency_p50", "throughput")),
                              _or_dash(r["peak_mem"], ".3f"), f"{r['params']:.3f}", f"{r['gmac']:.3f}"))
    if result["memory_kind"]:
        lines += ["", f"Peak memory: {result['memory_kind']}."]
    for s in result["skipped"]:
        lines.append(f"\nSkipped {s['dtype']}: {s['reason']}.")
    return "\n".join(lines) + "\n"
