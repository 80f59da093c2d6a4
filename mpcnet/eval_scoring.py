"""Scoring for section 4.2: pair restored and ground-truth files, compute the metrics per image and FID.

Files are paired by relative path without extension (``a/001.png`` ↔ ``a/001.jpg``); unpaired files
and pairs of different sizes are listed, not scored. In JSON an infinite PSNR (identical images) is
written as the string ``"inf"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mpcnet.evaluate import EvalError
from mpcnet.metrics import DESCRIPTIONS, METRICS, MetricUnavailable
from mpcnet.metrics.fid import FeatureExtractor, FIDStats, frechet_distance, inception_extractor, reference_stats
from mpcnet.metrics.niqe import niqe
from mpcnet.metrics.paired import PAIRED_NETWORK_METRICS, build_scorers
from mpcnet.metrics.pixel import grad_ratio, psnr, ssim
from mpcnet.published import published_json
from mpcnet.utils.dist import Launch
from mpcnet.utils.image_io import ImageReadError, as_8bit, image_size, list_images, pixel_count, read_image

PAIRED = ("psnr", "ssim", "grad_ratio", *PAIRED_NETWORK_METRICS)


def load_bgr8(path: Path) -> np.ndarray:
    """An image as H×W×3 uint8 BGR (16-bit scaled down, alpha dropped)."""
    return as_8bit(read_image(path).bgr)


def image_key(root: Path, path: Path) -> str:
    """What pairs a restored image with its GT: the path under ``root`` without extension."""
    return path.relative_to(root).with_suffix("").as_posix()


@dataclass
class Pairing:
    pairs: list[tuple[str, Path, Path]]  # (key, restored, gt)
    only_restored: list[str]
    only_gt: list[str]


def index_folder(folder: Path) -> dict[str, Path]:
    """The images under ``folder`` keyed by relative path without extension."""
    root, files = list_images(folder)
    return {image_key(root, f): f for f in files}


def pair_folders(restored: Path, gt: Path, only: set[str] | None = None) -> Pairing:
    """Pair files by relative path without extension (of ``restored``, only the keys in ``only``)."""
    r, g = index_folder(restored), index_folder(gt)
    r = r if only is None else {k: f for k, f in r.items() if k in only}
    return Pairing([(k, r[k], g[k]) for k in sorted(r.keys() & g.keys())],
                   sorted(r.keys() - g.keys()), sorted(g.keys() - r.keys()))


def _size_mismatch(key: str, size: tuple[int, int], gt_size: tuple[int, int]) -> str:
    """How a pair of two sizes, ``(width, height)`` each, is reported."""
    return f"{key} ({size[0]}×{size[1]} vs {gt_size[0]}×{gt_size[1]})"


def check_sizes_before_restoring(lq: Path, gt: Path) -> None:
    """``eval --lq --gt`` restores each face at its own size: refuse, before restoring, when no face of
    ``lq`` has the size of its GT (read from the headers), since no pair could then be scored."""
    pairs = pair_folders(lq, gt).pairs
    sizes = [(key, image_size(a), image_size(b)) for key, a, b in pairs]
    mismatch = [_size_mismatch(key, a, b) for key, a, b in sizes if a and b and a != b]
    if pairs and len(mismatch) == len(pairs):
        raise EvalError("no pair could be scored, as --lq is restored at its own size: " + "; ".join(mismatch[:3]))


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


def score(restored: Path, gt: Path | None = None, *, lq: Path | None = None, fid_ref: Path | None = None,
          metrics: tuple[str, ...] = tuple(METRICS), device: str = "cpu",
          fid_extractor: FeatureExtractor | None = None, progress: Callable[[str], None] | None = None,
          launch: Launch = Launch(), only: set[str] | None = None) -> EvalResult | None:
    """Score the images in ``restored`` (against ``gt`` where given); see the module doc for pairing.
    ``only``: the keys to score (the faces a run has just restored), not whatever else the folder holds.
    An unreadable image is listed (``unpaired['unreadable']``, naming the file), not scored.

    FID compares ``restored`` with ``fid_ref`` (default: the GT folder) and names the protocol used.
    ``fid_extractor`` replaces the Inception network (tests use a small fixed one). Each process of
    ``launch`` scores its share of the pairs; rank 0 gathers the per-image values and FID features
    (the statistics are fitted to all of them, as in one process) and returns the result, the other
    ranks None.
    """
    result = EvalResult(restored=restored, gt=gt, lq=lq)
    wanted = [m for m in METRICS if m in metrics]
    if gt is not None:
        pairing = pair_folders(restored, gt, only)
        if not pairing.pairs:
            raise EvalError(f"no file in {restored} has a counterpart in {gt} (files pair by relative name)")
        result.unpaired = {k: v for k, v in (("restored_only", pairing.only_restored),
                                             ("gt_only", pairing.only_gt)) if v}
        items = pairing.pairs
    else:
        items = [(k, f, None) for k, f in index_folder(restored).items() if only is None or k in only]
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

    size_mismatch, unreadable, restored_imgs = {}, {}, []
    for key, r_path, g_path in launch.shard(items, lambda item: pixel_count(item[1])):
        reading = r_path  # the file an ImageReadError is about
        try:
            out = load_bgr8(r_path)
            reading = g_path
            ref = load_bgr8(g_path) if g_path is not None else None
        except ImageReadError as exc:
            unreadable[key] = f"{reading}: {exc}"
            continue
        row = {}
        if ref is not None:
            if ref.shape != out.shape:
                size_mismatch[key] = _size_mismatch(key, out.shape[1::-1], ref.shape[1::-1])
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
    parts = launch.gather((result.per_image, result.notes, size_mismatch, features, result.skipped, unreadable))
    if parts is None:
        return None
    order = [key for key, _, _ in items]
    merged = [{k: v for part in parts for k, v in part[i].items()} for i in (0, 1, 2, 5)]
    result.per_image, result.notes, size_mismatch, unreadable = ({k: d[k] for k in order if k in d} for d in merged)
    result.skipped = {m: reason for part in parts for m, reason in part[4].items()}
    wanted = [m for m in wanted if m not in result.skipped]  # e.g. NIQE on a too small image: in no row
    result.per_image = {k: {m: v for m, v in row.items() if m in wanted} for k, row in result.per_image.items()}
    if size_mismatch:
        result.unpaired["size_mismatch"] = list(size_mismatch.values())
    if unreadable:
        result.unpaired["unreadable"] = list(unreadable.values())
    if not result.per_image:
        raise EvalError("no pair could be scored: " + "; ".join([*size_mismatch.values(), *unreadable.values()][:3]))

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
