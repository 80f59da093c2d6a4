"""Test and benchmark clips made from a still photo: a known, small camera motion (a sub-pixel
circular pan), encoded with x264, with a sine tone as the audio track."""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from mpcnet.restoration.video import bgr_to_frame, import_av


def camera_shift(index: int, fps: float, radius: float, period: float = 2.0) -> tuple[float, float]:
    """The pan of frame ``index``: a circle of ``radius`` pixels, once every ``period`` seconds."""
    angle = 2 * math.pi * index / (fps * period)
    return radius * math.cos(angle), radius * math.sin(angle)


def make_clip(photo: str | Path, path: str | Path, size: int = 256, seconds: float = 1.0, fps: float = 25,
              radius: float = 2.0, audio_hz: float | None = 440.0, crf: int = 20, rotation: int = 0) -> Path:
    """Write ``path`` (container by extension): ``photo`` fitted into ``size`` px on its longer side
    (even sides), panned by :func:`camera_shift`, ``round(seconds·fps)`` frames, with a mono 16 kHz
    sine of ``seconds`` (none when ``audio_hz`` is None). ``rotation`` stores the frames turned
    clockwise by that many degrees and asks players, in the display matrix, to turn them back."""
    av = import_av()
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    scale = size / max(image.shape[:2])
    w, h = (2 * round(image.shape[1] * scale / 2), 2 * round(image.shape[0] * scale / 2))
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    frames, rate = round(seconds * fps), Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height = (h, w) if rotation in (90, 270) else (w, h)
        video.pix_fmt, video.options = "yuv420p", {"crf": str(crf)}
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if audio_hz is not None:
            audio = out.add_stream("aac", rate=16000)
            audio.layout = "mono"
        for i in range(frames):
            dx, dy = camera_shift(i, float(rate), radius)
            frame = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
            frame = np.ascontiguousarray(np.rot90(frame, -(rotation // 90))) if rotation else frame
            out.mux(video.encode(bgr_to_frame(frame, video.pix_fmt)))
        out.mux(video.encode(None))
        if audio is not None:
            t = np.arange(round(seconds * 16000)) / 16000
            tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * audio_hz * t)).astype(np.float32)[None],
                                              format="fltp", layout="mono")
            tone.sample_rate, tone.pts = 16000, 0
            out.mux(audio.encode(tone))
            out.mux(audio.encode(None))
    return Path(path)
