"""Evaluation driver for section 4.2: pair restored and ground-truth files, score them, write the report.

Named datasets live under a data root (``--data-root`` or ``$MPCNET_DATA``), as
``scripts/prepare_celeba_test.sh CELEBA_HQ ROOT`` writes them::

    <root>/celeba-test/lq/*.png   degraded inputs (eq. 1), 512×512 aligned faces
    <root>/celeba-test/gt/*.png   their ground truth, same relative names
    <root>/real-test/lq/*.png     real low-quality faces, no ground truth

The names other tools use are accepted too (:data:`ALIASES`): e.g. GFPGAN's and CodeFormer's
``celeba/celeba_512_validation{,_lq}``, ``hq``/``reference`` for the GT, ``input`` for the LQ.

Files are paired by relative path without extension (``a/001.png`` ↔ ``a/001.jpg``); unpaired files
and pairs of different sizes are listed, not scored. In JSON an infinite PSNR (identical images) is
written as the string ``"inf"``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from mpcnet.metrics import DESCRIPTIONS, METRICS, MetricUnavailable, arrow
from mpcnet.metrics.fid import FeatureExtractor, FIDStats, frechet_distance, inception_extractor, reference_stats
from mpcnet.metrics.niqe import niqe
from mpcnet.metrics.paired import PAIRED_NETWORK_METRICS, build_scorers
from mpcnet.metrics.pixel import grad_ratio, psnr, ssim
from mpcnet.published import comparison_markdown, published_json
from mpcnet.utils.dist import Launch
from mpcnet.utils.image_io import as_8bit, list_images, pixel_count, read_image, write_image
from mpcnet.utils.safe_output import UnsafeOutputError, check_output_location, write_bytes_atomic

DATASETS = {"celeba-test": ("lq", "gt"), "real-test": ("lq", None)}
# Other names for the same folders, tried in order after the canonical one.
ALIASES = {"celeba-test": ("CelebA-Test", "celeba_test", "celeba"), "real-test": ("Real-Test", "real_test"),
           "lq": ("LQ", "input", "inputs", "celeba_512_validation_lq"),
           "gt": ("GT", "hq", "HQ", "reference", "celeba_512_validation")}
PAIRED = ("psnr", "ssim", "grad_ratio", *PAIRED_NETWORK_METRICS)


class EvalError(Exception):
    """An evaluation that cannot start; the message says why."""


def resolve_dataset(name: str, data_root: str | os.PathLike | None) -> tuple[Path, Path | None]:
    """``(lq_dir, gt_dir or None)`` of a named dataset under the data root."""
    if name not in DATASETS:
        raise EvalError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)} (or give --lq/--gt folders)")
    root = data_root or os.environ.get("MPCNET_DATA")
    if not root:
        raise EvalError(f"no data root for '{name}': give --data-root or set MPCNET_DATA")
    lq_name, gt_name = DATASETS[name]
    base = _first_dir(Path(root), name)
    layout = (f"{Path(root) / name}/{{{lq_name}{',' + gt_name if gt_name else ''}}}/ with matching file names "
              f"(scripts/prepare_celeba_test.sh writes it)")
    folders = []
    for sub in (lq_name, gt_name):
        folder = sub and _first_dir(base, sub)
        if sub and not folder.is_dir():
            tried = ", ".join((sub, *ALIASES[sub]))
            raise EvalError(f"{base / sub} is missing (also tried {tried} in {base}); '{name}' is expected as {layout}")
        folders.append(folder or None)
    return folders[0], folders[1]


def _first_dir(parent: Path, name: str) -> Path:
    """``parent/name``, or the first of its :data:`ALIASES` that is a folder (``parent/name`` if none is)."""
    return next((parent / n for n in (name, *ALIASES.get(name, ())) if (parent / n).is_dir()), parent / name)


def load_bgr8(path: Path) -> np.ndarray:
    """An image as H×W×3 uint8 BGR (16-bit scaled down, alpha dropped)."""
    return as_8bit(read_image(path).bgr)


def _key(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


@dataclass
class Pairing:
    pairs: list[tuple[str, Path, Path]]  # (key, restored, gt)
    only_restored: list[str]
    only_gt: list[str]


def index_folder(folder: Path) -> dict[str, Path]:
    """The images under ``folder`` keyed by relative path without extension."""
    root, files = list_images(folder)
    return {_key(root, f): f for f in files}


def pair_folders(restored: Path, gt: Path) -> Pairing:
    """Pair files by relative path without extension."""
    r, g = index_folder(restored), index_folder(gt)
    return Pairing([(k, r[k], g[k]) for k in sorted(r.keys() & g.keys())],
                   sorted(r.keys() - g.keys()), sorted(g.keys() - r.keys()))


@dataclass
class EvalResult:
    restored: Path
    gt: Path | None
    lq: Path | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    unpaired: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # per image: a fallback its scoring used
    fid_protocol: str | None = None
    dataset: str | None = None
    restore: dict | None = None  # the restore run's summary when eval restored --lq itself

    def to_json(self) -> dict:
        def num(v):
            return "inf" if isinstance(v, float) and math.isinf(v) else v
        return {
            "dataset": self.dataset, "restored": str(self.restored), "gt": self.gt and str(self.gt),
            "lq": self.lq and str(self.lq), "images": len(self.per_image),
            "metrics": {k: num(v) for k, v in self.metrics.items()},
            "descriptions": {k: DESCRIPTIONS[k] for k in self.metrics},
            "skipped": self.skipped, "fid_protocol": self.fid_protocol, "unpaired": self.unpaired,
            "notes": self.notes, "restore": self.restore,
            "published": published_json(self.dataset, self.gt is not None),
            "per_image": {k: {m: num(v) for m, v in d.items()} for k, d in self.per_image.items()},
        }


def restore_folder(lq: Path, weights: str | None, out_dir: Path, device: str = "cpu", batch_size: int = 8,
                   overwrite: bool = False, method: str = "mpcnet", launch: Launch = Launch()) -> tuple[Path, dict]:
    """Restore the aligned 512 faces in ``lq`` with the restore pipeline in aligned mode (no detection, no
    paste, same size, PNG) into ``out_dir/restored_imgs``; returns that folder and the run's summary.
    ``method`` is ``mpcnet`` or a peer (:mod:`mpcnet.restoration.peers`), run through the same pipeline.
    Each process of ``launch`` restores its share; every network call runs a full batch, so a face's
    result is the same whatever the number of processes."""
    from mpcnet.checkpoint import CheckpointError
    from mpcnet.restoration.peers import PeerError, build_peer
    from mpcnet.restoration.pipeline import RestoreOptions, RestorePipeline, Summary
    from mpcnet.restoration.restorer import FaceRestorer
    from mpcnet.weights import WeightsError

    root, files = list_images(lq)
    if not files:
        raise EvalError(f"no images in --lq {lq}")
    try:
        check_output_location(lq, out_dir)
        if method == "mpcnet":
            restorer = FaceRestorer.from_weights(weights, device, batch_size=batch_size)
        else:
            net, size, name = build_peer(method, weights)
            restorer = FaceRestorer(net, size, device, batch_size=batch_size, name=name, channels_last=False)
    except (WeightsError, CheckpointError, UnsafeOutputError, PeerError) as exc:
        raise EvalError(str(exc)) from exc
    restorer.fixed_batch = True
    options = RestoreOptions(aligned=True, upscale=1, bg_upsampler="none", ext="png", overwrite=overwrite)
    pipeline = RestorePipeline(restorer, None, options)
    mine = launch.shard(files, pixel_count, key=lambda f: pipeline.output_path(f, root, out_dir))
    summary = Summary.merge(launch.all_gather(pipeline.run(mine, root, out_dir)), files).to_dict()
    summary["weights"], summary["method"] = restorer.name, method
    summary["failures"] = [r for r in summary.pop("results") if r["status"] == "failed"]
    if summary["restored"] == 0:
        first = summary["failures"][0]
        raise EvalError(f"none of the {len(files)} images in --lq {lq} could be restored "
                        f"(first: {Path(first['source']).name}: {first['message']})")
    return out_dir / "restored_imgs", summary


def score(restored: Path, gt: Path | None = None, *, lq: Path | None = None, fid_ref: Path | None = None,
          metrics: tuple[str, ...] = tuple(METRICS), device: str = "cpu",
          fid_extractor: FeatureExtractor | None = None, progress: Callable[[str], None] | None = None,
          launch: Launch = Launch()) -> EvalResult | None:
    """Score the images in ``restored`` (against ``gt`` where given); see the module doc for pairing.

    FID compares ``restored`` with ``fid_ref`` (default: the GT folder) and names the protocol used.
    ``fid_extractor`` replaces the Inception network (tests use a small fixed one). Each process of
    ``launch`` scores its share of the pairs; rank 0 gathers the per-image values and FID features
    (the statistics are fitted to all of them, as in one process) and returns the result, the other
    ranks None.
    """
    result = EvalResult(restored=restored, gt=gt, lq=lq)
    wanted = [m for m in METRICS if m in metrics]
    if gt is not None:
        pairing = pair_folders(restored, gt)
        if not pairing.pairs:
            raise EvalError(f"no file in {restored} has a counterpart in {gt} (files pair by relative name)")
        result.unpaired = {k: v for k, v in (("restored_only", pairing.only_restored),
                                             ("gt_only", pairing.only_gt)) if v}
        items = pairing.pairs
    else:
        items = [(k, f, None) for k, f in index_folder(restored).items()]
        for m in PAIRED:
            if m in wanted:
                result.skipped[m] = "needs ground truth (--gt)"
        wanted = [m for m in wanted if m not in PAIRED]
    if not items:
        raise EvalError(f"no images in {restored}")

    scorers, skipped = build_scorers(wanted, device)
    result.skipped.update(skipped)
    fid_set = fid_ref if fid_ref is not None else gt
    if "fid" in wanted:
        try:
            if fid_set is None:
                raise MetricUnavailable("no reference set: give --fid-ref DIR (the paper used 3,000 CelebA-HQ images)")
            fid_extractor = fid_extractor or inception_extractor(device)
        except MetricUnavailable as exc:
            result.skipped["fid"] = str(exc)
            wanted.remove("fid")

    size_mismatch, restored_imgs = {}, []
    for key, r_path, g_path in launch.shard(items, lambda item: pixel_count(item[1])):
        out = load_bgr8(r_path)
        row = {}
        if g_path is not None:
            ref = load_bgr8(g_path)
            if ref.shape != out.shape:
                size_mismatch[key] = f"{key} ({out.shape[1]}×{out.shape[0]} vs {ref.shape[1]}×{ref.shape[0]})"
                continue
            for name, fn in (("psnr", psnr), ("ssim", ssim), ("grad_ratio", grad_ratio)):
                if name in wanted:
                    row[name] = fn(out, ref)
            for scorer in scorers:
                values, note = scorer(out, ref)
                row.update(values)
                if note:
                    result.notes[key] = note
        if "niqe" in wanted:
            try:
                row["niqe"] = niqe(out)
            except ValueError as exc:
                result.skipped["niqe"] = str(exc)
                wanted.remove("niqe")
        result.per_image[key] = {m: v for m, v in row.items() if m in wanted}
        restored_imgs.append((key, r_path))
        if progress:
            progress(key)
    features = {}
    if "fid" in wanted and restored_imgs:
        features = dict(zip([key for key, _ in restored_imgs],
                            fid_extractor.features(load_bgr8(p) for _, p in restored_imgs)))
    parts = launch.gather((result.per_image, result.notes, size_mismatch, features, result.skipped))
    if parts is None:
        return None
    order = [key for key, _, _ in items]
    merged = [{k: v for part in parts for k, v in part[i].items()} for i in range(3)]
    result.per_image, result.notes, size_mismatch = ({k: d[k] for k in order if k in d} for d in merged)
    result.skipped = {m: reason for part in parts for m, reason in part[4].items()}
    wanted = [m for m in wanted if m not in result.skipped]  # e.g. NIQE on a too small image: in no row
    result.per_image = {k: {m: v for m, v in row.items() if m in wanted} for k, row in result.per_image.items()}
    if size_mismatch:
        result.unpaired["size_mismatch"] = list(size_mismatch.values())
    if not result.per_image:
        raise EvalError("no pair could be scored: " + "; ".join(list(size_mismatch.values())[:3]))

    for m in wanted:
        if m == "fid" or m in result.skipped:
            continue
        values = [row[m] for row in result.per_image.values() if m in row]
        result.metrics[m] = float(np.mean(values)) if values else None
    if "fid" in wanted:
        features = {k: f for part in parts for k, f in part[3].items()}
        _fid(result, np.stack([features[k] for k in result.per_image]), fid_set, fid_ref is None, fid_extractor)
    result.metrics = {m: result.metrics[m] for m in METRICS if m in result.metrics}
    return result


def _fid(result: EvalResult, features: np.ndarray, ref: Path, ref_is_gt: bool, extractor: FeatureExtractor) -> None:
    """FID of the restored images' ``features`` (every process's, in the pairs' order) against ``ref``."""
    try:
        ref_root, ref_files = list_images(ref)
        ref_stats, cached = reference_stats(ref_root, ref_files, load_bgr8, extractor)
        ours = FIDStats.of(features)
    except MetricUnavailable as exc:
        result.skipped["fid"] = str(exc)
        return
    result.metrics["fid"] = frechet_distance(ours, ref_stats)
    kind = "the ground-truth set" if ref_is_gt else "a reference folder"
    result.fid_protocol = (f"{ours.count} restored images vs {kind} {ref} ({ref_stats.count} images; "
                           f"features: {extractor.name}; reference statistics {'from cache' if cached else 'computed'})")


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


def write_report(result: EvalResult, out_dir: Path, label: str, overwrite: bool = False) -> list[Path]:
    """``report.md``, ``metrics.json`` and ``grid.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names, rows = grid_rows(result)
    targets = [out_dir / n for n in ("report.md", "metrics.json", "grid.png")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise EvalError(f"{existing[0]} exists; give --overwrite to replace the report")
    md = markdown_report(result, ("grid.png", names) if rows else None, label)
    if rows:
        write_image(targets[2], sample_grid(rows), overwrite=True)
    write_bytes_atomic(targets[0], md.encode())
    write_bytes_atomic(targets[1], json.dumps(result.to_json(), indent=2).encode())
    return targets if rows else targets[:2]
