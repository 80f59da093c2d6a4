"""Video in, video out for ``mpcnet restore``: frames are decoded, restored by the photo pipeline's
own stages (align, network in batches, fidelity, paste, background) and encoded as a stream, so
only a batch of frames is ever in memory. Faces are tracked across frames
(:class:`~mpcnet.restoration.tracking.FaceTracker`). The output keeps the frame count, frame rate
and timestamps; the audio track is copied packet for packet, not re-encoded. PyAV (the optional
``video`` extra; its wheel ships FFmpeg) does the decoding and encoding."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from mpcnet.restoration import VIDEO_CODECS
from mpcnet.restoration.results import ImageResult, Summary
from mpcnet.restoration.scheduler import RestorePipeline
from mpcnet.restoration.stages import Photo
from mpcnet.restoration.tracking import FaceTracker
from mpcnet.utils.image_io import LoadedImage
from mpcnet.utils.safe_output import atomic_path, check_not_input

# Output container by extension (the input's); .webm holds VP9 only, so "auto" picks it there.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}


class VideoError(Exception):
    """A video that cannot be restored; the message is one line fit for a report."""


def import_av():
    """PyAV, or a :class:`VideoError` saying how to install it."""
    try:
        import av
    except ImportError as exc:
        raise VideoError("videos need PyAV: pip install 'mpcnet[video]' (or pip install av)") from exc
    return av


def frame_to_bgr(frame) -> np.ndarray:
    """A decoded frame as uint8 BGR. Through 4:4:4 first: swscale's direct YUV 4:2:0 ↔ BGR paths
    darken by about one grey level each way, which would build up over re-encodings."""
    return frame.reformat(format="yuv444p", interpolation="BILINEAR").to_ndarray(format="bgr24",
                                                                                  interpolation="BILINEAR")


def bgr_to_frame(bgr: np.ndarray, pix_fmt: str):
    """uint8 BGR as a frame in ``pix_fmt``, through 4:4:4 like :func:`frame_to_bgr`."""
    av = import_av()
    frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv444p", interpolation="BILINEAR")
    return frame.reformat(format=pix_fmt, interpolation="BILINEAR")


@dataclass
class VideoResult(ImageResult):
    """An :class:`ImageResult` with the frame count and rate (``faces`` counts faces over all frames)."""

    frames: int = 0
    fps: float = 0.0


@dataclass
class VideoInfo:
    frames: int  # video packets (= frames) in the file
    rate: Fraction
    rotation: int  # counter-clockwise degrees its display matrix asks for
    audio: bool


def probe(path: Path) -> VideoInfo:
    """Check that ``path`` is a video we can restore, reading its packets but decoding only the
    first frame. Raises :class:`VideoError` for an unreadable or truncated file, no video stream,
    no frames, a variable frame rate or a rotation that is not a multiple of 90°."""
    av = import_av()
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(f"not a readable video, or truncated ({exc.strerror})") from exc
    with container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        pts, rotation = [], None
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    pts.append(packet.pts)
                    if rotation is None:
                        rotation = next((frame.rotation for frame in packet.decode()), None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"corrupt or truncated video data ({exc.strerror})") from exc
        if not pts:
            raise VideoError("no frames in the video stream")
        if stream.frames > len(pts):
            raise VideoError(f"truncated: {len(pts)} of its {stream.frames} frames are in the file")
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise VideoError("the video stream has no frame rate")
        seconds = _stream_seconds(stream) if not stream.frames else None  # Matroska and WebM count no frames
        expected = round(seconds * float(rate)) if seconds else 0
        if expected > len(pts) + 1:
            raise VideoError(f"truncated: {len(pts)} of its {expected} frames ({seconds:.2f} s) are in the file")
        steps = np.diff(np.sort(pts)) * float(stream.time_base) * 1000
        if len(steps) and steps.max() - steps.min() > max(1.0, 0.05 * float(np.median(steps))):
            raise VideoError(f"variable frame rate (frames {steps.min():.1f} to {steps.max():.1f} ms apart); "
                             "convert it to a constant frame rate first")
        rotation = int(rotation or 0)
        if rotation % 90:
            raise VideoError(f"rotated {rotation}° by its metadata; only multiples of 90° are supported")
        return VideoInfo(len(pts), Fraction(rate), rotation % 360, bool(container.streams.audio))


def _stream_seconds(stream) -> float | None:
    """The video stream's own duration from the header: its duration field, else the DURATION tag
    Matroska writes per stream ('00:00:00.400000000'); None when neither is there. (The container's
    duration is no measure: its audio may run longer.)"""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION", "")
    try:
        hours, minutes, secs = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(secs)
    except ValueError:
        return None


def video_pixels(path: Path) -> int:
    """Width × height × frames from the container's header (0 when unreadable): the weight of a
    video when a batch is split across processes."""
    av = import_av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return stream.codec_context.width * stream.codec_context.height * max(stream.frames, 1)
    except (av.error.FFmpegError, IndexError):
        return 0


class VideoRestorer:
    """Restores videos with a :class:`RestorePipeline` (its options: upscale, fidelity, draw-box,
    overwrite…), encoding with ``codec`` at quality ``crf`` (lower is better; 18 is visually
    lossless for x264). ``smooth`` tracks faces across frames (see :class:`FaceTracker`)."""

    def __init__(self, pipeline: RestorePipeline, codec: str = "auto", crf: int = 18, smooth: bool = True):
        if codec not in VIDEO_CODECS:
            raise ValueError(f"unknown codec '{codec}'; choose from {', '.join(VIDEO_CODECS)}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, not {crf}")
        if pipeline.options.aligned:
            raise ValueError("videos are restored whole: aligned mode applies to photos of aligned faces only")
        self.pipeline, self.codec, self.crf, self.smooth = pipeline, codec, crf, smooth

    def output_path(self, source: Path, root: Path, out_dir: Path) -> Path:
        """``out_dir/restored_videos/<relative path>`` in the input's container."""
        return self.pipeline.output_path(source, root, out_dir, "restored_videos").with_suffix(source.suffix.lower())

    def _codec(self, output: Path) -> str:
        if self.codec == "auto":
            return "libvpx-vp9" if output.suffix.lower() == ".webm" else "libx264"
        return self.codec

    def _open_encoder(self, out, rate: Fraction, width: int, height: int, codec: str):
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        # 4:2:0 chroma needs even sides; odd ones keep full chroma
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        stream.options = {"crf": str(self.crf), **({"b:v": "0"} if codec == "libvpx-vp9" else {}),
                          # AVI has no room for reordered frames: B-frames would scramble its timestamps
                          **({"bf": "0"} if out.format.name == "avi" else {})}
        return stream

    def restore(self, source: Path, output: Path, info: VideoInfo | None = None,
                on_frame: Callable[[int], None] | None = None,
                on_photo: Callable[[Photo], None] | None = None) -> VideoResult:
        """Restore one video (checked by :func:`probe`, or ``info`` from it) into ``output``,
        atomically. ``on_frame(faces)`` is called per written frame, ``on_photo`` with each frame's
        restored faces (for the flicker benchmark). Raises :class:`VideoError` (or FFmpeg's
        errors) with a one-line reason."""
        av = import_av()
        info = info or probe(source)
        pipe = self.pipeline
        tracker = FaceTracker(pipe.detector, float(info.rate), self.smooth)
        counts = {"frames": 0, "faces": 0, "with_faces": 0}
        pending: deque = deque()  # (photo, pts, time_base) in display order
        queue: deque = deque()  # (photo, face index) waiting for the network
        codec = self._codec(output)
        with atomic_path(output) as tmp, av.open(str(source)) as inp, \
                av.open(str(tmp), "w", format=_FORMATS.get(output.suffix.lower())) as out:
            vin = inp.streams.video[0]
            vin.thread_type = "AUTO"
            ain = inp.streams.audio[0] if info.audio else None
            height, width = vin.codec_context.height, vin.codec_context.width
            if info.rotation in (90, 270):
                width, height = height, width
            upscale = pipe.upscale_for(width, height)  # as each frame is composed
            vout = self._open_encoder(out, info.rate, width * upscale, height * upscale, codec)
            aout = out.add_stream_from_template(ain) if ain is not None else None

            def drain(flush: bool) -> None:
                while len(queue) >= pipe.restorer.batch_size or (flush and queue):
                    pipe._run_network(queue)
                while pending and pending[0][0].ready:
                    photo, pts, time_base = pending.popleft()
                    if photo.error:
                        raise VideoError(f"frame {counts['frames']}: {photo.error}")
                    bgr = pipe._compose(photo)
                    if on_photo:
                        on_photo(photo)
                    with pipe.timer("write"):
                        frame = bgr_to_frame(bgr, vout.pix_fmt)
                        frame.pts, frame.time_base = pts, time_base
                        out.mux(vout.encode(frame))
                    counts["frames"] += 1
                    counts["faces"] += len(photo.crops)
                    counts["with_faces"] += bool(photo.crops)
                    if on_frame:
                        on_frame(len(photo.crops))

            packets = inp.demux(*(s for s in (vin, ain) if s is not None))
            while True:
                with pipe.timer("read"):
                    packet = next(packets, None)
                    if packet is None:
                        break
                    if packet.stream is ain:
                        if packet.dts is not None:
                            packet.stream = aout
                            out.mux(packet)
                        continue
                    frames = [(frame_to_bgr(f), f.pts, f.time_base) for f in packet.decode()]
                for bgr, pts, time_base in frames:
                    bgr = np.ascontiguousarray(np.rot90(bgr, info.rotation // 90)) if info.rotation else bgr
                    with pipe.timer("detect"):
                        faces = tracker(bgr)
                    image = LoadedImage(bgr=bgr, alpha=None, gray=False, path=source, mode="RGB")
                    photo = pipe._align(source, output, image, faces)
                    pending.append((photo, pts, time_base))
                    queue.extend((photo, i) for i in range(len(photo.crops)))
                    drain(flush=False)
            drain(flush=True)
            with pipe.timer("write"):
                out.mux(vout.encode(None))
            if counts["frames"] != info.frames:
                raise VideoError(f"decoded {counts['frames']} of its {info.frames} frames (truncated or corrupt)")
        notes = [f"{counts['frames']} frames at {float(info.rate):.3g} fps, {counts['with_faces']} with faces"]
        if self.smooth:
            notes.append(f"detection reused on {tracker.reused}")
        if info.rotation:
            notes.append(f"turned upright ({info.rotation}° rotation in its metadata)")
        status = "restored" if counts["faces"] else "no-face"
        return VideoResult(str(source), status, str(output), counts["faces"], "; ".join(notes),
                           frames=counts["frames"], fps=round(float(info.rate), 6))

    def run(self, files: list[Path], root: Path, out_dir: Path, summary: Summary,
            on_result: Callable[[ImageResult], None] | None = None,
            on_start: Callable[[Path, int], None] | None = None,
            on_frame: Callable[[int], None] | None = None) -> Summary:
        """Restore ``files`` into ``out_dir/restored_videos``, adding one :class:`VideoResult` (or a
        failed :class:`ImageResult`) per video to ``summary``; a bad video never stops the batch.
        ``on_start(video, frames)`` is called before each video's frames."""
        opts = self.pipeline.options
        self.pipeline.timer = summary.timer
        start = time.perf_counter()
        for source in files:
            output = self.output_path(source, root, out_dir)
            try:
                check_not_input(output, source)
                if output.exists() and not opts.overwrite:
                    if not opts.skip_existing:
                        raise FileExistsError(f"{output} exists (use --overwrite to replace it or --skip-existing)")
                    result = ImageResult(str(source), "skipped", str(output), 0, "output exists (--skip-existing)")
                else:
                    info = probe(source)
                    if on_start:
                        on_start(source, info.frames)
                    result = self.restore(source, output, info, on_frame)
            except Exception as exc:  # noqa: BLE001 - one bad video must not stop the batch
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                result = ImageResult(str(source), "failed", None, 0, message)
            summary.results.append(result)
            if on_result:
                on_result(result)
        summary.seconds += time.perf_counter() - start
        return summary
