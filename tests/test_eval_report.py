"""The eval report (mpcnet.eval_report) of a real scored run on shared faces: the Markdown table (one row
per metric in METRICS order, the decimals of the published tables, skipped metrics with their reason,
what was not scored), metrics.json, and the sample grid (LQ | restored | GT, 4 px white gaps)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mpcnet.eval_report import format_value, grid_rows, markdown_report, sample_grid, write_report
from mpcnet.eval_scoring import score
from mpcnet.evaluate import EvalError
from mpcnet.metrics import METRICS
from tests.conftest import eval_folders

SIZE = 64


@pytest.fixture
def folders(tmp_path, aligned_faces):
    """gt/ five real faces at 64 px; restored/ a mild blur of each plus an unpaired file; lq/ a strong blur."""
    return eval_folders(tmp_path, aligned_faces[:5], SIZE)


@pytest.fixture
def result(folders):
    """PSNR, SSIM and detail against the GT; NIQE is skipped (64 px is below its two 96 px blocks)."""
    return score(folders / "restored", folders / "gt", lq=folders / "lq", metrics=("niqe", "ssim", "grad_ratio", "psnr"))


def line_of(md: str, start: str) -> int:
    return next(i for i, line in enumerate(md.splitlines()) if line.startswith(start))


def test_format_value_uses_the_published_tables_decimals():
    # unit-range scores with 4 decimals as the tables print SSIM 0.6684 and LPIPS 0.3097; dB, FID, degrees with 2
    for metric in ("ssim", "grad_ratio", "lpips", "cos_arcface", "cos_dlib", "l2_dlib"):
        assert format_value(0.123456, metric) == "0.1235"
    for metric in ("psnr", "fid", "niqe", "deg_dlib", "deg_arcface", "lmd_dlib68"):
        assert format_value(23.456, metric) == "23.46"
    assert format_value(None, "psnr") == "—" and format_value(float("inf"), "psnr") == "inf"


def test_markdown_lists_each_metric_once_in_order_with_skips_and_unpaired(result, folders):
    md = markdown_report(result, None, "faces")
    assert md.startswith("# mpcnet eval — faces\n\n* restored: ")
    assert "\n\n| metric | value | better | what it is |\n|---|---|---|---|\n| PSNR |" in md
    assert f"* restored: `{folders / 'restored'}`  \n* ground truth: `{folders / 'gt'}`  \n* LQ inputs: " in md
    assert "* images scored: 5\n" in md
    psnr, ssim, detail = (np.mean([row[m] for row in result.per_image.values()]) for m in ("psnr", "ssim", "grad_ratio"))
    rows = [f"| PSNR | {psnr:.2f} | ↑ | PSNR, dB, 8-bit RGB |", f"| SSIM | {ssim:.4f} | ↑ |",
            f"| GRAD_RATIO | {detail:.4f} | →1 |"]
    assert [line_of(md, row) for row in rows] == sorted(line_of(md, row) for row in rows)  # METRICS order
    assert all(md.count(row.split(" | ")[0] + " |") == 1 for row in rows)
    assert "| NIQE | skipped: NIQE needs at least two 96×96 blocks" in md
    assert "**Not scored:** restored_only: unpaired\n" in md
    assert "**FID protocol:** not computed" in md and "Fallbacks" not in md and "## Samples" not in md
    # the published tables of CelebA-Test (a run with GT), this run's values only where computed alike
    assert "## MPCNet paper, Table 3" in md and f"| **this run** | not computed | not computed | {psnr:.2f} | {ssim:.4f} |" in md
    assert "(CelebA-Test, blind face restoration) — for orientation only: not the same data\n" in md
    result.dataset = "celeba-test"  # a named run is on the tables' own data: no caveat
    assert "(CelebA-Test, blind face restoration)\n" in markdown_report(result, None, "celeba-test")


def test_markdown_names_the_restoring_model_and_shortens_long_lists(result):
    result.restore = {"method": "gfpgan", "weights": "GFPGANv1.4"}
    result.notes = {f"{i:03d}": f"fallback {i}" for i in range(12)}
    result.unpaired["gt_only"] = [f"g{i:02d}" for i in range(11)]
    md = markdown_report(result, ("grid.png", ["restored", "GT"]), "faces")
    assert md.startswith("# mpcnet eval — faces\n") and "| **this run (gfpgan, GFPGANv1.4)** |" in md
    assert "**Fallbacks (12 of 5 images):** 000: fallback 0;" in md and "009: fallback 9 …" in md
    assert "fallback 10" not in md and "009: fallback 9 …\n\n**Not scored:** " in md
    assert "gt_only: g00, g01, g02, g03, g04, g05, g06, g07, g08, g09 …" in md and "g10" not in md
    assert md.endswith("## Samples\n\nColumns: restored | GT\n\n![samples](grid.png)\n")


def test_sample_grid_tiles_area_resized_images_with_white_gaps(aligned_faces):
    faces = [cv2.imread(str(p)) for p in aligned_faces[:5]]
    rows = [[faces[0], cv2.resize(faces[1], (100, 100))], [faces[2], faces[3]], [faces[4], faces[0][:300]]]
    grid = sample_grid(rows, tile=40)
    assert grid.shape == (3 * 40 + 2 * 4, 2 * 40 + 4, 3) and grid.dtype == np.uint8
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            tile = grid[i * 44:i * 44 + 40, j * 44:j * 44 + 40]
            assert np.array_equal(tile, cv2.resize(img, (40, 40), interpolation=cv2.INTER_AREA)), (i, j)
    assert (grid[40:44] == 255).all() and (grid[:, 40:44] == 255).all()


def test_grid_rows_keep_existing_columns_and_skip_missing_files(result, folders):
    names, rows = grid_rows(result)
    assert names == ["LQ", "restored", "GT"] and len(rows) == 4  # the first 4 of 5 images
    expected = [[cv2.imread(str(folders / d / f"{i:03d}.png")) for d in ("lq", "restored", "gt")] for i in range(4)]
    assert all(np.array_equal(a, b) for row, exp in zip(rows, expected) for a, b in zip(row, exp))
    (folders / "lq" / "001.png").unlink()
    names, rows = grid_rows(result, count=3)
    assert len(rows) == 2 and np.array_equal(rows[1][0], expected[2][0])  # 001 has no LQ: its row is left out
    result.lq = None
    assert grid_rows(result, count=2)[0] == ["restored", "GT"]


def test_write_report_writes_three_files_and_refuses_to_overwrite(result, folders, tmp_path):
    out = tmp_path / "new" / "report"  # made with its parents
    written = write_report(result, out, "faces")
    assert [p.name for p in written] == ["report.md", "metrics.json", "grid.png"]
    md = (out / "report.md").read_text()
    assert md == markdown_report(result, ("grid.png", ["LQ", "restored", "GT"]), "faces")
    data = json.loads((out / "metrics.json").read_text())
    assert data["images"] == 5 and list(data["metrics"]) == [m for m in METRICS if m in ("psnr", "ssim", "grad_ratio")]
    assert data["metrics"]["psnr"] == pytest.approx(result.metrics["psnr"]) and "niqe" in data["skipped"]
    assert data["unpaired"] == {"restored_only": ["unpaired"]} and data["lq"] == str(folders / "lq")
    assert data["restored"] == str(folders / "restored")
    grid = cv2.imread(str(out / "grid.png"))
    assert grid.shape == (4 * 256 + 3 * 4, 3 * 256 + 2 * 4, 3)
    gt3 = cv2.resize(cv2.imread(str(folders / "gt" / "003.png")), (256, 256), interpolation=cv2.INTER_AREA)
    assert np.array_equal(grid[3 * 260:, 2 * 260:], gt3)
    before = [p.read_bytes() for p in written]
    with pytest.raises(EvalError, match=f"^{out / 'report.md'} exists; give --overwrite"):
        write_report(result, out, "other")
    assert [p.read_bytes() for p in written] == before
    write_report(result, out, "other", overwrite=True)
    assert (out / "report.md").read_text().startswith("# mpcnet eval — other")


def test_json_writes_infinite_psnr_as_a_string_and_names_its_tables(folders, tmp_path):
    same = score(folders / "gt", folders / "gt", metrics=("psnr",))
    data = same.to_json()
    assert data["metrics"] == {"psnr": "inf"} and all(row == {"psnr": "inf"} for row in data["per_image"].values())
    assert data["descriptions"] == {"psnr": "PSNR, dB, 8-bit RGB"} and data["gt"] == str(folders / "gt")
    assert [t["same_data"] for t in data["published"]] == [False, False, False]  # CelebA-Test's, for orientation
    same.dataset = "celeba-test"
    assert all(t["same_data"] for t in same.to_json()["published"])
    alone = score(folders / "lq", None, metrics=("psnr",))
    assert [t["title"].split(",")[0] for t in alone.to_json()["published"]] == ["MPCNet paper"]  # Real-Test's Table 7
    write_report(same, tmp_path / "r", "same")
    assert "| PSNR | inf |" in (tmp_path / "r" / "report.md").read_text()


def test_without_sample_rows_no_grid_is_written_or_named(result, folders, tmp_path):
    for face in (folders / "lq").iterdir():  # no image is in all three folders any more
        face.rename(folders / "lq" / f"x{face.name}")
    written = write_report(result, tmp_path / "report", "faces")
    assert [p.name for p in written] == ["report.md", "metrics.json"] and not (tmp_path / "report" / "grid.png").exists()
    assert "## Samples" not in (tmp_path / "report" / "report.md").read_text()
