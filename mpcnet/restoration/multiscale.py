"""Face detection on reduced copies of a photo, at several sizes: each face is taken from the copy
where it fits the detector, and the parts of a large face detected as faces of their own are
dropped. Shared by ``mpcnet restore`` and the training face pool (:mod:`mpcnet.data.face_pool`).

Sizes: the largest copy is :data:`~mpcnet.restoration.detectors.DETECT_MAX_SIDE` (1600) px long, so
the smallest face found is the smallest RetinaFace finds (about 16 px: the 29 sitters of the Solvay
photo are all found at 16-17 px, 23 of them at 13-15 px) on that copy, i.e. 1 % of the photo's long
side: 40 px on a 12 MP phone photo, 74 px on a 36 MP one. That is a choice of cost: a face that
small is a speck when the photo is seen whole, and finding faces half as large takes a copy twice as
long, four times the detection time (already the largest stage after the network). The bundled
network itself is trained on faces down to about 14 px (×8 degradation of 256 px crops,
``options/train_mpcnet_s256.yml``), so such faces on a 36 MP photo of a crowd are left as they are. The smaller copies are made from the
largest one, not from the full-resolution photo, so a 36 MP photo is resized once.
"""
from __future__ import annotations

import cv2
import numpy as np

from mpcnet.restoration.detectors import DETECT_MAX_SIDE, Face, detect_faces

# RetinaFace-1MB's anchors stop at 256 px. On one copy of up to 1600 px (restore before issue 19) a close-up
# face is missed and its eyes, nose or mouth are "detected" as faces (scores up to 0.999), and the
# landmarks of a face wider than ~200 px are spread: a 601×891 portrait gave native sizes 692 (box
# 369 px), 659 (339 px) and 595-606 (box 80-165 px, at 1/2, 1/4 and on half-size copies). So faces
# are also detected on copies PYRAMID_SIDES px large and each face is taken from the largest copy
# where its box is at most BEST_BOX px wide; a detection whose box lies MAX_NESTED inside a larger
# one is a part of that face.
PYRAMID_SIDES = (800, 400, 200)
BEST_BOX = 192
MAX_NESTED = 0.5


def box_area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _intersection(box: np.ndarray, other: np.ndarray) -> float:
    return box_area(np.array([max(box[0], other[0]), max(box[1], other[1]),
                              min(box[2], other[2]), min(box[3], other[3])]))


def inside(box: np.ndarray, other: np.ndarray) -> bool:
    """``box`` is smaller than ``other`` and at least :data:`MAX_NESTED` of it lies inside ``other``."""
    return box_area(box) < box_area(other) and _intersection(box, other) >= MAX_NESTED * box_area(box)


def box_iou(box: np.ndarray, other: np.ndarray) -> float:
    inter = _intersection(box, other)
    return inter / (box_area(box) + box_area(other) - inter)


def _levels(detector, bgr8: np.ndarray) -> list[list[tuple[int, float, Face]]]:
    """Detections on each copy, grouped per face (boxes overlapping at IoU ≥ 0.5): (copy index,
    box width on that copy, Face in full-resolution coordinates), in order of first detection."""
    side = max(bgr8.shape[:2])
    scale = min(1.0, DETECT_MAX_SIDE / side)
    copy = bgr8 if scale == 1.0 else cv2.resize(bgr8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    groups: list[list[tuple[int, float, Face]]] = []
    sides = (DETECT_MAX_SIDE,) + tuple(s for s in PYRAMID_SIDES if s < min(side, DETECT_MAX_SIDE))
    for index, max_side in enumerate(sides):
        level = min(1.0, max_side / max(copy.shape[:2]))
        for face in detect_faces(detector, copy, max_side):
            width = float(face.box[2] - face.box[0]) * level
            face.box, face.landmarks = face.box / scale, face.landmarks / scale
            group = next((g for g in groups if box_iou(face.box, g[0][2].box) >= 0.5), None)
            if group is None:
                groups.append([(index, width, face)])
            else:
                group.append((index, width, face))
    return groups


def _best(group: list[tuple[int, float, Face]]) -> Face:
    """The face from the largest copy where its box is at most :data:`BEST_BOX` px wide (else the smallest)."""
    return min(group, key=lambda d: (d[1] > BEST_BOX, abs(BEST_BOX - d[1])))[2]


def detect_pyramid(detector, bgr8: np.ndarray) -> list[Face]:
    """Faces found on a copy :data:`DETECT_MAX_SIDE` px large or on copies :data:`PYRAMID_SIDES` px
    large, one per face (boxes overlapping at IoU ≥ 0.5 are one face), each from the largest copy
    where its box is at most :data:`BEST_BOX` px wide (else the smallest); in full-resolution
    coordinates, in order of first detection. Nested detections (:func:`inside`) are kept."""
    return [_best(g) for g in _levels(detector, bgr8)]


def detect_multiscale(detector, bgr8: np.ndarray) -> list[Face]:
    """What ``mpcnet restore`` aligns and restores, highest score first: the faces of
    :func:`detect_pyramid` that one copy saw within the detector's range or several copies saw, and
    that are not parts of larger faces. On the 1600 px copy RetinaFace takes parts of close-up faces,
    flags, lace and blurred crowds for faces 190-370 px wide (scores 0.8-0.998) that no other copy
    confirms, while a real face is seen on every copy where it fits (ten 1.4-14 MP photos of
    ``faces-wild``)."""
    groups = _levels(detector, bgr8)
    kept = [_best(g) for g in groups if len(g) > 1 or g[0][1] <= BEST_BOX]
    return sorted((f for f in kept if not any(inside(f.box, o.box) for o in kept if o is not f)),
                  key=lambda f: -f.score)
