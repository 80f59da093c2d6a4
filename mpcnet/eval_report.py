"""The report of a scored run (:mod:`mpcnet.eval_scoring`): ``report.md`` with the published tables beside
ours, ``metrics.json`` and a grid of samples (LQ | restored | GT).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from mpcnet.eval_scoring import EvalResult, index_folder, load_bgr8
from mpcnet.evaluate import EvalError
from mpcnet.metrics import DESCRIPTIONS, METRICS, arrow
from mpcnet.published import comparison_markdown
from mpcnet.utils.image_io import write_image
from mpcnet.utils.safe_output import write_bytes_atomic


def sample_grid(rows: list[list[np.ndarray]], tile: int = 256) -> np.ndarray:
    """Rows of images (e.g. LQ | restored | GT) resized to ``tile`` and tiled with a 4 px gap."""
    gap = 4
    width = len(rows[0]) * (tile + gap) - gap
    grid = np.full((len(rows) * (tile + gap) - gap, width, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = i * (tile + gap), j * (tile + gap)
            grid[y:y + tile, x:x + tile] = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
    return grid


def grid_rows(result: EvalResult, count: int = 4) -> tuple[list[str], list[list[np.ndarray]]]:
    """Column names and up to ``count`` rows of LQ | restored | GT (the columns that exist)."""
    keys = list(result.per_image)[:count]
    columns = [("LQ", result.lq), ("restored", result.restored), ("GT", result.gt)]
    columns = [(name, folder) for name, folder in columns if folder is not None]
    lookups = {name: index_folder(folder) for name, folder in columns}
    rows = [[load_bgr8(lookups[name][k]) for name, _ in columns] for k in keys
            if all(k in lookups[name] for name, _ in columns)]
    return [name for name, _ in columns], rows


def format_value(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    return f"{value:.4f}" if metric in ("ssim", "grad_ratio", "lpips", "cos_arcface", "cos_dlib", "l2_dlib") else f"{value:.2f}"


def markdown_report(result: EvalResult, grid: tuple[str, list[str]] | None, label: str) -> str:
    """The report: our metrics (what each is), skipped ones with reasons, fallbacks, FID protocol, and the
    published rows beside ours."""
    lines = [f"# mpcnet eval — {label}", "",
             f"* restored: `{result.restored}`" + (f"  \n* ground truth: `{result.gt}`" if result.gt else "")
             + (f"  \n* LQ inputs: `{result.lq}`" if result.lq else ""),
             f"* images scored: {len(result.per_image)}", "",
             "| metric | value | better | what it is |", "|---|---|---|---|"]
    for m in METRICS:
        if m in result.metrics:
            lines.append(f"| {m.upper()} | {format_value(result.metrics[m], m)} | {arrow(m)} "
                         f"| {DESCRIPTIONS[m]} |")
    for m, reason in result.skipped.items():
        lines.append(f"| {m.upper()} | skipped: {reason} | {arrow(m)} | {DESCRIPTIONS[m]} |")
    lines += ["", f"**FID protocol:** {result.fid_protocol or 'not computed'}", ""]
    if result.notes:
        lines += [f"**Fallbacks ({len(result.notes)} of {len(result.per_image)} images):** "
                  + "; ".join(f"{k}: {v}" for k, v in list(result.notes.items())[:10])
                  + (" …" if len(result.notes) > 10 else ""), ""]
    if result.unpaired:
        lines += ["**Not scored:** " + "; ".join(f"{k}: {', '.join(v[:10])}{' …' if len(v) > 10 else ''}"
                                                 for k, v in result.unpaired.items()), ""]
    run = f"this run ({result.restore['method']}, {result.restore['weights']})" if result.restore else "this run"
    lines += comparison_markdown(result.metrics, result.dataset, result.gt is not None, format_value, run)
    if grid:
        lines += ["## Samples", "", f"Columns: {' | '.join(grid[1])}", "", f"![samples]({grid[0]})", ""]
    return "\n".join(lines)


def check_report_free(out_dir: Path, overwrite: bool = False) -> list[Path]:
    """The report's files in ``out_dir`` (``report.md``, ``metrics.json``, ``grid.png``); raises when one
    exists and not ``overwrite`` (checked again before any restoring or scoring)."""
    targets = [out_dir / n for n in ("report.md", "metrics.json", "grid.png")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise EvalError(f"{existing[0]} exists; give --overwrite to replace the report")
    return targets


def write_report(result: EvalResult, out_dir: Path, label: str, overwrite: bool = False) -> list[Path]:
    """``report.md``, ``metrics.json`` and ``grid.png`` in ``out_dir``."""
    targets = check_report_free(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    names, rows = grid_rows(result)
    md = markdown_report(result, ("grid.png", names) if rows else None, label)
    if rows:
        write_image(targets[2], sample_grid(rows), overwrite=True)
    write_bytes_atomic(targets[0], md.encode())
    write_bytes_atomic(targets[1], json.dumps(result.to_json(), indent=2).encode())
    return targets if rows else targets[:2]
