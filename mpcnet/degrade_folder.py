"""Degrading folders of HQ faces with eq. 1 (``mpcnet degrade``): one seeded parameter draw per
image, outputs at the same relative paths, and a manifest of every image's parameters.

The per-image seed comes from ``(seed, relative input path)``, so an image's degradation does
not depend on the order, the other files or the number of workers; :func:`reproduce` rebuilds
any output from its manifest row.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from mpcnet.data.eq1_degradation import (
    PAPER_RANGES,
    PRESETS,
    DegradationParams,
    apply_degradation,
    check_ranges,
    sample_params,
    to_uint8,
)
from mpcnet.utils.image_io import ImageReadError, list_images, read_image, write_image
from mpcnet.utils.safe_output import UnsafeOutputError, check_output_location, write_bytes_atomic
from mpcnet.utils.text_files import load_yaml, read_text

MANIFEST_COLUMNS = ["output", "input", "size", *DegradationParams.__dataclass_fields__]


class DegradeError(Exception):
    """A problem with the request as a whole (one line, fit for the user)."""


def image_seed(seed: int, rel: str) -> int:
    """The seed of one image: a hash of the run's seed and its relative input path."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{rel}".encode()).digest()[:8], "little")


def parse_kernel(spec: str) -> dict:
    """``gaussian:SIGMA | average:SIZE | median:SIZE | motion:LENGTH[:ANGLE] | none`` → fixed ranges."""
    name, *args = spec.split(":")
    try:
        vals = [float(a) for a in args]
    except ValueError:
        raise DegradeError(f"bad --kernel {spec!r}: values must be numbers") from None
    if name == "none" and not vals:
        return {"blur_prob": 0.0}
    forms = {"gaussian": ("gaussian_sigma",), "average": ("average_size",), "median": ("median_size",),
             "motion": ("motion_size", "motion_angle")}
    if name not in forms or not 1 <= len(vals) <= len(forms[name]):
        raise DegradeError(f"bad --kernel {spec!r}; use gaussian:SIGMA, average:SIZE, median:SIZE, "
                           "motion:LENGTH[:ANGLE] or none")
    fixed = {"kernels": name, "blur_prob": 1.0}
    for key, v in zip(forms[name], vals):
        fixed[key] = v if key in ("gaussian_sigma", "motion_angle") else int(v)
    return fixed


def build_ranges(preset: str = "celeba-test", ranges_file: Path | None = None, scale: float | None = None,
                 noise: float | None = None, jpeg: str | None = None, kernel: str | None = None) -> dict:
    """The ranges of a run: a preset (or a YAML/JSON ranges file), then any fixed values."""
    if ranges_file is not None:
        try:
            loaded = load_yaml(ranges_file, "--ranges")
        except ValueError as e:
            raise DegradeError(str(e)) from None
        if not isinstance(loaded, dict):
            raise DegradeError(f"{ranges_file} must hold a mapping of degradation ranges")
        ranges = {**PAPER_RANGES, **loaded}
    elif preset in PRESETS:
        ranges = copy.deepcopy(PRESETS[preset])
    else:
        raise DegradeError(f"unknown preset {preset!r}; 'mpcnet degrade --preset list' shows them")
    if scale is not None:
        if scale <= 0:
            raise DegradeError("--scale must be > 0")
        ranges["scale"] = float(scale)
    if noise is not None:
        if noise < 0:
            raise DegradeError("--noise must be ≥ 0")
        ranges.update(noise=float(noise), noise_prob=1.0)
    if jpeg is not None:
        if jpeg == "none":
            ranges["jpeg_quality"] = None
        elif jpeg.isdigit() and 0 <= int(jpeg) <= 100:
            ranges.update(jpeg_quality=int(jpeg), jpeg_prob=1.0)
        else:
            raise DegradeError(f"bad --jpeg {jpeg!r}; use a quality 0–100 or none")
    if kernel is not None:
        ranges.update(parse_kernel(kernel))
    try:
        check_ranges(ranges)
        sample_params(np.random.default_rng(0), ranges)
    except (ValueError, TypeError, KeyError) as e:
        raise DegradeError(f"bad degradation ranges: {e}") from None
    return ranges


def describe_preset(name: str) -> str:
    """What a preset fixes, relative to the paper's random ranges."""
    diff = {k: v for k, v in PRESETS[name].items() if v != PAPER_RANGES[k]}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "the paper's random ranges (Table 3)"


def load_hq(path: Path, size: int) -> np.ndarray:
    """An input face as float32 BGR in [0, 1], resized to size×size (0 keeps its size; alpha dropped)."""
    x = read_image(path).float_bgr()
    h, w = x.shape[:2]
    if size and (h, w) != (size, size):
        if h != w:
            raise ImageReadError(f"not square ({w}×{h}); align/crop faces first or use --size 0")
        x = cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA if h > size else cv2.INTER_CUBIC)
    return x


def render(path: Path, size: int, params: DegradationParams) -> np.ndarray:
    """The 8-bit degraded image for one input and its parameters."""
    return to_uint8(apply_degradation(load_hq(path, size), params))


def reproduce(row: dict, input_root: str | Path) -> np.ndarray:
    """Rebuild one output (uint8 BGR) from its manifest row and the input folder."""
    return render(Path(input_root) / row["input"], int(row["size"]), DegradationParams.from_dict(row))


def prepare_output(inputs: str | Path, out_dir: str | Path, overwrite: bool, skip_existing: bool = False) -> None:
    """Refuse an output folder inside the input, or a non-empty one unless ``overwrite`` or
    ``skip_existing`` (not both)."""
    if overwrite and skip_existing:
        raise DegradeError("--overwrite and --skip-existing contradict each other: give one of them")
    check_output_location(inputs, out_dir)
    out_dir = Path(out_dir)
    if Path(inputs).is_file() and out_dir.resolve() == Path(inputs).resolve().parent:
        raise UnsafeOutputError(f"output folder {out_dir} is the input file's own folder, where an output "
                                "could replace it; choose another")
    if out_dir.exists() and not out_dir.is_dir():
        raise DegradeError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (overwrite or skip_existing):
        raise DegradeError(f"{out_dir} is not empty (use --overwrite to write into it, or --skip-existing to "
                           "finish an interrupted run)")


@dataclass
class Job:
    src: Path
    rel: str          # input path relative to the input root (POSIX)
    out_rel: str      # output path relative to the output folder (POSIX)
    params: DegradationParams | None = None  # given (from a manifest) or drawn from the seed
    size: int | None = None                  # given (from a manifest) or the run's


@dataclass
class DegradeSummary:
    out_dir: Path
    manifest: Path | None = None
    rows: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    skipped: int = 0  # outputs that existed (--skip-existing): their rows are re-derived, not re-rendered
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped the run; rows and manifest hold what finished

    def to_json(self) -> dict:
        return {"out": str(self.out_dir), "manifest": str(self.manifest) if self.manifest else None,
                "processed": len(self.rows), "skipped": self.skipped, "failed": self.failed,
                "interrupted": self.interrupted, "seconds": round(self.seconds, 3),
                "images_per_s": round(len(self.rows) / self.seconds, 2) if self.seconds else None}


def _process(job: Job, out_dir: Path, size: int, ranges: dict, seed: int, overwrite: bool,
             skip_existing: bool = False) -> dict:
    """Degrade one job; with ``skip_existing`` an existing output is kept and only its row is
    derived (the same seed and options give the same parameters), marked ``skipped``."""
    params = job.params or sample_params(np.random.default_rng(image_seed(seed, job.rel)), ranges)
    size = size if job.size is None else job.size
    row = {"output": job.out_rel, "input": job.rel, "size": size, **params.to_dict()}
    if skip_existing and (out_dir / job.out_rel).exists():
        return {**row, "skipped": True}
    write_image(out_dir / job.out_rel, render(job.src, size, params), overwrite=overwrite)
    return row


def _relative(value, column: str, where: str) -> str:
    """A manifest path: relative, inside its folder (a manifest must not write elsewhere)."""
    rel = Path(str(value))
    if not str(value) or rel.is_absolute() or ".." in rel.parts:
        raise DegradeError(f"{where}: {column} {value!r} must be a relative path inside its folder")
    return rel.as_posix()


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a manifest written by :func:`run` (CSV or JSONL, by extension), each checked: every
    column present, numbers where numbers belong, parameters eq. 1 can apply, relative paths.
    :class:`DegradeError` names the row and the column."""
    path = Path(path)
    try:
        text = read_text(path, "manifest")
    except ValueError as e:
        raise DegradeError(str(e)) from None
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DegradeError(f"manifest {path} line {n} is not JSON ({e.msg}); truncated?") from None
    else:
        try:
            rows = [(n, row) for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2)]
        except csv.Error as e:
            raise DegradeError(f"manifest {path} is not a CSV file ({e})") from None
    if not rows:
        raise DegradeError(f"manifest {path} has no rows")
    for n, row in rows:
        where = f"manifest {path} line {n}"
        missing = [c for c in MANIFEST_COLUMNS if not isinstance(row, dict) or c not in row]
        if missing:
            raise DegradeError(f"{where} has no {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}: not a "
                               f"degrade manifest (columns: {', '.join(MANIFEST_COLUMNS)})")
        if path.suffix != ".jsonl" and any(row[c] is None for c in MANIFEST_COLUMNS):  # short CSV row
            raise DegradeError(f"{where} is cut short ({sum(row[c] is not None for c in MANIFEST_COLUMNS)} of "
                               f"{len(MANIFEST_COLUMNS)} fields); truncated?")
        try:
            DegradationParams.from_dict(row)
            if int(row["size"]) < 0:
                raise ValueError("size must be ≥ 0")
        except (ValueError, TypeError) as e:
            raise DegradeError(f"{where}: {e}") from None
        row["input"], row["output"] = _relative(row["input"], "input", where), _relative(row["output"], "output", where)
    return [row for _, row in rows]


def _write_manifest(path: Path, rows: list[dict]) -> None:
    if path.suffix == ".jsonl":
        data = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        data = buf.getvalue()
    write_bytes_atomic(path, data.encode())


def plan(inputs: str | Path, fmt: str = "png", sample: int | None = None, seed: int = 0,
         manifest_rows: list[dict] | None = None) -> tuple[Path, list[Job]]:
    """The jobs of a run: every image under ``inputs`` (or a seeded ``sample`` of them, or the
    images named by ``manifest_rows`` with their recorded parameters)."""
    root, files = list_images(inputs)
    jobs = [Job(f, f.relative_to(root).as_posix(), f.relative_to(root).with_suffix(f".{fmt}").as_posix())
            for f in files]
    if manifest_rows is not None:
        by_rel = {j.rel: j for j in jobs}
        missing = [r["input"] for r in manifest_rows if r["input"] not in by_rel]
        if missing:
            raise DegradeError(f"{len(missing)} manifest input(s) not found under {inputs}, e.g. {missing[0]}")
        jobs = [Job(by_rel[r["input"]].src, r["input"], r["output"], DegradationParams.from_dict(r), int(r["size"]))
                for r in manifest_rows]
    if sample is not None:
        if not 0 < sample <= len(jobs):
            raise DegradeError(f"--sample {sample} but {len(jobs)} image(s) found")
        keep = np.sort(np.random.default_rng(seed).choice(len(jobs), sample, replace=False))
        jobs = [jobs[i] for i in keep]
    return root, jobs


def run(jobs: list[Job], out_dir: str | Path, ranges: dict = PAPER_RANGES, seed: int = 0, size: int = 512,
        workers: int = 1, overwrite: bool = False, manifest: str = "csv",
        on_done: Callable[[Job, str | None], None] | None = None, skip_existing: bool = False) -> DegradeSummary:
    """Degrade every job into ``out_dir`` and write ``manifest.csv|jsonl`` there. Files that fail
    are recorded in ``DegradeSummary.failed`` with a one-line reason; the others finish. Ctrl-C (or
    SIGTERM) stops the run: the images in hand finish their atomic writes, the rest are not
    started, and the manifest lists what was done (``interrupted``); ``skip_existing`` resumes."""
    out_dir = Path(out_dir)
    summary = DegradeSummary(out_dir=out_dir)
    start = time.perf_counter()
    seen: dict[str, str] = {}
    todo = []
    for job in jobs:
        if job.out_rel in seen:
            summary.failed.append({"input": job.rel, "error": f"same output name as {seen[job.out_rel]}"})
            if on_done:
                on_done(job, summary.failed[-1]["error"])
        else:
            seen[job.out_rel] = job.rel
            todo.append(job)
    args = (out_dir, size, ranges, seed, overwrite, skip_existing)

    def record(job: Job, get: Callable[[], dict]) -> None:
        try:
            row = get()
            summary.skipped += bool(row.pop("skipped", False))
            summary.rows.append(row)
            error = None
        except (ImageReadError, OSError, ValueError, cv2.error, MemoryError) as e:
            error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            summary.failed.append({"input": job.rel, "error": error})
        if on_done:
            on_done(job, error)

    try:
        if workers <= 1:
            for job in todo:
                record(job, lambda j=job: _process(j, *args))
        else:
            # Threads, not processes: OpenCV releases the GIL in every heavy step, and forking a process
            # that has loaded torch can deadlock.
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_process, job, *args): job for job in todo}
                try:
                    for fut in as_completed(futures):
                        record(futures.pop(fut), fut.result)
                except KeyboardInterrupt:
                    pool.shutdown(wait=True, cancel_futures=True)  # images in hand finish their writes
                    for fut in [f for f in futures if f.done() and not f.cancelled()]:
                        record(futures[fut], fut.result)
                    raise
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.rows.sort(key=lambda r: r["input"])
    summary.failed.sort(key=lambda r: r["input"])
    if summary.rows:
        summary.manifest = out_dir / f"manifest.{manifest}"
        _write_manifest(summary.manifest, summary.rows)
    summary.seconds = time.perf_counter() - start
    return summary
