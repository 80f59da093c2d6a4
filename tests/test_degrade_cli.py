"""`mpcnet degrade` on folders of real faces: outputs, manifest, reproducibility, refusals."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mpcnet.degrade_folder import plan, read_manifest, reproduce, run
from mpcnet_cli.main import app

MPCNET = str(Path(sys.executable).with_name("mpcnet"))


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with its content hash ('dir' for folders)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture()
def hq_dir(tmp_path, hq_faces) -> Path:
    """Four real CelebA-HQ faces (one in a subfolder), a corrupt JPEG and an empty PNG."""
    src = tmp_path / "hq"
    (src / "sub").mkdir(parents=True)
    for p in hq_faces[:3]:
        shutil.copy(p, src / p.name)
    shutil.copy(hq_faces[3], src / "sub" / hq_faces[3].name)
    (src / "broken.jpg").write_bytes(hq_faces[4].read_bytes()[:300])
    (src / "empty.png").write_bytes(b"")
    return src


def _cli(*args):
    return CliRunner().invoke(app, ["degrade", *map(str, args)])


def test_folder_with_corrupt_files(hq_dir, tmp_path, hq_faces):
    before = _snapshot(hq_dir)
    out = tmp_path / "lq"
    res = subprocess.run([MPCNET, "degrade", str(hq_dir), "-o", str(out), "--size", "128", "--seed", "3", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout)
    assert summary["processed"] == 4
    assert {f["input"] for f in summary["failed"]} == {"broken.jpg", "empty.png"}
    assert all(f["error"] for f in summary["failed"]) and "broken.jpg" in res.stderr
    expected = sorted([p.with_suffix(".png").name for p in hq_faces[:3]] + [f"sub/{hq_faces[3].stem}.png"])
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == expected
    for rel in written:
        assert cv2.imread(str(out / rel)).shape == (128, 128, 3)
    rows = read_manifest(out / "manifest.csv")
    assert sorted(r["output"] for r in rows) == expected
    assert _snapshot(hq_dir) == before  # the input folder is untouched


def test_manifest_round_trip_reproduces_every_image(hq_dir, tmp_path):
    root, jobs = plan(hq_dir)
    jobs = [j for j in jobs if j.rel not in ("broken.jpg", "empty.png")]
    summary = run(jobs, tmp_path / "a", seed=5, size=96, manifest="jsonl")
    rows = read_manifest(summary.manifest)
    assert len(rows) == 4 and not summary.failed
    for row in rows:
        assert np.array_equal(reproduce(row, root), cv2.imread(str(tmp_path / "a" / row["output"])))
    res = _cli(hq_dir, "-o", tmp_path / "b", "--from-manifest", summary.manifest, "-q")
    assert res.exit_code == 0, res.output
    for row in rows:
        assert (tmp_path / "b" / row["output"]).read_bytes() == (tmp_path / "a" / row["output"]).read_bytes()
    csv_rows = read_manifest((tmp_path / "b" / "manifest.csv"))
    assert [reproduce(r, root).tobytes() for r in csv_rows] == [reproduce(r, root).tobytes() for r in rows]


def test_per_image_seed_independent_of_order_subset_and_workers(hq_dir, tmp_path):
    _, jobs = plan(hq_dir)
    jobs = [j for j in jobs if j.rel not in ("broken.jpg", "empty.png")]
    full = run(jobs, tmp_path / "full", seed=9, size=64)
    par = run(list(reversed(jobs)), tmp_path / "par", seed=9, size=64, workers=2)
    sub = run(jobs[2:3], tmp_path / "sub", seed=9, size=64)
    assert full.rows == par.rows
    assert sub.rows == [r for r in full.rows if r["input"] == jobs[2].rel]
    for r in full.rows:
        assert (tmp_path / "full" / r["output"]).read_bytes() == (tmp_path / "par" / r["output"]).read_bytes()
    other = run(jobs, tmp_path / "other", seed=10, size=64)
    assert all(a != b for a, b in zip(full.rows, other.rows))


def test_refuses_unsafe_or_non_empty_output(hq_dir, tmp_path):
    before = _snapshot(hq_dir)
    res = _cli(hq_dir, "-o", hq_dir / "out")
    assert res.exit_code == 2 and "inside the input folder" in res.output
    assert _snapshot(hq_dir) == before
    out = tmp_path / "lq"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = _cli(hq_dir / "sub", "-o", out, "--size", "64")
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = _cli(hq_dir / "sub", "-o", out, "--size", "64", "--overwrite", "-q")
    assert res.exit_code == 0 and (out / "keep.txt").read_text() == "mine" and (out / "manifest.csv").exists()


def test_fixed_modes_and_presets(hq_dir, tmp_path, hq_faces):
    one = hq_dir / hq_faces[0].name
    res = _cli(one, "-o", tmp_path / "m", "--preset", "table5-motion-45", "--size", "64", "--json")
    assert res.exit_code == 0, res.output
    (row,) = read_manifest(tmp_path / "m" / "manifest.csv")
    assert (row["kernel"], row["kernel_size"], float(row["angle"]), float(row["noise"])) == ("motion", "10", 45.0, 0.0)
    res = _cli(hq_dir / "sub", "-o", tmp_path / "s", "--scale", "7.15", "--noise", "0", "--jpeg", "none",
               "--kernel", "gaussian:2.5", "--size", "64", "--manifest", "jsonl", "-q")
    assert res.exit_code == 0, res.output
    (row,) = read_manifest(tmp_path / "s" / "manifest.jsonl")
    assert (row["scale"], row["noise"], row["jpeg_quality"], row["kernel"], row["sigma"]) == \
        (7.15, 0.0, None, "gaussian", 2.5)
    listing = _cli("--preset", "list")
    assert listing.exit_code == 0 and "table4-x8" in listing.output and "table6-noise25" in listing.output
    bad = _cli(one, "-o", tmp_path / "x", "--preset", "table9")
    assert bad.exit_code == 2 and "unknown preset" in bad.output and not (tmp_path / "x").exists()
    bad = _cli(one, "-o", tmp_path / "x", "--kernel", "motion:ten")
    assert bad.exit_code == 2 and "--kernel" in bad.output


def test_sample_picks_a_seeded_subset(hq_faces, tmp_path):
    src = hq_faces[0].parent
    _, a = plan(src, sample=5, seed=1)
    _, b = plan(src, sample=5, seed=1)
    _, c = plan(src, sample=5, seed=2)
    assert [j.rel for j in a] == [j.rel for j in b] == sorted(j.rel for j in a)
    assert [j.rel for j in a] != [j.rel for j in c]


def test_benchmark_degrade_reports_both_pipelines(hq_dir):
    res = CliRunner().invoke(app, ["benchmark", "degrade", "--images", str(hq_dir / "sub"), "--size", "64",
                                   "--n", "8", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["size"] == 64 and out["threads"] == 1
    assert out["mpcnet"]["images_per_s"] > 0 and out["basicsr_gfpgan"]["images_per_s"] > 0
    assert out["ratio"] == pytest.approx(out["mpcnet"]["images_per_s"] / out["basicsr_gfpgan"]["images_per_s"], rel=0.01)
