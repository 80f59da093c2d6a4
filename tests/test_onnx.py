"""ONNX export, its check against PyTorch, int8 quantisation and the onnxruntime backend of
`restore`, on real faces: the bundled model by registry name and a narrow 512 px architecture with
both priors (random weights)."""
from __future__ import annotations

import json
import shutil
import sys

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from mpcnet.archs import load_network, network_from_checkpoint
from mpcnet.checkpoint import load_checkpoint, save_checkpoint
from mpcnet.deploy import OnnxUnavailable, require
from mpcnet.deploy.export import load_faces
from mpcnet_cli.main import app
from tests.conftest import DATA

runner = CliRunner()
FACES = sorted((DATA / "codeformer-inputs" / "cropped_faces").glob("*.png"))
WHOLE = DATA / "codeformer-inputs" / "whole_imgs"


def invoke(*args):
    result = runner.invoke(app, [*map(str, args)])
    report = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result, report


@pytest.fixture(scope="module")
def face_dir(tmp_path_factory):
    """Five real aligned faces."""
    folder = tmp_path_factory.mktemp("faces")
    for path in FACES[:5]:
        shutil.copy(path, folder)
    return folder


@pytest.fixture(scope="module")
def bundled_onnx(tmp_path_factory, face_dir):
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result, report = invoke("export", "onnx", "--weights", "mpcnet-tiny", "-o", out, "--faces", face_dir, "--json")
    assert result.exit_code == 0, result.output
    return out, report


@pytest.fixture(scope="module")
def arch512(tmp_path_factory):
    """The 512 px architecture as the bundled default is built (the parsing prior 7 down and 7 up as
    the paper's, 2 res blocks of its 10; no StyleGAN prior, whose export the bundled mpcnet-tiny covers and which
    doubles this export's time), narrow, random weights, saved as a checkpoint."""
    from mpcnet.archs.mpcnet_arch import MPCNet

    torch.manual_seed(0)
    net = MPCNet(512, num_style_feat=32, narrow=1 / 16, num_mlp=1, num_rcab=1, parse_base_ch=4, parse_max_ch=16,
                 parse_res_depth=2, use_gan_prior=False)
    path = tmp_path_factory.mktemp("weights") / "mpcnet512.pth"
    save_checkpoint({"params": net.state_dict(), "arch": net.arch_config}, path)
    return path


def test_bundled_model_exports_and_onnxruntime_reproduces_pytorch(bundled_onnx):
    path, report = bundled_onnx
    assert report["max_abs_diff"] <= 1e-3 and report["check_faces"] == 5 and path.stat().st_size == report["bytes"]
    model = onnx.load(path)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic (dynamic) batch
    # independently of the CLI's check: a batch of 3 (the export traced 2) against PyTorch
    net, _ = load_network("mpcnet-tiny")
    x = load_faces(FACES[5:8], 128)
    with torch.inference_mode():
        expected = net(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"lq": x.numpy()})[0]
    assert got.shape == (3, 3, 128, 128)
    assert np.abs(got - expected).max() <= 1e-3


@pytest.mark.slow
def test_512_architecture_exports_with_parsing_and_quantises_to_int8(arch512, face_dir, tmp_path):
    int8 = tmp_path / "m-int8.onnx"
    result, report = invoke("export", "onnx", "--weights", arch512, "-o", int8, "--faces", face_dir, "--int8",
                            "--calibration", "3", "--json")
    assert result.exit_code == 0, result.output
    # the fp32 export was checked against PyTorch on the two held-out faces before quantising
    assert report["size"] == 512 and report["max_abs_diff"] <= 1e-3 and report["check_faces"] == 2
    assert [p.rsplit("/", 1)[1] for p in report["calibration_faces"]] == [p.name for p in FACES[:3]]
    model = onnx.load(int8)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in model.graph.node}
    assert [o.name for o in model.graph.output] == ["hq", "parse"]
    # the reported PSNR, recomputed against PyTorch's fp32 output; the parsing map mostly agrees
    net = network_from_checkpoint(load_checkpoint(arch512))
    x = load_faces(FACES[3:5], 512)
    with torch.inference_mode():
        expected, logits = net(x, return_parse=True)
    got, labels = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, {"lq": x.numpy()})
    a, b = [(np.clip(o, -1, 1) + 1) / 2 for o in (expected.numpy(), got)]
    psnr = np.mean([10 * np.log10(1 / np.mean((p - q) ** 2)) for p, q in zip(a, b)])
    assert psnr == pytest.approx(report["psnr_vs_fp32_db"], abs=0.05)
    assert labels.shape == (2, 512, 512) and (labels == logits.argmax(1).numpy()).mean() > 0.9


def test_restore_with_onnxruntime_matches_torch(bundled_onnx, tmp_path):
    photo = tmp_path / "in" / "00.jpg"
    photo.parent.mkdir()
    shutil.copy(WHOLE / "00.jpg", photo)
    outs = {}
    for backend, weights in (("torch", "mpcnet-tiny"), ("onnxruntime", "mpcnet-tiny"),
                             ("onnxruntime", bundled_onnx[0])):
        out = tmp_path / f"{backend}-{len(outs)}"
        result, report = invoke("restore", photo, "-o", out, "--backend", backend, "--weights", weights,
                                "--detector", "yunet", "--json")
        assert result.exit_code == 0, result.output
        assert report["backend"] == backend and report["faces"] >= 1
        outs[out.name] = cv2.imread(str(out / "restored_imgs" / "00.jpg")).astype(int)
    ref, *others = outs.values()
    for img in others:
        assert img.shape == ref.shape
        assert np.abs(img - ref).max() <= 3  # the same network; JPEG re-encoding of sub-1e-3 differences


def test_onnxruntime_backend_exports_a_checkpoint_once(tmp_path, monkeypatch):
    """The export behind `restore --backend onnxruntime` is kept in the cache: a second run restores
    the same faces from the cached file without exporting."""
    from mpcnet.deploy import export

    outs = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        result, report = invoke("restore", WHOLE / "00.jpg", "-o", out, "--backend", "onnxruntime",
                                "--weights", "mpcnet-tiny", "--detector", "yunet", "--json")
        assert result.exit_code == 0, result.output
        assert report["faces"] >= 1
        outs.append(cv2.imread(str(out / "restored_imgs" / "00.jpg")))
        cached = list((export.cache_dir() / "onnx").glob("*.onnx"))
        assert len(cached) == 1 and ort.InferenceSession(str(cached[0])).get_modelmeta().custom_metadata_map[
            "mpcnet.weights"] == "mpcnet-tiny"
        monkeypatch.setattr(export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    assert np.array_equal(*outs)


def test_export_cache_that_cannot_be_written_exports_every_time(tmp_path, monkeypatch):
    from mpcnet.deploy.export import cached_export
    from mpcnet.deploy.runtime import OrtNetwork
    from mpcnet.weights import resolve

    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("MPCNET_CACHE_DIR", str(blocked))
    model = cached_export(resolve("mpcnet-tiny"), "mpcnet-tiny")
    assert isinstance(model, bytes) and OrtNetwork(model).size == 128
    assert blocked.read_text() == "a file where the cache folder would be"


@pytest.mark.parametrize("args, message", [
    (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
    (["--backend", "onnxruntime", "--amp"], "autocast (amp) needs the torch backend"),
])
def test_restore_bad_backend_requests_exit_2_before_any_work(tmp_path, args, message):
    out = tmp_path / "out"
    result, _ = invoke("restore", WHOLE / "00.jpg", "-o", out, *args)
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()


def test_onnx_file_needs_the_onnxruntime_backend(bundled_onnx, tmp_path):
    result, _ = invoke("restore", WHOLE / "00.jpg", "-o", tmp_path / "out", "--weights", bundled_onnx[0])
    assert result.exit_code == 2 and "runs on the onnxruntime backend" in result.output


@pytest.mark.parametrize("args, message", [
    (["-o", "model.pt"], "must name an .onnx file"),
    (["-o", "m.onnx", "--int8"], "--int8 needs --faces"),
    (["-o", "m.onnx", "--weights", "no-such-model"], "neither a file nor a name"),
])
def test_export_bad_requests_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result, _ = invoke("export", "onnx", *args)
    assert result.exit_code == 2 and message in result.output
    assert not list(tmp_path.iterdir())


def test_export_never_replaces_a_file_unasked(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"mine")
    result, _ = invoke("export", "onnx", "-o", out)
    assert result.exit_code == 2 and "--overwrite" in result.output and out.read_bytes() == b"mine"


def test_missing_onnx_packages_give_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(OnnxUnavailable, match=r"mpcnet\[onnx\]"):
        require("onnxruntime")
    result, _ = invoke("restore", WHOLE / "00.jpg", "-o", tmp_path / "out", "--backend", "onnxruntime")
    assert result.exit_code == 2 and "onnxruntime not installed" in result.output
