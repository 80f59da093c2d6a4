"""The bad-input battery (issue 14): every failure a user can cause, built from ../shared/data in a
temporary folder, gives one clear line naming the file or the option, the right exit code (0 all
done, 1 some files failed, 2 bad request, 130 interrupted), its JSON entry, no traceback, no
output folder for a refused request, and an input folder left byte for byte as it was."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mpcnet.checkpoint import load_checkpoint, save_checkpoint
from mpcnet_cli.main import app
from tests.conftest import DATA, REPO
from tests.test_restore_cli import tree_hashes

FACES = DATA / "codeformer-inputs" / "cropped_faces"
WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
runner = CliRunner()


def cli(*args, env=None):
    """``(result, JSON summary or None)`` of one in-process command."""
    result = runner.invoke(app, [str(a) for a in args], env=env)
    report = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result, report


def assert_one_clean_line(result, *words):
    """The reason is on stderr, in one line holding every word, and no traceback."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if all(w in line for w in words)]
    assert len(lines) == 1, result.stderr


@pytest.fixture
def faces(tmp_path) -> Path:
    """Two real aligned faces downscaled to 128 px: the good files of every batch."""
    src = tmp_path / "faces"
    src.mkdir()
    for name in sorted(p.name for p in FACES.glob("*.png"))[:2]:
        cv2.imwrite(str(src / name), cv2.resize(cv2.imread(str(FACES / name)), (128, 128),
                                                interpolation=cv2.INTER_AREA))
    return src


def restore_aligned(src, out, weights, *extra):
    return cli("restore", src, "-o", out, "--weights", weights, "--aligned", "--upscale", "1", "--json", *extra)


def entry(report, name):
    [row] = [r for r in report["results"] if Path(r["source"]).name == name]
    return row


# -- restore: one bad file fails with its reason, the batch goes on (exit 1) ------------------------

BAD_FILES = {  # name → (bytes from a good face, expected reason)
    "empty.jpg": (lambda good: b"", "empty file (0 bytes)"),
    "text.jpg": (lambda good: b"this is not a photo\n", "not an image or corrupt"),
    "cut.png": (lambda good: good[: len(good) // 2], "corrupt or truncated image data"),
    "dot.png": (lambda good: cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), "too small (1×1)"),
}


def test_every_kind_of_bad_file_fails_alone(faces, tmp_path, tiny_weights):
    good = next(faces.glob("*.png")).read_bytes()
    for name, (make, _) in BAD_FILES.items():
        (faces / name).write_bytes(make(good))
    (faces / "Zoë 写真.png").write_bytes(good)  # a unicode name is a good file
    before = tree_hashes(faces)
    result, report = restore_aligned(faces, tmp_path / "out", tiny_weights)
    assert result.exit_code == 1 and (report["restored"], report["failed"]) == (3, len(BAD_FILES))
    for name, (_, reason) in BAD_FILES.items():
        assert entry(report, name) | {"source": name} == {"source": name, "status": "failed", "output": None,
                                                          "faces": 0, "message": reason}
        assert_one_clean_line(result, name, reason)
    assert (tmp_path / "out" / "restored_imgs" / "Zoë 写真.png").is_file()
    assert tree_hashes(faces) == before


def test_single_photo_with_output_beside_it(faces, tmp_path, tiny_weights, monkeypatch):
    """Issue 14's point 0, kept: `restore photo.png -o out` in the photo's own folder."""
    monkeypatch.chdir(faces)
    name = sorted(p.name for p in faces.iterdir())[0]
    before = tree_hashes(faces)
    result, report = restore_aligned(name, "out", tiny_weights)
    assert result.exit_code == 0 and report["restored"] == 1
    assert (faces / "out" / "restored_imgs" / name).is_file()
    assert {k: v for k, v in tree_hashes(faces).items() if k.parts[0] != "out"} == before

def test_face_crops_never_clash_or_land_without_their_photo(faces, tmp_path, tiny_weights):
    """--save-faces names crops NAME_00.png whatever the extension: of a.png beside a.jpg only a.jpg is
    restored, and a photo one of whose files exists is written not at all (no restored photo whose
    crops are missing, which a --skip-existing rerun would then never write)."""
    first, second = sorted(faces.iterdir())
    cv2.imwrite(str(faces / "a.jpg"), cv2.imread(str(first)))
    first.rename(faces / "a.png")
    out = tmp_path / "out"
    (out / "cropped_faces").mkdir(parents=True)
    (out / "cropped_faces" / f"{second.stem}_00.png").write_bytes(b"a user's file")
    before = tree_hashes(faces)
    result, report = restore_aligned(faces, out, tiny_weights, "--save-faces")
    assert result.exit_code == 1 and report["restored"] == 1
    assert entry(report, "a.jpg")["status"] == "restored"
    assert "would take the names of" in entry(report, "a.png")["message"]
    assert "nothing of this photo was written" in entry(report, second.name)["message"]
    assert sorted(p.name for p in (out / "restored_imgs").iterdir()) == ["a.jpg"]
    assert sorted(p.name for p in (out / "cropped_faces").iterdir()) == sorted(["a_00.png", f"{second.stem}_00.png"])
    assert (out / "cropped_faces" / f"{second.stem}_00.png").read_bytes() == b"a user's file"
    assert tree_hashes(faces) == before


def test_dangling_symlink_is_reported_and_counted(faces, tmp_path, tiny_weights):
    (faces / "gone.png").symlink_to(tmp_path / "deleted.png")
    before = tree_hashes(faces)
    result, report = restore_aligned(faces, tmp_path / "out", tiny_weights)
    assert result.exit_code == 1
    row = entry(report, "gone.png")
    assert row["status"] == "failed" and "broken symbolic link" in row["message"] and "deleted.png" in row["message"]
    assert (report["files"], report["restored"], report["failed"]) == (3, 2, 1)
    assert_one_clean_line(result, "gone.png", "broken symbolic link")
    assert tree_hashes(faces) == before and (faces / "gone.png").is_symlink()


def test_upscale_beyond_the_pixel_limit_fails_per_file_and_the_batch_goes_on(faces, tmp_path, tiny_weights):
    big = tmp_path / "big"
    big.mkdir()
    shutil.copy(next(FACES.glob("*.png")), big / "a512.png")  # 512 px: ×20 is 10240², over 64 M pixels
    shutil.copy(next(faces.glob("*.png")), big / "b128.png")  # 128 px: ×20 is 2560², under the limit
    before = tree_hashes(big)
    result, report = cli("restore", big, "-o", tmp_path / "out", "--weights", tiny_weights, "--aligned",
                         "--upscale", "20", "--json")
    assert result.exit_code == 1
    row = entry(report, "a512.png")
    assert row["status"] == "failed" and "10240×10240" in row["message"] and "--max-pixels" in row["message"]
    assert entry(report, "b128.png")["status"] == "restored"
    assert cv2.imread(str(tmp_path / "out" / "restored_imgs" / "b128.png")).shape == (2560, 2560, 3)
    assert_one_clean_line(result, "a512.png", "--max-pixels")
    assert tree_hashes(big) == before


def test_a_photo_too_large_for_the_default_upscale_keeps_its_size(tmp_path, tiny_weights):
    """The default ×2 (not asked for) of a photo over a quarter of --max-pixels (16 MP by default) would
    fail it: the photo is restored at its own size, with a note; an --upscale 2 asked for still fails."""
    photo = WHOLE / "05.jpg"  # 191×264 = 50,424 pixels: ×2 is 201,696
    result, report = cli("restore", photo, "-o", tmp_path / "out", "--weights", tiny_weights, "--detector", "mtcnn",
                         "--max-pixels", "100000", "--json")
    assert result.exit_code == 0, result.output
    [row] = report["results"]
    assert row["status"] == "restored" and row["faces"] == 1
    assert "kept at its size: ×2 would be 382×528, over --max-pixels" in row["message"]
    assert cv2.imread(str(tmp_path / "out" / "restored_imgs" / "05.jpg")).shape == (264, 191, 3)
    result, report = cli("restore", photo, "-o", tmp_path / "asked", "--weights", tiny_weights, "--detector",
                         "mtcnn", "--max-pixels", "100000", "--upscale", "2", "--json")
    assert result.exit_code == 1 and "382×528 at upscale 2, is over the --max-pixels" in report["results"][0]["message"]


def test_an_image_that_does_not_fit_in_memory_is_refused_before_decoding(faces, tmp_path, tiny_weights, monkeypatch):
    """The estimate (input, output at --upscale, background) is compared with the free memory."""
    from mpcnet.restoration import stages

    # room for a 128 px face at ×1 (about 0.5 MB) but not at ×4 (about 3.5 MB)
    monkeypatch.setattr(stages, "available_bytes", lambda: 2_000_000)
    before = tree_hashes(faces)
    result, report = restore_aligned(faces, tmp_path / "x1", tiny_weights)
    assert result.exit_code == 0 and report["restored"] == 2
    result, report = cli("restore", faces, "-o", tmp_path / "x4", "--weights", tiny_weights, "--aligned",
                         "--upscale", "4", "--bg-upsampler", "bicubic", "--json")
    assert result.exit_code == 1 and report["failed"] == 2
    for row in report["results"]:
        # the decoded input (counted at 16 bits: the header does not say) and, aligned, its float32
        # copy; two copies of the 512² output in the input's sample type (16 bits)
        need = 128 * 128 * 3 * (2 + 4) + 512 * 512 * 3 * 2 * 2
        assert f"128×128 at upscale 4 needs about {need / 2 ** 20:.1f} MiB of memory" in row["message"]
        assert "1.9 MiB is available (lower --upscale" in row["message"]
    assert tree_hashes(faces) == before


def test_memory_error_is_caught_per_file(faces, tmp_path, tiny_weights, monkeypatch):
    """The last resort behind the estimate: a MemoryError fails its file, not the batch."""
    from mpcnet.restoration.scheduler import RestorePipeline

    compose = RestorePipeline._compose
    first = sorted(faces.iterdir())[0].name

    def short_of_memory(self, photo):
        if photo.source.name == first:
            raise MemoryError
        return compose(self, photo)

    monkeypatch.setattr(RestorePipeline, "_compose", short_of_memory)
    result, report = restore_aligned(faces, tmp_path / "out", tiny_weights)
    assert result.exit_code == 1 and report["restored"] == 1
    assert entry(report, first)["status"] == "failed" and "out of memory" in entry(report, first)["message"]
    assert_one_clean_line(result, first, "out of memory")


def fake_full_disk(monkeypatch, name):
    """``write_bytes_atomic`` finds the disk full when it flushes ``name``."""
    fsync = os.fsync

    def full(fd):
        if name in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full)


def test_disk_full_fails_the_file_with_no_partial_output(faces, tmp_path, tiny_weights, monkeypatch):
    first, second = sorted(p.name for p in faces.iterdir())
    fake_full_disk(monkeypatch, first)
    out = tmp_path / "out"
    result, report = restore_aligned(faces, out, tiny_weights)
    assert result.exit_code == 1
    assert entry(report, first)["status"] == "failed" and "disk full" in entry(report, first)["message"]
    assert entry(report, second)["status"] == "restored"
    assert sorted(p.name for p in (out / "restored_imgs").iterdir()) == [second]  # no partial file, no .part
    assert_one_clean_line(result, first, "disk full")

    result = cli("degrade", faces, "-o", tmp_path / "lq", "--size", "64", "--json")[0]
    assert result.exit_code == 1 and "disk full" in json.loads(result.stdout)["failed"][0]["error"]
    assert sorted(p.name for p in (tmp_path / "lq").iterdir()) == sorted(["manifest.csv", second])


# -- bad requests: one line, exit 2, nothing created ---------------------------------------------

def torch_file(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    good = (REPO / "weights" / "mpcnet_tiny128.pth").read_bytes()
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(good[:len(good) // 2])
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    else:  # a pickle that would call os.system
        torch.save({"params": Evil()}, path)
    return path


class Evil:
    def __reduce__(self):
        return os.system, ("echo pwned",)


BAD_REQUESTS = {
    "random-bytes checkpoint": (lambda t, w: ["--weights", torch_file(t, "random")], "not a readable PyTorch"),
    "truncated checkpoint": (lambda t, w: ["--weights", torch_file(t, "truncated")], "not a readable PyTorch"),
    "text checkpoint": (lambda t, w: ["--weights", torch_file(t, "text")], "not a readable PyTorch"),
    "malicious checkpoint": (lambda t, w: ["--weights", torch_file(t, "evil")], "could run code"),
    "-o is a file": (lambda t, w: ["--weights", w, "-o", t / "note.txt"], "is a file, not a folder"),
    "-o under a file": (lambda t, w: ["--weights", w, "-o", t / "note.txt" / "out"], "cannot be made"),
    "--overwrite with --skip-existing": (lambda t, w: ["--weights", w, "--overwrite", "--skip-existing"],
                                         "contradict"),
    "--max-pixels 0": (lambda t, w: ["--weights", w, "--max-pixels", "0"], "--max-pixels must be"),
    "--suffix with a path": (lambda t, w: ["--weights", w, "--suffix", "/../../escaped"], "may not hold /"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=str)
def test_restore_bad_request(case, faces, tmp_path, tiny_weights):
    build, words = BAD_REQUESTS[case]
    (tmp_path / "note.txt").write_text("a user's file\n")
    extra = build(tmp_path, tiny_weights)
    out = ["-o", tmp_path / "out"] if "-o" not in extra else []
    before = tree_hashes(faces)
    result, _ = cli("restore", faces, "--aligned", *out, *extra)
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", words)
    assert not (tmp_path / "out").exists() and (tmp_path / "note.txt").read_text() == "a user's file\n"
    assert tree_hashes(faces) == before


# Every command that takes --weights loads it through the one loader: the same file, the same line.
WEIGHTS_COMMANDS = {
    "restore": lambda src, out, w: ["restore", src, "--aligned", "-o", out, "--weights", w],
    "export onnx": lambda src, out, w: ["export", "onnx", "-o", out / "m.onnx", "--weights", w],
    "eval": lambda src, out, w: ["eval", "--lq", src, "--metrics", "niqe", "--weights", w],
    "benchmark restore": lambda src, out, w: ["benchmark", "restore", src, "--aligned", "--weights", w],
}


def misfit_file(tmp_path, kind):
    """An MPCNet checkpoint whose weights are not the architecture's it records."""
    path = tmp_path / f"{kind}.pth"
    save_checkpoint({"params": {}, "arch": load_checkpoint(REPO / "weights" / "mpcnet_tiny128.pth")["arch"]}, path)
    return path


@pytest.mark.parametrize("kind, make, words", [
    ("truncated", torch_file, "not a readable PyTorch checkpoint"),
    ("evil", torch_file, "could run code"),
    ("misfit", misfit_file, "does not fit this MPCNet"),
], ids=["truncated", "malicious", "weights of another network"])
def test_one_bad_model_file_is_one_clear_line_from_every_command(faces, tmp_path, kind, make, words):
    bad = make(tmp_path, kind)
    for command, args in WEIGHTS_COMMANDS.items():
        result, _ = cli(*args(faces, tmp_path / "out", bad))
        assert result.exit_code == 2, command
        assert_one_clean_line(result, "error:", str(bad), words)
    assert not (tmp_path / "out").exists()


def test_mtcnn_without_its_package_is_one_clear_line(tmp_path, tiny_weights, monkeypatch):
    """`pip install -e .` alone: no facenet-pytorch and no MPCNET_WEIGHTS_DIR for the other detectors."""
    monkeypatch.delenv("MPCNET_WEIGHTS_DIR")
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails as when not installed
    result, _ = cli("restore", WHOLE / "00.jpg", "-o", tmp_path / "out", "--weights", tiny_weights)
    assert result.exit_code == 2
    assert_one_clean_line(result, "mtcnn", "facenet-pytorch", "MPCNET_WEIGHTS_DIR")
    assert not (tmp_path / "out").exists()


def test_an_internal_bug_is_one_line_and_debug_shows_it(faces, tmp_path, tiny_weights, monkeypatch):
    from mpcnet.restoration.scheduler import RestorePipeline

    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(RestorePipeline, "run", bug)
    result, _ = restore_aligned(faces, tmp_path / "out", tiny_weights)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert_one_clean_line(result, "unexpected internal error", "ZeroDivisionError", "bug", "--debug", "MPCNET_DEBUG")
    result = runner.invoke(app, ["--debug", "restore", str(faces), "-o", str(tmp_path / "out"), "--weights",
                                 tiny_weights, "--aligned"])
    assert isinstance(result.exception, ZeroDivisionError)
    result = runner.invoke(app, ["restore", str(faces), "-o", str(tmp_path / "out"), "--weights", tiny_weights,
                                 "--aligned"], env={"MPCNET_DEBUG": "1"})
    assert isinstance(result.exception, ZeroDivisionError)


def test_a_closed_pipe_ends_quietly_not_as_a_bug():
    """`mpcnet degrade --preset list | head -1`: the reader leaves before the list is written; the
    command stops as Unix tools do (exit 1, as click's), with no 'internal error' line."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("mpcnet")), "degrade", "--preset", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command has imported anything, so its first write finds no reader
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr


# -- degrade: ranges and manifests are checked before any image -----------------------------------

RANGES = {
    "malformed YAML": ("gaussian_sigma: [3, 15\nscale: {", ["not valid YAML", "line 2"]),
    "negative sigma": ("gaussian_sigma: [-1, 5]\n", ["gaussian_sigma", "> 0"]),
    "reversed scale": ("scale: [8, 4]\n", ["scale", "lo ≤ hi"]),
    "JPEG quality 200": ("jpeg_quality: [10, 200]\n", ["jpeg_quality", "≤ 100"]),
    "even median only": ("median_size: [2, 2]\n", ["median_size", "odd"]),
    "probability as a range": ("blur_prob: [0, 1]\n", ["blur_prob", "≤ 1"]),
    "unknown key": ("sigma: 3\n", ["unknown degradation range", "sigma"]),
    "not a mapping": ("- 1\n- 2\n", ["mapping"]),
    "binary file": (b"\x89\xff\x00\xfe" * 64, ["not a text file"]),
}


@pytest.mark.parametrize("case", RANGES, ids=str)
def test_degrade_bad_ranges(case, faces, tmp_path):
    content, words = RANGES[case]
    ranges = tmp_path / "ranges.yml"
    ranges.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = tree_hashes(faces)
    result, _ = cli("degrade", faces, "-o", tmp_path / "lq", "--ranges", ranges)
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", *words)
    assert not (tmp_path / "lq").exists() and tree_hashes(faces) == before


def manifest_variant(text: str, case: str) -> str | bytes:
    header, *rows = text.splitlines()
    if case == "truncated":
        return text[: len(header) + 1 + len(rows[0]) // 2]
    if case == "non-numeric":
        cols = header.split(",")
        cells = rows[0].split(",")
        cells[cols.index("scale")] = "big"
        return "\n".join([header, ",".join(cells), *rows[1:]]) + "\n"
    if case == "wrong columns":
        return text.replace("scale", "ratio", 1)
    if case == "escaping output path":
        return text.replace(rows[0].split(",")[0], "../../elsewhere.png", 1)
    if case == "header only":
        return header + "\n"
    return np.random.default_rng(1).bytes(600)  # binary


MANIFESTS = {"truncated": ["line 2", "cut short"], "non-numeric": ["line 2", "scale 'big' is not a number"],
             "wrong columns": ["scale", "not a degrade manifest"], "binary": ["not a text file"],
             "escaping output path": ["output", "relative path inside"], "header only": ["no rows"]}


@pytest.mark.parametrize("case", MANIFESTS, ids=str)
def test_degrade_bad_manifest(case, faces, tmp_path):
    first = tmp_path / "first"
    assert cli("degrade", faces, "-o", first, "--size", "64")[0].exit_code == 0
    bad = tmp_path / "bad.csv"
    variant = manifest_variant((first / "manifest.csv").read_text(), case)
    bad.write_bytes(variant if isinstance(variant, bytes) else variant.encode())
    before = tree_hashes(faces)
    result, _ = cli("degrade", faces, "-o", tmp_path / "again", "--from-manifest", bad)
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", "manifest", *MANIFESTS[case])
    assert not (tmp_path / "again").exists() and tree_hashes(faces) == before


def test_degrade_broken_jsonl_manifest(faces, tmp_path):
    first = tmp_path / "first"
    assert cli("degrade", faces, "-o", first, "--size", "64", "--manifest", "jsonl")[0].exit_code == 0
    text = (first / "manifest.jsonl").read_text()
    (tmp_path / "cut.jsonl").write_text(text[: len(text) - 20])
    result, _ = cli("degrade", faces, "-o", tmp_path / "again", "--from-manifest", tmp_path / "cut.jsonl")
    assert result.exit_code == 2 and not (tmp_path / "again").exists()
    assert_one_clean_line(result, "line 2", "not JSON")


# -- eval ----------------------------------------------------------------------------------------

def test_eval_empty_lq_names_the_users_folder(tmp_path, tiny_weights):
    (tmp_path / "empty").mkdir()
    result, _ = cli("eval", "--lq", tmp_path / "empty", "--weights", tiny_weights, "--metrics", "niqe")
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", "no images in --lq", str(tmp_path / "empty"))
    assert "mpcnet-eval-" not in result.stderr


def test_eval_of_paired_metrics_without_gt_is_refused_before_restoring(faces, tmp_path, tiny_weights):
    """`--metrics psnr` without `--gt` skipped every metric and exited 0 with an empty report."""
    result, _ = cli("eval", "--lq", faces, "--weights", tiny_weights, "--metrics", "psnr,fid", "-o", tmp_path / "r")
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", "--metrics psnr,fid compare with ground truth: give --gt")
    assert not (tmp_path / "r").exists()


def test_eval_output_on_a_file_is_refused_before_scoring(faces, tmp_path):
    (tmp_path / "report").write_text("a user's file\n")
    result, _ = cli("eval", "--restored", faces, "--metrics", "niqe", "-o", tmp_path / "report")
    assert result.exit_code == 2 and (tmp_path / "report").read_text() == "a user's file\n"
    assert_one_clean_line(result, "error:", "is a file, not a folder")
    assert "mpcnet eval:" not in result.stderr  # nothing was scored


def test_eval_refuses_before_restoring_what_would_fail_after(faces, tmp_path, tiny_weights):
    """A report already in -o, or a GT of another size than every input, is refused before any face
    is restored (it used to come after restoring the whole set, and left restored_imgs/ behind)."""
    gt = tmp_path / "gt"
    gt.mkdir()
    for face in faces.iterdir():  # the faces are 128 px: their GT at 256 px cannot be paired
        cv2.imwrite(str(gt / face.name), cv2.resize(cv2.imread(str(face)), (256, 256)))
    result, _ = cli("eval", "--lq", faces, "--gt", gt, "--weights", tiny_weights, "--metrics", "psnr",
                    "-o", tmp_path / "report")
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", "no pair could be scored", "128×128 vs 256×256")
    assert not (tmp_path / "report").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.md").write_text("a user's report\n")
    result, _ = cli("eval", "--lq", faces, "--weights", tiny_weights, "--metrics", "niqe", "-o", tmp_path / "old")
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["report.md"]
    assert (tmp_path / "old" / "report.md").read_text() == "a user's report\n"


def test_eval_scores_what_it_read_and_restored_not_what_lies_around(faces, tmp_path, tiny_weights):
    """A face left in -o/restored_imgs by an earlier run is not scored as this run's; an unreadable
    restored face is named and left out (exit 1), the others scored; a report into --gt is refused."""
    out = tmp_path / "report"
    (out / "restored_imgs").mkdir(parents=True)
    shutil.copy(next(FACES.glob("*.png")), out / "restored_imgs" / "left-over.png")
    result, report = cli("eval", "--lq", faces, "--gt", faces, "--weights", tiny_weights, "--metrics", "psnr",
                         "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert report["images"] == 2 and "left-over" not in json.dumps(report["per_image"])
    # a face that fails this run is not scored from an earlier run's output either, though its GT is there
    lq, gt = tmp_path / "lq", tmp_path / "gt"
    shutil.copytree(faces, lq)
    shutil.copytree(faces, gt)
    (lq / "left-over.png").write_text("garbage")
    shutil.copy(next(FACES.glob("*.png")), gt / "left-over.png")
    result, report = cli("eval", "--lq", lq, "--gt", gt, "--weights", tiny_weights, "--metrics", "psnr",
                         "-o", out, "--overwrite", "--json")
    assert result.exit_code == 1 and report["images"] == 2 and "left-over" not in json.dumps(report["per_image"])
    restored = tmp_path / "restored"
    shutil.copytree(faces, restored)
    first, second = sorted(restored.iterdir())
    first.write_text("garbage")
    result, report = cli("eval", "--restored", restored, "--gt", faces, "--metrics", "psnr", "--json")
    assert result.exit_code == 1 and report["images"] == 1 and second.stem in report["per_image"]
    assert report["unpaired"]["unreadable"] == [f"{first}: not an image or corrupt"]
    result, _ = cli("eval", "--restored", restored, "--gt", faces, "--metrics", "psnr", "-o", faces)
    assert result.exit_code == 2 and "inside the input folder" in result.stderr
    assert sorted(p.name for p in faces.iterdir()) == sorted(p.name for p in restored.iterdir())


def test_eval_exit_1_when_an_input_failed_and_json_names_no_deleted_folder(faces, tmp_path, tiny_weights):
    (faces / "empty.png").write_bytes(b"")
    before = tree_hashes(faces)
    result, report = cli("eval", "--lq", faces, "--weights", tiny_weights, "--metrics", "niqe", "--json")
    assert result.exit_code == 1
    assert report["restored"] is None and report["images"] == 2
    assert [(Path(f["source"]).name, f["message"]) for f in report["restore"]["failures"]] == [
        ("empty.png", "empty file (0 bytes)")]
    assert_one_clean_line(result, "empty.png", "empty file")
    assert tree_hashes(faces) == before


# -- train: option files and datasets are checked before the experiment folder exists -------------

def tiny_options(tmp_path, **changes) -> dict:
    from tests.test_train import mpcnet_options

    opt = mpcnet_options(tmp_path / "faces", tmp_path / "exp", "tiny", total_iter=2, gan=False)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = opt
        for key in parents:
            node = node[key]
        node[last] = value
    return opt


TRAIN = {
    "malformed YAML": (None, ["not valid YAML", "line"]),
    "missing dataset folder": ({"datasets.train.dataroot_gt": "no/such/faces"}, ["datasets.train.dataroot_gt",
                                                                                  "does not exist"]),
    "negative total_iter": ({"train.total_iter": -5}, ["train.total_iter", "integer ≥ 1"]),
    "batch size zero": ({"datasets.train.batch_size_per_gpu": 0}, ["datasets.train.batch_size_per_gpu", "≥ 1"]),
    "negative sigma": ({"datasets.train.degradation": {"gaussian_sigma": [-2, 1]}},
                       ["datasets.train.degradation", "gaussian_sigma", "> 0"]),
    "no datasets": ({"datasets": None}, ["'datasets' must be a mapping"]),
}


@pytest.mark.parametrize("case", TRAIN, ids=str)
def test_train_bad_options(case, faces, tmp_path, monkeypatch):
    changes, words = TRAIN[case]
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(tiny_options(tmp_path)))
    bad = tmp_path / "bad.yml"
    if changes is None:
        bad.write_text(good.read_text().replace("train:", "train: [", 1))
    else:
        bad.write_text(yaml.safe_dump(tiny_options(tmp_path, **changes)))
    result, _ = cli("train", "-opt", good, "-opt", bad)  # the bad second stage stops the first from starting
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", "bad.yml", *words)
    assert not (tmp_path / "exp").exists()


def test_train_tiny_refuses_other_stages_and_a_new_set_key_is_pointed_out(faces, tmp_path, monkeypatch):
    """`--tiny` on the StyleGAN2 stage raised a TypeError inside training; a mistyped `--set` key was
    added without a word (here the run stops at the missing data, after the note)."""
    monkeypatch.chdir(tmp_path)
    stylegan = REPO / "options" / "train_stylegan2_tiny128.yml"
    result, _ = cli("train", "-opt", stylegan, "--tiny")
    assert result.exit_code == 2
    assert_one_clean_line(result, "error:", "--tiny shrinks MPCNet option files", "StyleGAN2")
    assert not (tmp_path / "experiments").exists()
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(tiny_options(tmp_path)))
    result, _ = cli("train", "-opt", good, "--set", "train.total_iters=2", "--set", "datasets.train.dataroot_gt=nope")
    assert result.exit_code == 2
    assert_one_clean_line(result, "note:", "--set train.total_iters", "no such option")
    assert "--set datasets.train.dataroot_gt" not in result.stderr  # a key the file has: nothing to say


def test_resume_removes_stale_part_files(tmp_path, monkeypatch):
    from mpcnet.train import train_pipeline

    faces = tmp_path / "faces"
    faces.mkdir()
    for src in sorted((DATA / "celeba-hq-clean" / "sean-1024" / "style_imgs_test").glob("*.jpg"))[:4]:
        cv2.imwrite(str(faces / f"{src.stem}.png"), cv2.resize(cv2.imread(str(src)), (64, 64)))
    opt = tiny_options(tmp_path)
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(opt))
    models = Path(train_pipeline(path)["experiments_root"]) / "models"
    stale = [models / ".net_g_4.pth.x1y2.part", models.parent / "training_states" / ".4.state.k9.part"]
    for part in stale:
        part.write_bytes(b"half a checkpoint")  # what kill -9 during a save leaves
    opt["train"]["total_iter"] = 3
    path.write_text(yaml.safe_dump(opt))
    assert train_pipeline(path, resume=True)["iter"] == 3
    assert not any(p.exists() for p in stale)
    assert (models / "net_g_3.pth").is_file()


# -- interrupts: a real process and a real signal -------------------------------------------------

STALL = """
import os, sys, time
marker, fsync, calls = sys.argv[1], os.fsync, []
def stall(fd):  # the third write stalls between writing its bytes and renaming them into place
    calls.append(fd)
    if len(calls) == 3:
        open(marker, "w").close()
        time.sleep(120)
    fsync(fd)
os.fsync = stall
from mpcnet_cli.main import app
sys.argv = ["mpcnet", *sys.argv[2:]]
app()
"""


def interrupted_run(tmp_path, sig, *args):
    marker = tmp_path / "stalled"
    # SIGINT back to its default in the child, as in a terminal: a test run started in the background
    # (nohup, `&`) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-c", STALL, str(marker), *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        try:
            proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    if not marker.exists():
        proc.kill()
        pytest.fail(f"the run never reached its first write within 120 s: {proc.communicate(timeout=30)}")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


@pytest.fixture
def six_faces(tmp_path) -> Path:
    src = tmp_path / "six"
    src.mkdir()
    for name in sorted(p.name for p in FACES.glob("*.png"))[:6]:
        cv2.imwrite(str(src / name), cv2.resize(cv2.imread(str(FACES / name)), (96, 96), interpolation=cv2.INTER_AREA))
    return src


@pytest.mark.timeout(300)
def test_restore_sigterm_keeps_finished_outputs_and_resumes(six_faces, tmp_path, tiny_weights):
    before = tree_hashes(six_faces)
    out = tmp_path / "out"
    code, stdout, stderr = interrupted_run(tmp_path, signal.SIGTERM, "restore", six_faces, "-o", out, "--weights",
                                           tiny_weights, "--aligned", "--upscale", "1", "--batch-size", "1", "--json")
    assert code == 130 and "Traceback" not in stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["restored"] == 2 and report["files"] == 2
    assert [line for line in stderr.splitlines() if "interrupted" in line] == [
        "interrupted after 2 of 6 files; finished outputs are kept, none is partial: rerun with --skip-existing "
        "to do the rest"]
    written = sorted(p.name for p in (out / "restored_imgs").iterdir())
    assert written == sorted(Path(r["output"]).name for r in report["results"])  # no partial file, no .part
    for name in written:
        assert cv2.imread(str(out / "restored_imgs" / name)).shape == (96, 96, 3)
    result, again = restore_aligned(six_faces, out, tiny_weights, "--skip-existing")
    assert result.exit_code == 0 and (again["skipped"], again["restored"]) == (2, 4)
    assert tree_hashes(six_faces) == before


@pytest.mark.timeout(300)
def test_degrade_ctrl_c_keeps_finished_outputs_and_resumes(six_faces, tmp_path):
    """Ctrl-C after a truncated PNG (first in the batch: one line, no stray libpng message, which
    only a real process shows) and two good faces."""
    data = next(six_faces.glob("*.png")).read_bytes()
    (six_faces / "00cut.png").write_bytes(data[: len(data) // 2])
    before = tree_hashes(six_faces)
    out = tmp_path / "lq"
    code, stdout, stderr = interrupted_run(tmp_path, signal.SIGINT, "degrade", six_faces, "-o", out, "--size", "64",
                                           "--json")
    assert code == 130 and "Traceback" not in stderr and "libpng" not in stderr
    assert [line for line in stderr.splitlines() if "00cut.png" in line] == [
        "failed 00cut.png: corrupt or truncated image data"]
    assert "interrupted after 3 of 7 images" in stderr and "rerun with --skip-existing" in stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["processed"] == 2
    assert report["failed"] == [{"input": "00cut.png", "error": "corrupt or truncated image data"}]
    # the third image's write was the one interrupted: it left nothing, not even a part; the manifest
    # lists the two that finished
    assert sorted(p.name for p in out.iterdir()) == [*sorted(p.name for p in six_faces.iterdir())[1:3], "manifest.csv"]
    assert len((out / "manifest.csv").read_text().splitlines()) == 3
    result, again = cli("degrade", six_faces, "-o", out, "--size", "64", "--skip-existing", "--json")
    assert result.exit_code == 1 and (again["processed"], again["skipped"], len(again["failed"])) == (6, 2, 1)
    whole = tmp_path / "whole"
    assert cli("degrade", six_faces, "-o", whole, "--size", "64")[0].exit_code == 1
    assert (out / "manifest.csv").read_text() == (whole / "manifest.csv").read_text()
    assert tree_hashes(out) == tree_hashes(whole)  # resumed = uninterrupted, byte for byte
    assert tree_hashes(six_faces) == before
