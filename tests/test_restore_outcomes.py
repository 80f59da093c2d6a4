"""Exit codes and JSON of `mpcnet restore` for every outcome README promises: all done (0), a photo
with no face (still 0: reported, background upscaled and written), some failed (1), a bad request
(2, refused before any folder is created)."""
from __future__ import annotations

import json

import cv2
import pytest
import skimage.data
from typer.testing import CliRunner

from mpcnet_cli.main import app
from tests.conftest import DATA

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
runner = CliRunner()


def restore(*args):
    result = runner.invoke(app, ["restore", *map(str, args), "--detector", "yunet", "--json"])
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result, report


@pytest.fixture
def photos(tmp_path):
    """A real photo with one face, and a real photo with none (scikit-image's coffee cup)."""
    src = tmp_path / "in"
    src.mkdir()
    face = cv2.imread(str(WHOLE / "03.jpg"))
    cv2.imwrite(str(src / "face.jpg"), cv2.resize(face, (face.shape[1] // 2, face.shape[0] // 2)))
    cv2.imwrite(str(src / "cup.png"), cv2.resize(skimage.data.coffee()[..., ::-1], (200, 150)))
    return src


def statuses(report):
    return {r["source"].rsplit("/", 1)[1]: r["status"] for r in report["results"]}


def test_all_done_and_no_face_exit_0(photos, tmp_path, tiny_weights, yunet):
    out = tmp_path / "out"
    result, report = restore(photos, "-o", out, "--weights", tiny_weights)
    assert result.exit_code == 0, result.output
    assert statuses(report) == {"face.jpg": "restored", "cup.png": "no-face"}
    assert (report["restored"], report["no_face"], report["failed"], report["faces"]) == (1, 1, 0, 1)
    cup = cv2.imread(str(out / "restored_imgs" / "cup.png"))
    assert cup.shape == (300, 400, 3)  # written, background upscaled ×2
    # --faces-only: the no-face photo is reported and not written; still a success
    out2 = tmp_path / "faces_only"
    result, report = restore(photos, "-o", out2, "--weights", tiny_weights, "--faces-only")
    assert result.exit_code == 0 and statuses(report)["cup.png"] == "no-face"
    assert sorted(p.name for p in (out2 / "restored_imgs").iterdir()) == ["face.jpg"]


def test_some_failed_exit_1(photos, tmp_path, tiny_weights, yunet):
    (photos / "broken.jpg").write_bytes((WHOLE / "03.jpg").read_bytes()[:2000])
    result, report = restore(photos, "-o", tmp_path / "out", "--weights", tiny_weights)
    assert result.exit_code == 1
    assert statuses(report) == {"face.jpg": "restored", "cup.png": "no-face", "broken.jpg": "failed"}
    assert (report["restored"], report["no_face"], report["failed"]) == (1, 1, 1)
    assert "broken.jpg: " in result.stderr


@pytest.mark.parametrize("args,reason", [(("-o", "{in}/out"), "inside the input folder"),
                                         (("-o", "{tmp}/out", "--upscale", "0"), "upscale"),
                                         (("-o", "{tmp}/out", "--overwrite", "--skip-existing"), "--skip-existing contradict")],
                         ids=["output inside input", "bad upscale", "contradictory flags"])
def test_bad_request_exit_2_before_any_folder(photos, tmp_path, tiny_weights, args, reason):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    args = [a.format(**{"in": photos, "tmp": tmp_path}) for a in args]
    result = runner.invoke(app, ["restore", str(photos), *args, "--weights", tiny_weights])
    assert result.exit_code == 2, result.output
    assert reason in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created, input unchanged
