"""The pseudo parsing labels of a face pool (issue 12): ``POOL/labels/<stem>.png`` beside
``POOL/faces/<stem>.png``, and ``POOL/labels/labels.csv`` saying how each face's landmarks were found.

A pool (``scripts/build_face_pool.py``) lists its faces as ``faces/NAME.png`` paths relative to
itself, in ``manifest.csv`` (column ``file``) and in ``train.txt``/``val.txt``/``heldout.txt``.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2

from mpcnet.data.pseudo_parsing import LandmarkDetector, rasterise
from mpcnet.utils.image_io import write_image
from mpcnet.utils.safe_output import write_bytes_atomic

LABELS_DIR = "labels"
TABLE_NAME = "labels.csv"
TABLE_COLUMNS = ("face", "method", "ok")
SPLITS = ("train", "val", "heldout")


def pool_faces(pool: str | Path, split: str | None = None) -> list[str]:
    """The faces of ``split`` (its ``<split>.txt``), or of the whole pool (``manifest.csv``'s ``file``
    column, else every split list), as ``faces/NAME.png`` paths relative to ``pool``."""
    pool = Path(pool)
    if split is None and (pool / "manifest.csv").is_file():
        with open(pool / "manifest.csv", newline="") as f:
            return [row["file"] for row in csv.DictReader(f)]
    lists = [pool / f"{s}.txt" for s in ((split,) if split else SPLITS)]
    if not any(p.is_file() for p in lists):
        raise FileNotFoundError(f"{pool} is not a face pool: no {' or '.join(p.name for p in lists)}"
                                + ("" if split else " or manifest.csv"))
    return [line.strip() for p in lists if p.is_file() for line in p.read_text().splitlines() if line.strip()]


def label_path(pool: str | Path, face: str) -> Path:
    """``POOL/labels/<stem>.png`` of the face ``faces/<stem>.png``."""
    return Path(pool) / LABELS_DIR / f"{Path(face).stem}.png"


def read_table(pool: str | Path) -> dict[str, dict]:
    """``labels.csv`` as {face: {"method": str, "ok": bool}}; empty when absent."""
    path = Path(pool) / LABELS_DIR / TABLE_NAME
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["face"]: {"method": row["method"], "ok": row["ok"] == "1"} for row in csv.DictReader(f)}


def write_table(pool: str | Path, table: dict[str, dict], faces: list[str]) -> None:
    """``labels.csv`` (atomically): the rows of ``table`` ({face: {"method": str, "ok": bool}}, as
    :func:`read_table` returns it) for ``faces``, in their order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for face in faces:
        if face in table:
            writer.writerow([face, table[face]["method"], int(table[face]["ok"])])
    write_bytes_atomic(Path(pool) / LABELS_DIR / TABLE_NAME, out.getvalue().encode())


def labelled_faces(pool: str | Path, split: str | None = None) -> list[str]:
    """The faces of ``split`` whose landmarks were trusted and whose label map exists."""
    table = read_table(pool)
    return [face for face in pool_faces(pool, split)
            if table.get(face, {}).get("ok") and label_path(pool, face).is_file()]


@dataclass
class FaceLabel:
    face: str
    status: str  # "written" | "failed" (no label written) | "unreadable"
    method: str = ""  # "hog" | "fixed-box"
    detail: str = ""


class PoolLabelRun:
    """Label every pool face that has no up-to-date label: iterate it to do the work (one
    :class:`FaceLabel` per face), ``labels.csv`` is rewritten atomically when the iteration ends or
    stops. Up to date: the face has a row in ``labels.csv`` and is not newer than its label map (or,
    for a failed face, than ``labels.csv``). dlib's models are loaded once, on construction, only when work remains."""

    def __init__(self, pool: str | Path, overwrite: bool = False):
        self.pool = Path(pool)
        self.faces = pool_faces(self.pool)
        self.table = {} if overwrite else read_table(self.pool)
        self.pending = [face for face in self.faces if overwrite or not self._up_to_date(face)]
        self.skipped = len(self.faces) - len(self.pending)
        # up to date, but without a label: their landmarks failed in an earlier run
        self.failed_before = [face for face in self.faces if face not in self.pending and not self.table[face]["ok"]]
        self.detector = LandmarkDetector() if self.pending else None  # a missing dlib stops here, before any work

    def _up_to_date(self, face: str) -> bool:
        row = self.table.get(face)
        if row is None:
            return False
        stamp = label_path(self.pool, face) if row["ok"] else self.pool / LABELS_DIR / TABLE_NAME
        face_path = self.pool / face
        return stamp.is_file() and face_path.is_file() and stamp.stat().st_mtime >= face_path.stat().st_mtime

    def __len__(self) -> int:
        return len(self.pending)

    def __iter__(self):
        if not self.pending:
            return
        try:
            for face in self.pending:
                result = self._label(face)
                self.table[face] = {"method": result.method, "ok": result.status == "written"}
                yield result
        finally:
            self._save_table()

    def _label(self, face: str) -> FaceLabel:
        image = cv2.imread(str(self.pool / face), cv2.IMREAD_COLOR)
        if image is None:
            return FaceLabel(face, "unreadable", detail="missing or not an image")
        found = self.detector(image)
        if not found.ok:
            why = ("landmarks far from the FFHQ template" if found.method == "hog"
                   else "HOG finds no face, not even a weak one in the fixed FFHQ box")
            return FaceLabel(face, "failed", found.method, why)
        write_image(label_path(self.pool, face), rasterise(found.points, image.shape[0], image), overwrite=True)
        return FaceLabel(face, "written", found.method)

    def _save_table(self) -> None:
        write_table(self.pool, self.table, self.faces)
