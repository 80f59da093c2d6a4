"""The controls users of the peers reach for: --fidelity (PSNR to the input rises with W, on real
faces with the bundled model), --draw-box, --device auto|cpu|cuda|mps, and --aligned keeping the
input's size."""
import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mpcnet.restoration.detectors import detect_faces
from mpcnet.restoration.draw import BOX_COLOUR
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.restoration.scheduler import RestorePipeline
from mpcnet.utils import device as device_module
from mpcnet.utils.device import resolve_device
from mpcnet_cli.main import app
from tests.conftest import DATA, Negative

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
FIDELITIES = ("0", "0.25", "0.5", "0.75", "1")
runner = CliRunner()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, aligned_faces):
    """Three real aligned faces and a real photo with four faces (downscaled)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "faces").mkdir()
    for face in aligned_faces[:3]:
        (root / "faces" / face.name).write_bytes(face.read_bytes())
    group = cv2.imread(str(WHOLE / "00.jpg"))
    cv2.imwrite(str(root / "group.png"), cv2.resize(group, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA))
    return root


@pytest.mark.parametrize("aligned", [True, False], ids=["aligned-faces", "whole-photo"])
def test_psnr_to_the_input_rises_with_fidelity(photos, tmp_path, aligned):
    """The bundled model's output moves monotonically back to the input as W goes 0 → 1."""
    source = photos / "faces" if aligned else photos / "group.png"
    extra = ["--aligned"] if aligned else ["--detector", "yunet", "--upscale", "1", "--bg-upsampler", "none"]
    inputs = sorted(source.iterdir()) if aligned else [source]
    scores = []
    for w in FIDELITIES:
        result = runner.invoke(app, ["restore", str(source), "-o", str(tmp_path / w), "-w", w, "--ext", "png",
                                     "--json", "-q", *extra])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["fidelity"] == float(w) and report["faces"] == (3 if aligned else 4)
        outputs = [cv2.imread(r["output"]) for r in report["results"]]
        scores.append(np.mean([psnr(out, cv2.imread(str(src))) for out, src in zip(outputs, inputs)]))
    assert all(a < b for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] - scores[0] > 10  # W = 1 gives the input face back (up to rounding and resampling)


def test_default_fidelity_is_the_plain_restoration(photos, tmp_path):
    outs = []
    for args in ([], ["--fidelity", "0"]):
        result = runner.invoke(app, ["restore", str(photos / "faces"), "-o", str(tmp_path / str(len(args))),
                                     "--aligned", "--json", "-q", *args])
        outs.append([open(r["output"], "rb").read() for r in json.loads(result.stdout)["results"]])
    assert outs[0] == outs[1]
    result = runner.invoke(app, ["restore", str(photos / "faces"), "-o", str(tmp_path / "x"), "-w", "1.5"])
    assert result.exit_code == 2 and not (tmp_path / "x").exists()


def test_draw_box_marks_the_detected_faces_only(yunet, photos, tmp_path):
    restorer = FaceRestorer(Negative(), size=64)
    src = photos / "group.png"
    plain, boxed = (RestorePipeline(restorer, yunet, RestoreOptions(upscale=2, draw_box=draw)).run(
        [src], photos, tmp_path / str(draw)).results[0] for draw in (False, True))
    plain, boxed = cv2.imread(plain.output), cv2.imread(boxed.output)
    changed = np.abs(plain.astype(int) - boxed).max(axis=2) > 0
    faces = detect_faces(yunet, cv2.imread(str(src)))
    inside = np.zeros_like(changed)
    green = np.array(BOX_COLOUR) * 255
    for face in faces:
        x0, y0, x1, y1 = (face.box * 2).round().astype(int)
        inside[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6] = True
        edge = boxed[(y0 + y1) // 2, x0 - 1:x0 + 2].astype(int)  # the middle of the box's left side
        assert (np.abs(edge - green).max(axis=1) < 60).any()
    assert changed.any() and not (changed & ~inside).any()
    with pytest.raises(ValueError, match="aligned inputs are not detected"):
        RestoreOptions(aligned=True, draw_box=True)


def test_device_choice(monkeypatch):
    assert resolve_device("cpu") == ("cpu", "")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda, mps"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    device, note = resolve_device("auto")
    assert device == "mps" and "CPU" in note
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    assert resolve_device("auto") == ("cpu", "")
    with pytest.raises(ValueError, match="no Apple-silicon GPU"):
        resolve_device("mps")


def test_cli_refuses_an_absent_device(tmp_path, aligned_faces):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    result = runner.invoke(app, ["restore", str(aligned_faces[0]), "-o", str(tmp_path / "o"), "--device", "mps"])
    assert result.exit_code == 2 and "MPS" in result.output and not (tmp_path / "o").exists()


def test_aligned_faces_keep_their_size_unless_upscale_is_given(tmp_path, aligned_faces):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), cv2.imread(str(aligned_faces[0])))
    cv2.imwrite(str(src / "b.png"), cv2.resize(cv2.imread(str(aligned_faces[1])), (300, 300)))
    for args, sides in (([], {"a.png": 512, "b.png": 300}), (["--upscale", "2"], {"a.png": 1024, "b.png": 600})):
        out = tmp_path / f"out{len(args)}"
        result = runner.invoke(app, ["restore", str(src), "-o", str(out), "--aligned", "-q", *args])
        assert result.exit_code == 0, result.output
        for name, side in sides.items():
            assert cv2.imread(str(out / "restored_imgs" / name)).shape == (side, side, 3)
