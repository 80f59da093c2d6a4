"""Faces tracked across video frames, so that the aligned crop does not jitter: detections are
matched to tracks by box overlap, each track's box and landmarks are smoothed with a 1€ filter,
and detection is skipped while the faces barely move (their box regions hardly change)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mpcnet.restoration.detectors import Face, detect_faces

THUMB = 32  # side of the grey thumbnails that tell whether a face region changed


class OneEuroFilter:
    """The 1€ filter (Casiez, Roussel & Vogel, CHI 2012) on an array: an exponential low-pass
    ``x̂ = α·x + (1 − α)·x̂_prev`` with ``α = 1 / (1 + τ·fps)``, ``τ = 1 / (2π·f_c)`` and a cut-off
    ``f_c = min_cutoff + beta·|ẋ̂|`` that rises with speed: still faces are smoothed hard, moving
    ones followed closely. Speeds are in ``scale`` units per second (the face width)."""

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 2.0, d_cutoff: float = 1.0):
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.value: np.ndarray | None = None
        self.speed = 0.0

    def _alpha(self, cutoff: float) -> float:
        return 1.0 / (1.0 + self.fps / (2 * math.pi * cutoff))

    def __call__(self, x: np.ndarray, scale: float) -> np.ndarray:
        if self.value is None:
            self.value = x.astype(np.float64)
            return x
        speed = float(np.abs(x - self.value).max()) * self.fps / scale
        a = self._alpha(self.d_cutoff)
        self.speed = a * speed + (1 - a) * self.speed
        a = self._alpha(self.min_cutoff + self.beta * self.speed)
        self.value = a * x + (1 - a) * self.value
        return self.value.astype(np.float32)


@dataclass
class _Track:
    face: Face  # smoothed
    filter: OneEuroFilter
    thumb: np.ndarray  # its box region when last detected


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _thumb(gray: np.ndarray, box: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((THUMB, THUMB), np.float32)
    return cv2.resize(gray[y0:y1, x0:x1], (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


class FaceTracker:
    """Per-frame faces of a video. ``smooth=False`` detects every frame independently (the photo
    pipeline's behaviour). With ``smooth``, the detection of the last frame is reused while every
    tracked face's region differs from it by under ``still`` grey levels (mean absolute difference
    of 32² thumbnails, 0–255), for at most ``max_reuse`` frames in a row; detections and landmarks
    are smoothed per track (:class:`OneEuroFilter`). Faces come in track order, oldest first."""

    def __init__(self, detector, fps: float, smooth: bool = True, still: float = 1.5, max_reuse: int = 10,
                 min_iou: float = 0.3):
        self.detector, self.fps, self.smooth = detector, fps, smooth
        self.still, self.max_reuse, self.min_iou = still, max_reuse, min_iou
        self.tracks: list[_Track] = []
        self.since_detect = 0
        self.reused = 0  # frames whose detection was reused

    def _still(self, gray: np.ndarray) -> bool:
        return bool(self.tracks) and self.since_detect < self.max_reuse and all(
            np.abs(_thumb(gray, t.face.box) - t.thumb).mean() < self.still for t in self.tracks)

    def __call__(self, bgr8: np.ndarray) -> list[Face]:
        if not self.smooth:
            return detect_faces(self.detector, bgr8)
        gray = cv2.cvtColor(bgr8, cv2.COLOR_BGR2GRAY)
        if self._still(gray):
            self.since_detect += 1
            self.reused += 1
            return [t.face for t in self.tracks]
        self.since_detect = 0
        detections = detect_faces(self.detector, bgr8)  # highest score first
        order = {id(t): i for i, t in enumerate(self.tracks)}  # surviving tracks keep their order, new ones last
        tracks = []
        for det in detections:
            scores = [_iou(t.face.box, det.box) for t in self.tracks]
            best = int(np.argmax(scores)) if scores else -1
            if best >= 0 and scores[best] >= self.min_iou:
                track = self.tracks.pop(best)
            else:
                track = _Track(det, OneEuroFilter(self.fps), None)
            width = float(det.box[2] - det.box[0]) or 1.0
            values = track.filter(np.concatenate([det.box, det.landmarks.ravel()]), width)
            track.face = Face(values[:4], det.score, values[4:].reshape(5, 2))
            track.thumb = _thumb(gray, track.face.box)
            tracks.append(track)
        self.tracks = sorted(tracks, key=lambda t: order.get(id(t), len(order)))
        return [t.face for t in self.tracks]
