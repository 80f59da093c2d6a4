"""``mpcnet benchmark restore`` on videos: frames/s and the temporal instability (flicker) of the
restored faces, with face tracking off and on, measured in the same run."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mpcnet.bench import BenchError
from mpcnet.restoration.builder import build_pipeline
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.results import StageTimer
from mpcnet.restoration.video import VideoError, VideoRestorer
from mpcnet.utils.image_io import VIDEO_EXTS, list_images
from mpcnet.weights import WeightsError


class FlickerMeter:
    """Temporal instability of restored faces: the mean absolute difference (0–255) between the
    aligned restored faces of the same person in consecutive frames (each face paired with the
    previous frame's face whose nose is nearest, within half a box width). With perfect alignment a
    still face differs only by codec noise; landmark jitter adds to it."""

    def __init__(self):
        self.previous, self.total, self.pairs = [], 0.0, 0

    def reset(self) -> None:
        self.previous = []

    def __call__(self, photo) -> None:
        current = [(face.landmarks[2], face.box[2] - face.box[0], restored)
                   for face, restored in zip(photo.faces, photo.restored)]
        for nose, width, restored in current:
            distances = [np.hypot(*(nose - other)) for other, _, _ in self.previous]
            if distances and min(distances) < width / 2:
                self.total += float(np.abs(restored - self.previous[int(np.argmin(distances))][2]).mean()) * 255
                self.pairs += 1
        self.previous = current

    @property
    def value(self) -> float | None:
        return self.total / self.pairs if self.pairs else None


def video_files(source: Path) -> list[Path]:
    """The videos in ``source`` (a video, a folder or a glob)."""
    try:
        return [f for f in list_images(source, VIDEO_EXTS)[1] if f.suffix.lower() in VIDEO_EXTS]
    except FileNotFoundError as exc:
        raise BenchError(str(exc)) from exc


def run_video_benchmark(source: Path, weights: str | None, device: str = "cpu", batch_size: int = 8,
                        amp: bool = False, fidelity: float = 0.0) -> dict:
    """Restore every video in ``source`` (outputs discarded) with tracking off, then on: frames/s,
    seconds per stage and flicker (:class:`FlickerMeter`) for each, and on ÷ off."""
    files = video_files(source)
    if not files:
        raise BenchError(f"no videos in {source}")
    try:
        pipeline = build_pipeline(weights, device, options=RestoreOptions(fidelity=fidelity), amp=amp,
                                  batch_size=batch_size).pipeline
    except (WeightsError, ValueError) as exc:
        raise BenchError(str(exc)) from exc
    runs = {}
    for smooth in (False, True):
        pipeline.timer = StageTimer()
        videos = VideoRestorer(pipeline, smooth=smooth)
        meter, frames, faces = FlickerMeter(), 0, 0
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="mpcnet-bench-") as out:
            for i, video in enumerate(files):
                meter.reset()
                try:
                    result = videos.restore(video, Path(out) / f"{i}{video.suffix.lower()}", on_photo=meter)
                except VideoError as exc:
                    raise BenchError(f"{video}: {exc}") from exc
                frames, faces = frames + result.frames, faces + result.faces
        seconds = time.perf_counter() - start
        runs["on" if smooth else "off"] = {
            "frames": frames, "faces": faces, "seconds": round(seconds, 3),
            "frames_per_s": round(frames / seconds, 3), "flicker": None if meter.value is None else round(meter.value, 4),
            "stage_seconds": {k: round(v, 3) for k, v in pipeline.timer.seconds.items()}}
    off, on = runs["off"], runs["on"]
    return {"source": str(source), "videos": len(files), "device": device, "amp": amp, "batch_size": batch_size,
            "threads": torch.get_num_threads(), "weights": pipeline.restorer.name, "detector": pipeline.detector.name,
            "fidelity": fidelity, "smoothing": runs,
            "flicker_ratio": round(on["flicker"] / off["flicker"], 3) if on["flicker"] and off["flicker"] else None,
            "speed_ratio": round(on["frames_per_s"] / off["frames_per_s"], 3)}


def markdown(result: dict) -> str:
    runs = result["smoothing"]
    lines = [f"{result['videos']} video(s) from {result['source']} on {result['device']} ({result['threads']} threads), "
             f"weights {result['weights']}, detector {result['detector']}, batch {result['batch_size']}, "
             f"{'bf16 autocast' if result['amp'] else 'fp32'}, fidelity {result['fidelity']}:", "",
             "| face tracking | frames | frames/s | flicker (mean abs. diff. of consecutive restored faces, 0–255) |",
             "|---|---|---|---|"]
    for name, label in (("off", "off (--no-smooth)"), ("on", "on (default)")):
        run = runs[name]
        flicker = "n/a" if run["flicker"] is None else f"{run['flicker']:.3f}"
        lines.append(f"| {label} | {run['frames']} | {run['frames_per_s']:.2f} | {flicker} |")
    ratio = result["flicker_ratio"]
    lines += ["", f"on ÷ off: flicker {'n/a' if ratio is None else f'{ratio:.3f}'}×, "
                  f"frames/s {result['speed_ratio']:.3f}×."]
    return "\n".join(lines) + "\n"
