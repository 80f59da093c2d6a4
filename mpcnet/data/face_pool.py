"""The training face pool: every ground-truth-quality face under a shared data folder, aligned to the
FFHQ 512 template, de-duplicated and split, with a manifest.

Sources come from the data folder's ``README.md``: every markdown table with a ``pool`` column maps a
folder to ``aligned`` (aligned HQ crops), ``detect`` (whole photos) or ``no``, and its ``licence``
column gives the licence (``SOURCE.txt``'s ``licence:`` line when the cell is empty). Folders of
tables without a ``pool`` column are classified by the README's sentences of the form
"`a` and `b/*` are `aligned`" (shell patterns over those tables' folders). Folders are scanned
recursively for images.

* ``aligned``: the image is resized to 512×512 (area when larger, Lanczos when smaller);
  ``native_size`` = its side.
* ``detect``: faces are found by ``mpcnet restore``'s default detector (RetinaFace) and warped by its
  FFHQ-512 alignment (:func:`mpcnet.restoration.align.align_face`); ``native_size`` = 512 / the
  alignment's scale. As in restore, the photo is searched on reduced copies of several sizes and a
  face is aligned from the copy where it fits the detector
  (:func:`mpcnet.restoration.multiscale.detect_pyramid`).

Drop rules, in this order (the first that applies is the reason recorded):

1. ``low-confidence``: detector score < :data:`MIN_SCORE` (0.9);
2. ``inside-another-face``: half or more of the detection's box lies inside a larger detection's box
   (a part of a close-up face, e.g. its eyes, detected as a face; :func:`~mpcnet.restoration.multiscale.inside`);
3. ``not-a-face``: a second detector (YuNet, score ≥ :data:`VERIFY_SCORE`) finds no face in the
   aligned crop (hair, hats, clothes that RetinaFace took for faces);
4. ``too-small``: ``native_size`` < :data:`MIN_NATIVE_SIZE` (256): too few pixels to be ground truth at 256 px;
5. ``blurry``: :func:`sharpness` < :data:`MIN_SHARPNESS`;
6. ``duplicate``: same aligned pixels as another face (exact), or (near: the same photo at another
   size, crop or compression) a correlation of at least :data:`NEAR_DUPLICATE` between the 64 px
   grayscale faces once registered (:func:`registered_correlation`), across all sources;
   the face with the larger ``native_size`` is kept (ties: a face named in a fixed split list, then
   the first by output name).

Split: a source file named in a fixed list (``options/splits/tiny128_*.txt``) keeps that split; any
other gets ``b = int(sha256(file bytes)[:8], 16) % 100``: held-out if b < 12, val if b < 17, else
train, so all faces of a photo share it and adding folders changes no earlier face's split.
"""
from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from mpcnet.restoration.align import FACE_SIZE, FFHQ_TEMPLATE_512, align_face
from mpcnet.restoration.multiscale import detect_pyramid, inside
from mpcnet.utils.image_io import ImageReadError, LoadedImage, as_8bit, list_images, read_image
from mpcnet.utils.safe_output import write_bytes_atomic

POOL_MODES = ("aligned", "detect", "no")
UNCLASSIFIED = "unclassified"  # an earlier folder that the README's sentences do not name: not used
SPLITS = ("train", "val", "heldout")
FAILURES = ("unreadable", "not-square", "exists")  # files that could not be used: not drop rules
MIN_SCORE = 0.9
MIN_NATIVE_SIZE = 256
# RetinaFace also scores hair, hats and clothes up to 0.998. Checked on a build without this rule:
# YuNet (a separate model) run on the aligned 512 crop at this threshold found no face in each of
# the 6 such crops among its 161 wild faces (and missed one real, screaming face), and found every
# aligned-source face.
VERIFY_SCORE = 0.5
VERIFY_MAX_OFFSET = 100.0
# Variance of the Laplacian of the central face box at 256 px (grayscale, 0-255), calibrated with
# `python scripts/build_face_pool.py ../shared/data --calibrate` on the 114 clean aligned faces of
# celeba-hq-clean/* and gpen-examples/ffhq-10: clean min 157.7, p2 191.6; their ×4-degraded copies
# (128 px of detail) median 84.3, max 181.4. The threshold is that median: a face with less edge
# energy than a typical ×4-degraded clean face is dropped. The clean p2 (191.6) was tried first:
# it dropped wild press photos of 256-600 px that are sharp at 256 px (contact sheets looked at by
# eye), since 1024 px CelebA-HQ crops shrunk 4× are crisper than any photo at its own resolution.
MIN_SHARPNESS = 85.0
# Near duplicates. Two crops of one photo differ by up to ~15 % in scale and some shift (landmarks
# found at different sizes), so they are registered (ECC, affine, 64 px) before their correlation
# is taken. On the 343 faces of ../shared/data the 8 pairs of one photo scored 0.9795-1.0 and the
# closest pairs of different photos at most 0.9304 (all checked by eye). A 64-bit pHash of the 64 px
# face did not separate them: 6 bits between two different men, 8-10 between crops of one photo.
# Registering every pair is too slow, so only pairs whose central 8 px thumbnails correlate at least
# PREFILTER, at the best of PREFILTER_SCALES, are registered: the 8 pairs scored 0.955-1.0 (a photo
# and its half-size copy: 0.87); 3,888 of the 58,653 pairs pass.
NEAR_DUPLICATE = 0.97
PREFILTER = 0.8
PREFILTER_SCALES = (1.0, 1.1, 1.2, 1.3)
# The box (x0, y0, x1, y1) of a 256 px FFHQ-aligned face that sharpness is measured in: eyes to chin,
# so a blurred background (bokeh) does not count.
SHARPNESS_BOX = (64, 80, 192, 208)
MANIFEST_COLUMNS = ("file", "source_folder", "source_file", "licence", "native_size", "sharpness", "split", "sha256")
DROPPED_COLUMNS = ("face", "source_file", "reason", "detail", "native_size", "sharpness", "score")


@dataclass(frozen=True)
class Source:
    """One folder of the shared data and how it feeds the pool."""

    folder: str
    pool: str  # aligned | detect | no | unclassified
    licence: str


# -- sources ----------------------------------------------------------------------------------
def _table_rows(lines: list[str]) -> list[list[dict[str, str]]]:
    """Every markdown table in ``lines`` as a list of {column: cell} rows (header lower-cased)."""
    tables, header, rows = [], None, []
    for line in lines + [""]:
        if line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = [c.lower() for c in cells]
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(dict(zip(header, cells)))
            continue
        if header is not None:
            tables.append(rows)
        header, rows = None, []
    return tables


_CLASS_SENTENCE = re.compile(r"((?:`[^`]+`(?:\s*,\s*|\s+and\s+)?)+)\s+are\s+`(aligned|detect|no)`")


def read_sources(data_root: str | Path) -> list[Source]:
    """The folders named by ``data_root/README.md``'s tables with their pool mode and licence.

    A licence cell ``same`` repeats the row above. A folder without a ``pool`` column that no README
    sentence names is :data:`UNCLASSIFIED` (not used). Raises ``ValueError`` for a cell that is not
    a pool mode.
    """
    data_root = Path(data_root)
    text = (data_root / "README.md").read_text(encoding="utf-8")
    sentence_modes = [(m.group(2), re.findall(r"`([^`]+)`", m.group(1)))
                      for m in _CLASS_SENTENCE.finditer(" ".join(text.split()))]
    sources = []
    for rows in _table_rows(text.splitlines()):
        licence = ""
        for row in rows:
            folder = row.get("folder", "").strip("`")
            if not folder:
                continue
            cell = row.get("licence", "")
            licence = licence if cell.lower() == "same" else cell
            if "pool" in row:
                pool = row["pool"].strip("`").lower()
            else:
                pool = next((mode for mode, patterns in sentence_modes
                             if any(fnmatch.fnmatch(folder, p) for p in patterns)), UNCLASSIFIED)
            if pool not in POOL_MODES + (UNCLASSIFIED,):
                raise ValueError(f"README.md: pool of {folder} is '{pool}', not one of {', '.join(POOL_MODES)}")
            sources.append(Source(folder, pool, licence or _source_txt_licence(data_root / folder)))
    return sources


def _source_txt_licence(folder: Path) -> str:
    """The ``licence:`` line of ``folder/SOURCE.txt``, or ''."""
    path = folder / "SOURCE.txt"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("licence:"):
                return line.split(":", 1)[1].strip()
    return ""


def load_fixed_splits(split_dir: str | Path, prefix: str = "tiny128_") -> dict[str, str]:
    """{source file relative to the data root: split} from ``<prefix><split>.txt`` files."""
    fixed = {}
    for split in SPLITS:
        path = Path(split_dir) / f"{prefix}{split}.txt"
        if path.is_file():
            fixed.update({line: split for line in path.read_text().split()})
    return fixed


def hash_split(data: bytes) -> str:
    """The split of a source file not in a fixed list, from its bytes' sha256 (see module doc)."""
    b = int(hashlib.sha256(data).hexdigest()[:8], 16) % 100
    return "heldout" if b < 12 else "val" if b < 17 else "train"


def source_split(path: Path, data_root: Path, fixed: dict[str, str]) -> str:
    """The split of a source file under ``data_root``: its fixed list's, else :func:`hash_split`'s."""
    return fixed.get(path.relative_to(data_root).as_posix()) or hash_split(path.read_bytes())


# -- measures ---------------------------------------------------------------------------------
def _gray256(face: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return cv2.resize(gray, (256, 256), interpolation=cv2.INTER_AREA)


def sharpness(face: np.ndarray) -> float:
    """Variance of the Laplacian of an aligned uint8 BGR face, grayscale at 256 px, inside
    :data:`SHARPNESS_BOX`: high for crisp edges, low for blur."""
    x0, y0, x1, y1 = SHARPNESS_BOX
    return float(cv2.Laplacian(_gray256(face)[y0:y1, x0:x1], cv2.CV_32F).var())


def _normalised(gray: np.ndarray) -> np.ndarray:
    v = gray.ravel() - gray.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)


def thumbnails(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The prefilter views of a face (the central 384 px zoomed by each of :data:`PREFILTER_SCALES`,
    8 px grayscale, zero-mean unit-norm rows) and its 64 px float32 grayscale."""
    gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    c = FACE_SIZE // 2
    views = [_normalised(cv2.resize(gray[c - h:c + h, c - h:c + h], (8, 8), interpolation=cv2.INTER_AREA)
                         .astype(np.float32)) for h in (int(192 / s) for s in PREFILTER_SCALES)]
    return np.stack(views), cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


def prefilter_correlation(a_views: np.ndarray, b_views: np.ndarray) -> float:
    """The best correlation of one face's unzoomed view with any zoom of the other's."""
    return float(max((a_views @ b_views[0]).max(), (b_views @ a_views[0]).max()))


def registered_correlation(a64: np.ndarray, b64: np.ndarray) -> float:
    """Correlation of two 64 px grayscale faces (inside an 8 px margin) after warping ``b`` onto
    ``a`` with the affine map that ECC finds; 0 when ECC does not converge."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
    try:
        _, warp = cv2.findTransformECC(a64, b64, np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE, criteria, None, 1)
    except cv2.error:
        return 0.0
    warped = cv2.warpAffine(b64, warp, (64, 64), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP)
    return float(_normalised(a64[8:56, 8:56]) @ _normalised(warped[8:56, 8:56]))


def _to_uint8(face: np.ndarray) -> np.ndarray:
    return np.clip(face * 255.0 + 0.5, 0, 255).astype(np.uint8)


def resize_aligned(image: LoadedImage) -> np.ndarray:
    """An aligned face as a 512×512 uint8 BGR crop: area when shrinking, Lanczos when enlarging."""
    pixels, side = image.float_bgr(), image.bgr.shape[0]
    if side != FACE_SIZE:
        interp = cv2.INTER_AREA if side > FACE_SIZE else cv2.INTER_LANCZOS4
        pixels = cv2.resize(pixels, (FACE_SIZE, FACE_SIZE), interpolation=interp)
    return _to_uint8(pixels)


# -- building -----------------------------------------------------------------------------------
@dataclass
class Face:
    """One candidate face of the pool."""

    file: str  # faces/<name>.png, relative to the pool folder
    source_folder: str
    source_file: str  # relative to the data root
    licence: str
    native_size: float
    sharpness: float
    split: str
    score: float = 1.0
    png: bytes = field(default=b"", repr=False)
    pixels_sha: str = ""
    views: np.ndarray = field(default=None, repr=False)
    gray64: np.ndarray = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.png).hexdigest()


@dataclass
class Dropped:
    """A face (or a source file) left out of the pool, and why: a row of ``dropped.csv``."""

    face: str
    source_file: str
    reason: str  # low-confidence | inside-another-face | not-a-face | too-small | blurry | duplicate, or FAILURES
    detail: str = ""
    native_size: str = ""
    sharpness: str = ""
    score: str = ""


@dataclass
class PoolReport:
    """What :func:`build_pool` kept, dropped, wrote, left unchanged and removed."""

    kept: list[Face]
    dropped: list[Dropped]
    written: int = 0
    removed: int = 0
    unchanged: int = 0

    def summary(self) -> dict:
        return {
            "faces": len(self.kept),
            "per_source": dict(sorted(Counter(f.source_folder for f in self.kept).items())),
            "per_split": {s: sum(f.split == s for f in self.kept) for s in SPLITS},
            "dropped": dict(sorted(Counter(d.reason for d in self.dropped).items())),
            "written": self.written, "unchanged": self.unchanged, "removed": self.removed,
            "failed": len(self.failed),
        }

    @property
    def failed(self) -> list[Dropped]:
        return [d for d in self.dropped if d.reason in FAILURES]


def face_name(source: Source, path: Path, index: int | None) -> str:
    """``faces/<folder with / as __>__<stem>[_fN].png``."""
    suffix = "" if index is None else f"_f{index}"
    return f"faces/{source.folder.replace('/', '__')}__{path.stem}{suffix}.png"


def pool_files(data_root: str | Path, sources: list[Source]) -> list[tuple[Source, Path]]:
    """Every image of every ``aligned`` or ``detect`` folder, sorted per folder."""
    files = []
    for source in sources:
        folder = Path(data_root) / source.folder
        if source.pool in ("aligned", "detect") and folder.is_dir():
            files += [(source, p) for p in list_images(folder)[1]]
    return files


def is_face(verifier, crop: np.ndarray) -> bool:
    """A second, independent detector finds a face in the aligned crop, near the template
    (mean landmark distance under :data:`VERIFY_MAX_OFFSET` px)."""
    return any(np.linalg.norm(f.landmarks - FFHQ_TEMPLATE_512, axis=1).mean() < VERIFY_MAX_OFFSET
               for f in verifier.detect(crop))


def _candidates(source: Source, path: Path, data_root: Path, fixed: dict[str, str],
                detector, verifier) -> tuple[list[Face], list[Dropped]]:
    """The faces of one source file that pass the drop rules 1-5, and those that do not."""
    rel = path.relative_to(data_root).as_posix()
    split = source_split(path, data_root, fixed)
    try:
        image = read_image(path)
    except ImageReadError as err:
        return [], [Dropped(face_name(source, path, None), rel, "unreadable", str(err))]
    faces: list[tuple[str, np.ndarray, float, float, str | None]] = []  # name, crop, native size, score, reason
    if source.pool == "aligned":
        h, w = image.bgr.shape[:2]
        if h != w:
            return [], [Dropped(face_name(source, path, None), rel, "not-square", f"{w}×{h}")]
        faces.append((face_name(source, path, None), resize_aligned(image), float(h), 1.0, None))
    else:
        bgr8 = as_8bit(image.bgr)
        pixels = image.float_bgr()
        detections = detect_pyramid(detector, bgr8)
        for i, det in enumerate(detections):
            crop, affine = align_face(pixels, det.landmarks)
            crop = _to_uint8(crop)
            scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
            reason = ("low-confidence" if det.score < MIN_SCORE
                      else "inside-another-face" if any(inside(det.box, o.box) for o in detections if o is not det)
                      else "not-a-face" if not is_face(verifier, crop) else None)
            faces.append((face_name(source, path, i), crop, FACE_SIZE / scale, det.score, reason))
    kept, dropped = [], []
    for name, crop, native, score, reason in faces:
        sharp = sharpness(crop)
        reason = reason or ("too-small" if native < MIN_NATIVE_SIZE else "blurry" if sharp < MIN_SHARPNESS else None)
        if reason:
            dropped.append(Dropped(name, rel, reason, "", f"{native:.1f}", f"{sharp:.1f}", f"{score:.3f}"))
            continue
        ok, png = cv2.imencode(".png", crop)
        if not ok:
            raise OSError(f"could not encode {name}")
        kept.append(Face(name, source.folder, rel, source.licence, round(native, 1), round(sharp, 1), split,
                         score, png.tobytes(), hashlib.sha256(crop.tobytes()).hexdigest(), *thumbnails(crop)))
    return kept, dropped


def _twin(face: Face, kept: list[Face]) -> tuple[Face, str] | None:
    """The first face of ``kept`` that ``face`` duplicates, and how."""
    for other in kept:
        if other.pixels_sha == face.pixels_sha:
            return other, "exact"
    for other in kept:
        if prefilter_correlation(other.views, face.views) >= PREFILTER:
            corr = registered_correlation(other.gray64, face.gray64)
            if corr >= NEAR_DUPLICATE:
                return other, f"correlation {corr:.4f}"
    return None


def deduplicate(faces: list[Face], fixed: dict[str, str]) -> tuple[list[Face], list[Dropped]]:
    """Drop exact and near duplicates across all faces, keeping the larger ``native_size``."""
    kept: list[Face] = []
    dropped = []
    for face in sorted(faces, key=lambda f: (-f.native_size, f.source_file not in fixed, f.file)):
        twin = _twin(face, kept)
        if twin is None:
            kept.append(face)
        else:
            dropped.append(Dropped(face.file, face.source_file, "duplicate", f"{twin[1]} with {twin[0].file}",
                                   f"{face.native_size:.1f}", f"{face.sharpness:.1f}", f"{face.score:.3f}"))
    return sorted(kept, key=lambda f: f.file), dropped


def _csv(rows: list[dict], columns: tuple[str, ...]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``path`` already holds exactly it; True when written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data)
    return True


def old_manifest_files(out: Path) -> set[str]:
    """The ``file`` column of an existing ``out/manifest.csv`` (empty when there is none)."""
    path = out / "manifest.csv"
    if not path.is_file():
        return set()
    with open(path, newline="") as fin:
        return {row["file"] for row in csv.DictReader(fin)}


def build_pool(data_root: str | Path, out: str | Path, fixed_splits: dict[str, str], detector, verifier,
               progress: Callable[[str], None] | None = None) -> PoolReport:
    """Build (or update) the pool in ``out``; see the module docstring for the rules.

    Writes ``out/faces/*.png`` (only where the bytes differ), ``manifest.csv``, ``dropped.csv`` and
    ``train.txt``/``val.txt``/``heldout.txt``; removes faces of the old manifest that are no longer
    produced and nothing else. A face file that exists with other content and is not in the old
    manifest is not replaced: it is dropped with reason ``exists``.
    """
    data_root, out = Path(data_root), Path(out)
    sources = read_sources(data_root)
    candidates, dropped = [], []
    for source, path in pool_files(data_root, sources):
        kept, lost = _candidates(source, path, data_root, fixed_splits, detector, verifier)
        candidates += kept
        dropped += lost
        if progress:
            progress(path.name)
    kept, dupes = deduplicate(candidates, fixed_splits)
    dropped += dupes
    old = old_manifest_files(out)
    report = PoolReport([], dropped)
    for face in kept:
        target = out / face.file
        if target.is_file() and target.read_bytes() != face.png and face.file not in old:
            dropped.append(Dropped(face.file, face.source_file, "exists",
                                   "a different file of that name is not from this pool; not replaced"))
            continue
        if _write_if_changed(target, face.png):
            report.written += 1
        else:
            report.unchanged += 1
        report.kept.append(face)
    produced = {f.file for f in report.kept}
    for stale in sorted(old - produced):
        if (out / stale).is_file():
            (out / stale).unlink()
            report.removed += 1
    _write_if_changed(out / "manifest.csv", _csv([{c: getattr(f, c) for c in MANIFEST_COLUMNS} for f in report.kept],
                                                  MANIFEST_COLUMNS))
    _write_if_changed(out / "dropped.csv", _csv([asdict(d) for d in sorted(dropped, key=lambda d: d.face)],
                                                 DROPPED_COLUMNS))
    for split in SPLITS:
        lines = "".join(f"{f.file}\n" for f in report.kept if f.split == split)
        _write_if_changed(out / f"{split}.txt", lines.encode())
    return report


def calibrate_sharpness(data_root: str | Path, folders: tuple[str, ...] = ("celeba-hq-clean", "gpen-examples/ffhq-10"),
                        factor: int = 4) -> dict:
    """:func:`sharpness` percentiles of the clean aligned faces under ``folders`` and of their
    ×``factor``-degraded copies (area down, bicubic back up at 512): the data behind :data:`MIN_SHARPNESS`."""
    clean, degraded = [], []
    for folder in folders:
        for path in list_images(Path(data_root) / folder)[1]:
            face = resize_aligned(read_image(path))
            small = cv2.resize(face, (FACE_SIZE // factor,) * 2, interpolation=cv2.INTER_AREA)
            clean.append(sharpness(face))
            degraded.append(sharpness(cv2.resize(small, (FACE_SIZE,) * 2, interpolation=cv2.INTER_CUBIC)))
    stats = {}
    for name, values in (("clean", clean), (f"x{factor}-degraded", degraded)):
        v = np.array(values)
        stats[name] = {"n": len(v), "min": float(v.min()), "p2": float(np.percentile(v, 2)),
                       "p5": float(np.percentile(v, 5)), "median": float(np.median(v)), "max": float(v.max())}
    return stats
