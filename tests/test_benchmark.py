"""`mpcnet benchmark net` / `restore` on tiny configurations: valid JSON, interleaved peer, ratios, stage times."""
from __future__ import annotations

import json
import shutil
import sys

import pytest
from typer.testing import CliRunner

from mpcnet.bench import BenchError
from mpcnet.bench.network import NetConfig, build, skip_reason
from mpcnet_cli.main import app

TINY = ["--size", "64", "--narrow", "0.125", "--channel-multiplier", "1", "--num-style-feat", "64",
        "--arch", "parse_base_ch=16", "--arch", "parse_max_ch=32", "--iters", "2", "--warmup", "1"]
TINY_KW = (("parse_base_ch", 16), ("parse_max_ch", 32))


def invoke(*args):
    return CliRunner().invoke(app, ["benchmark", *map(str, args)])


def test_net_against_gfpgan_emits_json_with_ratios_and_memory(tmp_path):
    md = tmp_path / "bench.md"
    out = invoke("net", *TINY, "--dtype", "fp32,fp16", "--against", "gfpgan", "--json", "--md", md)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {"device", "config", "timings", "ratios", "skipped", "memory_kind"} <= set(data)
    # each network as released (GFPGAN v1.3/1.4: multiplier 2), ours channels-last as restore runs it
    assert data["config"]["peer_channel_multiplier"] == 2 and data["channels_last"]
    assert [(t["model"], t["batch"]) for t in data["timings"]] == [("mpcnet", 1), ("gfpgan", 1)]
    for t in data["timings"]:
        assert t["dtype"] == "fp32" and t["iters"] == 2
        assert 0 < t["latency_ms_p50"] <= t["latency_ms_p95"]
        assert t["throughput_img_s"] == pytest.approx(t["batch"] * 1e3 / t["latency_ms_mean"])
        assert t["peak_mem_mb"] > 0 and t["params_m"] > 0 and t["gmac"] > 0
    ratio = data["ratios"][0]
    mine = next(t for t in data["timings"] if t["model"] == "mpcnet" and t["batch"] == ratio["batch"])
    peer = next(t for t in data["timings"] if t["model"] == "gfpgan" and t["batch"] == ratio["batch"])
    assert ratio["latency_p50"] == pytest.approx(mine["latency_ms_p50"] / peer["latency_ms_p50"], rel=1e-2)
    assert ratio["gmac"] == pytest.approx(mine["gmac"] / peer["gmac"], rel=1e-2)
    assert data["skipped"] == [{"dtype": "fp16", "reason": skip_reason("cpu", "fp16")}]
    text = md.read_text()
    assert "mpcnet ÷ gfpgan" in text and "Skipped fp16" in text and "VmHWM" in text


def test_net_bf16_channels_last_without_peer():
    out = invoke("net", *TINY, "--dtype", "bf16", "--batch-sizes", "1,2", "--channels-last", "--no-memory",
                 "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["channels_last"] and data["ratios"] == [] and data["memory_kind"] is None
    assert [(t["dtype"], t["batch"], t["peak_mem_mb"]) for t in data["timings"]] == [("bf16", 1, None),
                                                                                   ("bf16", 2, None)]


def test_bad_options_fail_with_one_line():
    out = invoke("net", "--batch-sizes", "0")
    assert out.exit_code == 2 and "positive" in out.output
    out = invoke("net", *TINY, "--against", "codeformer", "--no-memory")
    assert out.exit_code == 2 and "unknown network 'codeformer'" in out.output
    out = invoke("net", *TINY, "--dtype", "fp23", "--no-memory")  # it printed an empty table, exit 0
    assert out.exit_code == 2 and "unknown --dtype 'fp23'" in out.output
    out = invoke("net", *TINY, "--dtype", "fp16", "--no-memory")  # fp16 is timed on CUDA only
    assert out.exit_code == 2 and "nothing to measure: fp16" in out.output


def test_gmac_counts_exactly_what_one_more_rcab_adds():
    """One more RCAB per APFF block adds, per scale s with c channels, two 3×3 convs (2·s²·c²·9 MACs)
    and the channel attention's two 1×1 convs on the pooled vector (2·c·c/squeeze)."""
    from mpcnet.bench.network import gmac_per_image

    one, two = (gmac_per_image("mpcnet", NetConfig(64, 0.125, 1, 64, TINY_KW + (("num_rcab", n),))) for n in (1, 2))
    net = build("mpcnet", NetConfig(64, 0.125, 1, 64, TINY_KW))
    added = sum(2 * s * s * c * c * 9 + 2 * c * (c // min(16, c))
                for s, c in ((s, a.conv_s1.in_channels) for s, a in zip(net.scales, net.apff)))
    assert (two - one) * 1e9 == pytest.approx(added, rel=1e-6)


def test_missing_gfpgan_fails_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "gfpgan.archs.gfpganv1_clean_arch", None)
    with pytest.raises(BenchError, match="gfpgan package"):
        build("gfpgan", NetConfig(size=64))


def test_restore_benchmark_reports_stage_times_on_aligned_faces(aligned_faces, tmp_path, tiny_weights):
    faces = tmp_path / "faces"
    faces.mkdir()
    for path in aligned_faces[:3]:
        shutil.copy(path, faces / path.name)
    out = invoke("restore", faces, "--aligned", "--weights", tiny_weights, "--batch-size", "2", "--amp", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["files"] == data["restored"] == data["faces"] == 3
    assert set(data["stage_seconds"]) >= {"read", "network", "write"} and data["stage_seconds"]["network"] > 0
    assert data["detector"] is None and data["amp"] and not any(faces.glob("**/restored_imgs"))
    assert data["upscale"] == 1 and data["peak_rss_mib"] > 0
    assert data["pipeline_per_network"] == pytest.approx(data["seconds"] / data["stage_seconds"]["network"], rel=1e-2)


def test_net_onnxruntime_fp32_and_int8_each_against_gfpgan_fp32(aligned_faces, tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for path in aligned_faces[:2]:
        shutil.copy(path, faces / path.name)
    out = invoke("net", *TINY, "--backend", "onnxruntime", "--dtype", "fp32,int8,bf16", "--faces", faces,
                 "--against", "gfpgan", "--no-memory", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [(t["model"], t["backend"], t["dtype"]) for t in data["timings"]] == [
        ("mpcnet", "onnxruntime", "fp32"), ("gfpgan", "torch", "fp32"),
        ("mpcnet", "onnxruntime", "int8"), ("gfpgan", "torch", "fp32")]
    assert data["skipped"] == [{"dtype": "bf16", "reason": skip_reason("cpu", "bf16", "onnxruntime")}]
    for ratio, (mine, peer) in zip(data["ratios"], (data["timings"][:2], data["timings"][2:])):
        assert (ratio["backend"], ratio["dtype"], ratio["peer_dtype"]) == ("onnxruntime", mine["dtype"], "fp32")
        assert ratio["latency_p50"] == pytest.approx(mine["latency_ms_p50"] / peer["latency_ms_p50"], rel=1e-2)


def test_net_int8_needs_calibration_faces():
    out = invoke("net", *TINY, "--backend", "onnxruntime", "--dtype", "int8", "--no-memory")
    assert out.exit_code == 2 and "--faces" in out.output


@pytest.mark.slow
def test_restore_benchmark_against_gfpganer_on_the_same_photos(whole_photos, tmp_path, tiny_weights):
    """Both whole-photo pipelines, interleaved, same detector model; GFPGANv1Clean narrowed for speed.
    A photo of one face: GFPGANer's full-width ParseNet takes ~11 s a face here."""
    from mpcnet.bench.restore_stages import run_restore_benchmark

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(next(p for p in whole_photos if p.name == "03.jpg"), photos)
    data = run_restore_benchmark(photos, tiny_weights, against="gfpgan", rounds=2, peer_narrow=0.125, upscale=1)
    peer = data["peer"]
    assert data["detector"].startswith("retinaface") and data["rounds"] == 2
    assert data["faces"] >= 1 and peer["faces"] >= 1 and peer["files"] == data["files"] == 1
    for side in (data, peer):
        assert side["faces_per_s"] == pytest.approx(side["faces"] / side["seconds"], rel=1e-2)
        assert side["stage_seconds"]["network"] > 0 and side["stage_seconds"]["detect"] > 0
        stages = side["stage_seconds"]  # each rounded to 1 ms: the sum may gain 0.5 ms per stage
        assert sum(stages.values()) <= side["seconds"] * 1.01 + 0.0005 * len(stages)
    assert data["ratios"]["faces_per_s"] == pytest.approx(data["faces_per_s"] / peer["faces_per_s"], rel=1e-2)
    assert data["upscale"] == 1 and data["stage_seconds"]["background"] < 0.0005  # ×1: nothing to upscale
