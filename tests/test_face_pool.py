"""The training face pool (scripts/build_face_pool.py) on a small data folder built from real files."""
from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys

import cv2
import pytest
from conftest import DATA, REPO, SHARED, shared_file
from PIL import Image

from mpcnet.data import face_pool

README = """# test data

| folder | what | count | licence |
|---|---|---|---|
| old/hq | clean aligned faces | 2 | CC BY-NC-SA 4.0 |
| old/inputs | low-quality inputs | 1 | same |
| old/maps | parsing maps | 0 | research |

Earlier folders: `old/h*` are `aligned`; `old/inputs` is not, so: `old/inputs` and `nothing/*` are `no`.

| folder | count | pool | licence |
|---|---|---|---|
| new/aligned | 3 | aligned | MIT, aligned crops |
| new/wild | 2 | detect | |
| new/nope | 1 | no | MIT |
"""
CARELL = "faces-wild/openface-examples/images__examples__carell.jpg"  # one 601×891 portrait, face ~690 px
HQ = ["celeba-hq-clean/sean-1024/style_imgs_test/28083.jpg", "celeba-hq-clean/sean-1024/style_imgs_test/28090.jpg"]


def _expected_split(path) -> str:
    b = int(hashlib.sha256(path.read_bytes()).hexdigest()[:8], 16) % 100
    return "heldout" if b < 12 else "val" if b < 17 else "train"


@pytest.fixture(scope="module")
def detectors():
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    shared_file("weights", "face_detection_yunet.onnx")
    from mpcnet.restoration.detectors import YuNetDetector, make_detector

    with pytest.MonkeyPatch.context() as mp:  # module scope runs before the autouse env fixture
        mp.setenv("MPCNET_WEIGHTS_DIR", str(SHARED / "weights"))
        return make_detector("retinaface"), YuNetDetector(face_pool.VERIFY_SCORE)


def _make_data(root):
    """old/hq: two 1024 px CelebA-HQ faces; new/aligned: a 128 px face (too small), a blurred one and
    a 600 px copy of old/hq's first (a near duplicate); new/wild: a portrait and its half-size copy."""
    for rel in HQ:
        (root / "old/hq").mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_file("data", rel), root / "old/hq" / rel.rsplit("/", 1)[1])
    for folder in ("old/inputs", "new/nope", "new/aligned", "new/wild/sub"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "codeformer-inputs/cropped_faces/0143.png", root / "old/inputs/0143.png")
    shutil.copy(shared_file("data", CARELL), root / "new/nope/carell.jpg")
    shutil.copy(DATA / CARELL, root / "new/wild/carell.jpg")
    photo = cv2.imread(str(DATA / CARELL))
    cv2.imwrite(str(root / "new/wild/sub/carell_half.png"), cv2.resize(photo, None, fx=0.5, fy=0.5,
                                                                       interpolation=cv2.INTER_AREA))
    first, second = (cv2.imread(str(DATA / rel)) for rel in HQ)
    cv2.imwrite(str(root / "new/aligned/small.png"), cv2.resize(first, (128, 128), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(root / "new/aligned/resized.png"), cv2.resize(first, (600, 600), interpolation=cv2.INTER_AREA))
    blurred = cv2.GaussianBlur(cv2.resize(second, (512, 512), interpolation=cv2.INTER_AREA), (0, 0), 4)
    cv2.imwrite(str(root / "new/aligned/blurry.png"), blurred)
    (root / "new/wild/SOURCE.txt").write_text("repo: x\nlicence: Apache-2.0 (from SOURCE.txt)\n")
    (root / "README.md").write_text(README)


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _manifest(out):
    with open(out / "manifest.csv", newline="") as fin:
        return list(csv.DictReader(fin))


@pytest.fixture(scope="module")
def built(tmp_path_factory, detectors):
    root = tmp_path_factory.mktemp("pool")
    data, out, splits = root / "data", root / "out", root / "splits"
    _make_data(data)
    splits.mkdir()
    (splits / "tiny128_val.txt").write_text(f"old/hq/{HQ[0].rsplit('/', 1)[1]}\n")
    fixed = face_pool.load_fixed_splits(splits)
    report = face_pool.build_pool(data, out, fixed, *detectors)
    return data, out, fixed, report


def test_sources_of_the_shared_readme():
    by_folder = {s.folder: s for s in face_pool.read_sources(DATA)}
    assert by_folder["faces-wild/deepface-tests"].pool == "detect"
    assert by_folder["faces-aligned/ddnm-celebahq"].pool == "aligned"
    assert by_folder["gpen-examples/ffhq-10"].pool == "aligned"
    assert by_folder["celeba-hq-clean/stargan-v2-256"].pool == "aligned"
    no = ("codeformer-inputs/gray_faces", "gpen-examples/grays", "gpen-examples/imgs")
    assert {by_folder[f].pool for f in no} == {"no"}
    assert by_folder["gpen-examples/segs"].pool == face_pool.UNCLASSIFIED
    assert by_folder["codeformer-inputs/gray_faces"].licence.startswith("S-Lab License 1.0")  # "same" as above
    assert by_folder["faces-wild/fairface-test"].licence == "FairFace: CC BY 4.0 (README). Web photos."


def test_readme_table_and_sentence(tmp_path):
    _make_data(tmp_path)
    sources = {s.folder: s for s in face_pool.read_sources(tmp_path)}
    assert {f: s.pool for f, s in sources.items()} == {
        "old/hq": "aligned", "old/inputs": "no", "old/maps": face_pool.UNCLASSIFIED,
        "new/aligned": "aligned", "new/wild": "detect", "new/nope": "no"}
    assert sources["old/inputs"].licence == "CC BY-NC-SA 4.0"
    assert sources["new/wild"].licence == "Apache-2.0 (from SOURCE.txt)"


def test_faces_drops_and_manifest(built):
    data, out, fixed, report = built
    rows = _manifest(out)
    assert list(rows[0]) == list(face_pool.MANIFEST_COLUMNS)
    files = {r["file"] for r in rows}
    assert files == {"faces/old__hq__28083.png", "faces/old__hq__28090.png", "faces/new__wild__carell_f0.png"}
    for row in rows:
        path = out / row["file"]
        with Image.open(path) as im:
            assert (im.size, im.mode) == ((512, 512), "RGB")
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    by_file = {r["file"]: r for r in rows}
    assert by_file["faces/old__hq__28083.png"]["native_size"] == "1024.0"
    assert by_file["faces/new__wild__carell_f0.png"]["licence"] == "Apache-2.0 (from SOURCE.txt)"
    assert by_file["faces/new__wild__carell_f0.png"]["source_file"] == "new/wild/carell.jpg"
    reasons = {d.face: d.reason for d in report.dropped}
    assert reasons["faces/new__aligned__small.png"] == "too-small"
    assert reasons["faces/new__aligned__blurry.png"] == "blurry"
    assert reasons["faces/new__aligned__resized.png"] == "duplicate"  # of the 1024 px original, which is kept
    half = [d for d in report.dropped if d.source_file == "new/wild/sub/carell_half.png" and d.reason == "duplicate"]
    assert len(half) == 1  # the half-size photo's face: a near duplicate, at half the native size
    native = float(by_file["faces/new__wild__carell_f0.png"]["native_size"])
    assert float(half[0].native_size) == pytest.approx(native / 2, rel=0.05)
    assert not any("nope" in f or "inputs" in f for f in files | set(reasons))  # `no` folders are not read
    assert (out / "dropped.csv").read_text().count("\n") == len(report.dropped) + 1


def test_splits(built):
    data, out, fixed, report = built
    rows = _manifest(out)
    for row in rows:
        expected = fixed.get(row["source_file"]) or _expected_split(data / row["source_file"])
        assert row["split"] == expected
    assert _expected_split(data / "old/hq/28083.jpg") != "val"
    assert {r["split"] for r in rows if r["source_file"] == "old/hq/28083.jpg"} == {"val"}  # the fixed list wins
    assert {r["split"] for r in rows} == {"train", "val", "heldout"}
    for split in face_pool.SPLITS:
        listed = (out / f"{split}.txt").read_text().split()
        assert listed == sorted(r["file"] for r in rows if r["split"] == split)
        assert all((out / f).is_file() for f in listed)


def test_second_run_changes_nothing_and_removes_only_its_own_faces(built, tmp_path, detectors):
    data, out, fixed, _ = built
    data2, out2 = tmp_path / "data", tmp_path / "out"
    shutil.copytree(data, data2)
    shutil.copytree(out, out2)  # copy2: same mtimes
    (out2 / "faces" / "mine.png").write_bytes(b"a user's file")
    before = _snapshot(out2)
    report = face_pool.build_pool(data2, out2, fixed, *detectors)
    assert (report.written, report.removed) == (0, 0)
    assert _snapshot(out2) == before
    (data2 / "new/wild/carell.jpg").unlink()  # now the half-size copy's face is kept, but its name is taken:
    (out2 / "faces/new__wild__carell_half_f0.png").write_bytes(b"another user's file")
    report = face_pool.build_pool(data2, out2, fixed, *detectors)
    assert (report.removed, report.written) == (1, 0)
    assert [(d.face, d.reason) for d in report.failed] == [("faces/new__wild__carell_half_f0.png", "exists")]
    assert not (out2 / "faces/new__wild__carell_f0.png").exists()
    assert (out2 / "faces/new__wild__carell_half_f0.png").read_bytes() == b"another user's file"
    assert (out2 / "faces/mine.png").read_bytes() == b"a user's file"
    (out2 / "faces/new__wild__carell_half_f0.png").unlink()
    report = face_pool.build_pool(data2, out2, fixed, *detectors)
    assert (report.removed, report.written, report.failed) == (0, 1, [])
    split = _expected_split(data2 / "new/wild/sub/carell_half.png")
    assert "faces/new__wild__carell_half_f0.png" in (out2 / f"{split}.txt").read_text().split()


def test_script_refuses_bad_requests(tmp_path):
    script = REPO / "scripts" / "build_face_pool.py"
    run = subprocess.run([sys.executable, str(script), str(tmp_path), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "README.md not found" in run.stderr
    (tmp_path / "README.md").write_text(README)
    run = subprocess.run([sys.executable, str(script), str(tmp_path), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "inside the data folder" in run.stderr
    assert not (tmp_path / "out").exists()
