"""`mpcnet restore` end to end on the real photos with a small MPCNet checkpoint (random weights,
saved in the contract's format): outputs of the right size and mode, the input folder unchanged,
broken files reported with the exit code, resumable, refused when unsafe."""
import hashlib
import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mpcnet_cli.main import app
from tests.conftest import DATA, REPO, shared_file

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
runner = CliRunner()


def restore(*args):
    result = runner.invoke(app, ["restore", *map(str, args)])
    report = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result, report


def tree_hashes(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def mixed_folder(tmp_path):
    """Real photos (downscaled), an RGBA one, a 1-channel one, in a subfolder too, and broken files."""
    src = tmp_path / "photos"
    (src / "trip").mkdir(parents=True)
    (src / "00.jpg").write_bytes((WHOLE / "00.jpg").read_bytes())
    rgba = cv2.imread(str(WHOLE / "06.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(src / "trip" / "rgba.png"), cv2.resize(rgba, (363, 419), interpolation=cv2.INTER_AREA))
    Image.open(WHOLE / "03.jpg").convert("L").save(src / "trip" / "gray.png")
    (src / "empty.jpg").write_bytes(b"")
    (src / "readme.jpg").write_text("this is not a photo\n")
    (src / "cut.jpg").write_bytes((WHOLE / "01.jpg").read_bytes()[:3000])
    cv2.imwrite(str(src / "dot.png"), np.full((1, 1, 3), 128, np.uint8))
    return src


def test_mixed_folder_report_exit_code_and_resume(mixed_folder, tmp_path, tiny_weights):
    before = tree_hashes(mixed_folder)
    out = tmp_path / "out"
    result, report = restore(mixed_folder, "-o", out, "--weights", tiny_weights, "--detector", "yunet",
                             "--upscale", "2", "--json")
    assert result.exit_code == 1, result.output
    rows = {r["source"].split("photos/")[1]: r for r in report["results"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "00.jpg": "restored", "trip/rgba.png": "restored", "trip/gray.png": "restored",
        "empty.jpg": "failed", "readme.jpg": "failed", "cut.jpg": "failed", "dot.png": "failed"}
    assert rows["00.jpg"]["faces"] == 4 and rows["trip/rgba.png"]["faces"] == 2 and rows["trip/gray.png"]["faces"] == 1
    assert (report["failed"], report["restored"], report["faces"]) == (4, 3, 7)
    assert report["detector"] == "yunet" and report["network_size"] == 64
    assert all(report["stage_seconds"][s] > 0 for s in ("read", "detect", "align", "network", "background", "paste", "write"))
    for name in ("empty.jpg", "readme.jpg", "cut.jpg", "dot.png"):
        assert f"{name}: " in result.stderr  # one line per bad file
    assert tree_hashes(mixed_folder) == before  # the input folder is byte-for-byte unchanged

    restored = out / "restored_imgs"
    photo = cv2.imread(str(restored / "00.jpg"), cv2.IMREAD_UNCHANGED)
    assert photo.shape == (620, 982, 3)
    rgba = cv2.imread(str(restored / "trip" / "rgba.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (838, 726, 4)
    gray = cv2.imread(str(restored / "trip" / "gray.png"), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (450, 800) and gray.dtype == np.uint8

    written = {p: p.stat().st_mtime_ns for p in restored.rglob("*")}
    again, report2 = restore(mixed_folder, "-o", out, "--weights", tiny_weights, "--detector", "yunet",
                             "--upscale", "2", "--json", "--skip-existing")
    assert again.exit_code == 1  # the broken files still fail
    assert (report2["skipped"], report2["failed"], report2["faces"]) == (3, 4, 0)
    assert report2["stage_seconds"]["network"] == 0 and report2["stage_seconds"]["detect"] == 0
    assert {p: p.stat().st_mtime_ns for p in restored.rglob("*")} == written
    assert not list(out.rglob("*.part"))


def test_aligned_faces_exit_zero_and_runs_are_identical(tmp_path, tiny_weights, aligned_faces):
    src = tmp_path / "faces"
    src.mkdir()
    for face in aligned_faces[:3]:
        shutil.copy(face, src)
    gray = DATA / "codeformer-inputs" / "gray_faces" / "Hepburn01.png"
    shutil.copy(gray, src)
    outs = []
    for run in ("a", "b"):
        result, report = restore(src, "-o", tmp_path / run, "--weights", tiny_weights, "--aligned",
                                 "--upscale", "1", "--json", "--suffix", "mpc")
        assert result.exit_code == 0, result.output
        assert report["restored"] == 4 and report["detector"] == "none (--aligned)"
        outs.append(tree_hashes(tmp_path / run))
    assert outs[0] == outs[1]  # the noise-free prior: same input, same output
    face = cv2.imread(str(tmp_path / "a" / "restored_imgs" / "Hepburn01_mpc.png"), cv2.IMREAD_UNCHANGED)
    assert face.shape == (512, 512, 3) and np.array_equal(face[..., 0], face[..., 2])
    assert not any(r["message"] for r in report["results"])  # square crops: nothing to say


def test_aligned_on_a_whole_photo_says_so(tmp_path, tiny_weights):
    result, report = restore(WHOLE / "00.jpg", "-o", tmp_path / "out", "--weights", tiny_weights, "--aligned",
                             "--json")
    assert result.exit_code == 0
    assert "not square (491×310): --aligned takes FFHQ-aligned face crops" in report["results"][0]["message"]


def test_many_faces_in_the_solvay_photo(tmp_path, tiny_weights):
    solvay = shared_file("data", "gpen-examples", "imgs", "Solvay_conference_1927.png")
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    result, report = restore(solvay, "-o", tmp_path / "out", "--weights", tiny_weights, "--upscale", "1",
                             "--json", "--batch-size", "16", "--ext", "jpg")
    assert result.exit_code == 0, result.output
    assert report["detector"] == "retinaface (retinaface-mobile)"  # the default when its weights are there
    assert 25 <= report["faces"] <= 30
    out = cv2.imread(str(tmp_path / "out" / "restored_imgs" / "Solvay_conference_1927.jpg"))
    assert out.shape == (568, 1328, 3)
    assert "alpha channel dropped" in report["results"][0]["message"]


def test_default_is_the_bundled_model_and_it_restores_held_out_faces(tmp_path):
    """The bundled default on four CelebA-HQ faces it never trained on (the pool's held-out split),
    degraded with eq. 1 at the CelebA-Test ranges: it beats its input's PSNR on average, and it
    brings its own parsing prior (the paste mask)."""
    from mpcnet.data.eq1_degradation import PAPER_RANGES, degrade
    from mpcnet.metrics.pixel import psnr

    held = [line for line in (REPO / "options" / "splits" / "tiny128_heldout.txt").read_text().split()
            if "sean-1024" in line][:4]
    (tmp_path / "lq").mkdir()
    gts = {}
    for i, rel in enumerate(held):
        gt = cv2.resize(cv2.imread(str(DATA / rel)), (512, 512), interpolation=cv2.INTER_AREA)
        lq, _ = degrade(gt.astype(np.float32) / 255, np.random.default_rng(i), PAPER_RANGES, out_size=512)
        cv2.imwrite(str(tmp_path / "lq" / f"{i}.png"), np.round(lq.clip(0, 1) * 255).astype(np.uint8))
        gts[f"{i}.png"] = gt
    result, report = restore(tmp_path / "lq", "-o", tmp_path / "out", "--aligned", "--json")
    assert result.exit_code == 0, result.output
    assert report["weights"] == "mpcnet-s256" and report["network_size"] == 256
    gain = np.mean([psnr(cv2.imread(str(tmp_path / "out" / "restored_imgs" / n)), gt)
                    - psnr(cv2.imread(str(tmp_path / "lq" / n)), gt) for n, gt in gts.items()])
    assert gain > 0.2, gain
    from mpcnet.restoration.restorer import FaceRestorer
    assert FaceRestorer.from_weights(None).parses


def test_unsafe_or_impossible_requests_are_refused(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    (src / "00.jpg").write_bytes((WHOLE / "00.jpg").read_bytes())
    result, _ = restore(src, "-o", src / "out", "--weights", tiny_weights)
    assert result.exit_code == 2 and "inside the input folder" in result.stderr
    assert sorted(p.name for p in src.iterdir()) == ["00.jpg"]
    result, _ = restore(src, "-o", tmp_path / "out", "--weights", tmp_path / "nothing.pth")
    assert result.exit_code == 2 and "nothing.pth" in result.stderr
    result, _ = restore(src, "-o", tmp_path / "out", "--weights", tiny_weights, "--bg-upsampler", "none")
    assert result.exit_code == 2 and "use it with --upscale 1" in result.stderr
    if not torch.cuda.is_available():
        result, _ = restore(src, "-o", tmp_path / "out", "--weights", tiny_weights, "--device", "cuda")
        assert result.exit_code == 2 and "no CUDA" in result.stderr
    assert not (tmp_path / "out").exists()


def test_single_photo_with_output_beside_it(tmp_path, tiny_weights, monkeypatch):
    """The most natural single-photo command, run in the photo's own folder: `restore photo.jpg -o out`."""
    (tmp_path / "photo.jpg").write_bytes((WHOLE / "00.jpg").read_bytes())
    monkeypatch.chdir(tmp_path)
    result, report = restore("photo.jpg", "-o", "out", "--weights", tiny_weights, "--detector", "mtcnn", "--json")
    assert result.exit_code == 0, result.output
    assert report["restored"] == 1 and (tmp_path / "out" / "restored_imgs" / "photo.jpg").is_file()
    result, report = restore("photo.jpg", "-o", ".", "--weights", tiny_weights, "--detector", "mtcnn", "--json")
    assert result.exit_code == 0 and (tmp_path / "restored_imgs" / "photo.jpg").is_file()
    assert (tmp_path / "photo.jpg").read_bytes() == (WHOLE / "00.jpg").read_bytes()
    # restoring an output again into the same place would replace its own input: that file fails, unharmed
    before = (tmp_path / "out" / "restored_imgs" / "photo.jpg").read_bytes()
    result, report = restore("out/restored_imgs/photo.jpg", "-o", "out", "--weights", tiny_weights,
                             "--detector", "mtcnn", "--overwrite", "--json")
    assert result.exit_code == 1 and "input file itself" in report["results"][0]["message"]
    assert (tmp_path / "out" / "restored_imgs" / "photo.jpg").read_bytes() == before


def test_several_inputs_as_the_shell_expands_a_glob(tmp_path, tiny_weights, monkeypatch):
    """`mpcnet restore *.jpg -o out` in the photos' folder: every photo, outputs under their own names;
    an output folder inside one of several input folders is still refused."""
    for name in ("04.jpg", "05.jpg"):
        (tmp_path / name).write_bytes((WHOLE / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    result, report = restore("04.jpg", "05.jpg", "-o", "out", "--weights", tiny_weights, "--detector", "mtcnn",
                             "--json")
    assert result.exit_code == 0, result.output
    assert report["restored"] == 2 and sorted(p.name for p in (tmp_path / "out" / "restored_imgs").iterdir()) == [
        "04.jpg", "05.jpg"]
    result, _ = restore("04.jpg", str(WHOLE), "-o", str(WHOLE / "out"), "--weights", tiny_weights)
    assert result.exit_code == 2 and "inside the input folder" in result.output and not (WHOLE / "out").exists()


def test_glob_input_and_amp(tmp_path, tiny_weights):
    result, report = restore(str(WHOLE / "0[45].jpg"), "-o", tmp_path / "out", "--weights", tiny_weights,
                             "--detector", "mtcnn", "--amp", "--json")
    assert result.exit_code == 0, result.output
    assert report["files"] == 2 and report["faces"] == 2 and report["amp"] is True
    assert cv2.imread(str(tmp_path / "out" / "restored_imgs" / "05.jpg")).shape == (528, 382, 3)
