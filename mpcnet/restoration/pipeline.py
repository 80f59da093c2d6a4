"""``mpcnet restore``'s pipeline: read → detect (on reduced copies) → align to the FFHQ template →
restore in batches (faces from several photos share a batch) → paste back with a soft mask → upscale
the background → write atomically. Every stage is timed (:class:`StageTimer`) for the benchmark.

Memory is bounded per photo, not per batch: a photo's pixels stay in its own sample type (uint8 or
uint16; only the regions around faces become float32), and while its faces wait for the network
behind a newer photo its pixels are let go and read again when it is finished. So at most two
decoded inputs (the newest, the one being finished) and one output are alive at a time, whatever
the batch size."""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from facexlib.utils.face_restoration_helper import get_center_face

from mpcnet.parsing_classes import MPCNET_FACE_CLASSES
from mpcnet.restoration import BG_UPSAMPLER_NAMES
from mpcnet.restoration.align import FACE_SIZE, align_face, inverse_affine
from mpcnet.restoration.background import make_background_upsampler
from mpcnet.restoration.draw import draw_faces
from mpcnet.restoration.multiscale import detect_multiscale
from mpcnet.restoration.paste import ellipse_mask, parse_labels, parse_mask, paste_face
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.utils.image_io import DEFAULT_MAX_PIXELS, ImageReadError, LoadedImage, as_8bit, read_image, write_image
from mpcnet.utils.memory import available_bytes, format_bytes
from mpcnet.utils.safe_output import UnsafeOutputError, check_not_input

STAGES = ("read", "detect", "align", "network", "background", "paste", "write")
_SINGLE_CHANNEL_MODES = {"L", "LA", "I", "I;16", "I;16B", "I;16L", "1"}


@dataclass
class RestoreOptions:
    upscale: int | None = None  # None: 2 for photos, 1 (the input's size) for aligned faces
    aligned: bool = False  # inputs are already FFHQ-aligned faces: no detection, no paste
    only_center_face: bool = False
    ext: str = "auto"  # auto (keep the input's) | png | jpg
    suffix: str = ""
    save_faces: bool = False
    save_comparison: bool = False
    bg_upsampler: str = "lanczos"
    max_pixels: int = DEFAULT_MAX_PIXELS
    faces_only: bool = False  # photos without a face are not written
    skip_existing: bool = False
    overwrite: bool = False
    fidelity: float = 0.0  # W of :func:`blend_fidelity`: 0 the network's face, 1 the input's
    draw_box: bool = False  # draw the detected boxes and landmarks on the output

    def __post_init__(self):
        if self.upscale is None:
            self.upscale = 1 if self.aligned else 2
        if self.upscale < 1:
            raise ValueError("--upscale must be 1 or more")
        if self.bg_upsampler not in BG_UPSAMPLER_NAMES:
            raise ValueError(f"unknown --bg-upsampler '{self.bg_upsampler}'; "
                             f"choose from {', '.join(BG_UPSAMPLER_NAMES)}")
        if self.bg_upsampler == "none" and self.upscale != 1:
            raise ValueError("--bg-upsampler none keeps the photo's size: use it with --upscale 1")
        if self.ext not in ("auto", "png", "jpg"):
            raise ValueError("--ext must be auto, png or jpg")
        if self.overwrite and self.skip_existing:
            raise ValueError("--overwrite and --skip-existing contradict each other: give one of them")
        if self.max_pixels < 1:
            raise ValueError("--max-pixels must be 1 or more")
        if not 0 <= self.fidelity <= 1:
            raise ValueError(f"--fidelity must be between 0 and 1, not {self.fidelity}")
        if self.draw_box and self.aligned:
            raise ValueError("--draw-box draws detections, and --aligned inputs are not detected")


def blend_fidelity(restored: np.ndarray, crop: np.ndarray, fidelity: float) -> np.ndarray:
    """The fidelity knob, model-agnostic: ``I = (1 − W)·I_restored + W·I_aligned`` on the aligned
    crop, before paste-back. W = 0 is the network's output unchanged (the default), W = 1 the input."""
    return restored if fidelity == 0 else restored + fidelity * (crop - restored)


@dataclass
class ImageResult:
    """What happened to one input; ``status`` is restored | no-face | skipped | failed."""

    source: str
    status: str
    output: str | None = None
    faces: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class StageTimer:
    """Wall seconds spent per pipeline stage."""

    seconds: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


@dataclass
class Summary:
    results: list = field(default_factory=list)
    timer: StageTimer = field(default_factory=StageTimer)
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped the batch; ``results`` holds what finished

    @property
    def faces(self) -> int:
        return sum(r.faces for r in self.results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @classmethod
    def merge(cls, parts: list[Summary], order: list[Path]) -> Summary:
        """The summaries of the processes of one run as one: results listed as ``order`` gives the
        inputs, seconds per stage summed over processes, wall seconds of the slowest."""
        index = {str(source): i for i, source in enumerate(order)}
        timer = StageTimer({s: sum(p.timer.seconds[s] for p in parts) for s in STAGES})
        return cls(sorted((r for p in parts for r in p.results), key=lambda r: index[r.source]), timer,
                   max(p.seconds for p in parts), any(p.interrupted for p in parts))

    def to_dict(self) -> dict:
        faces = self.faces
        return {
            "files": len(self.results),
            **{s.replace("-", "_"): self.count(s) for s in ("restored", "no-face", "skipped", "failed")},
            "faces": faces, "seconds": round(self.seconds, 3), "interrupted": self.interrupted,
            "faces_per_s": round(faces / self.seconds, 3) if self.seconds else None,
            "stage_seconds": {k: round(v, 3) for k, v in self.timer.seconds.items()},
            "results": [asdict(r) for r in self.results],
        }


@dataclass
class _Photo:
    """A photo between detection and paste: its faces wait for the network."""

    source: Path
    output: Path
    image: LoadedImage | None  # None while let go (:meth:`RestorePipeline._reload` reads it again)
    shape: tuple  # the decoded colour's (height, width, 3)
    single_channel: bool
    crops: list
    affines: list
    restored: list = field(default_factory=list)
    labels: list = field(default_factory=list)  # the network's parsing of each face, or None
    error: str = ""
    faces: list = field(default_factory=list)  # the detected :class:`Face` of each crop (none when aligned)

    @property
    def ready(self) -> bool:
        return bool(self.error) or len(self.restored) == len(self.crops)


class RestorePipeline:
    """Restores whole photos (or aligned faces) with a :class:`FaceRestorer` and a detector.

    Building it builds the background upsampler, which raises :class:`BackgroundUpsamplerError`
    when Real-ESRGAN is asked for but its package or weights are missing."""

    def __init__(self, restorer: FaceRestorer, detector=None, options: RestoreOptions | None = None,
                 parsenet=None):
        self.restorer, self.detector, self.parsenet = restorer, detector, parsenet
        self.options = options or RestoreOptions()
        if self.detector is None and not self.options.aligned:
            raise ValueError("a face detector is needed unless the inputs are aligned faces")
        self.timer = StageTimer()
        self._ellipse = ellipse_mask(FACE_SIZE)
        self._background = None if self.options.aligned else make_background_upsampler(
            self.options.bg_upsampler, str(restorer.device), half=restorer.amp and restorer.device.type == "cuda")

    # -- naming -------------------------------------------------------------------------------
    def output_path(self, source: Path, root: Path, out_dir: Path, folder: str = "restored_imgs") -> Path:
        rel = source.relative_to(root) if source.is_relative_to(root) else Path(source.name)
        ext = source.suffix.lower() if self.options.ext == "auto" else f".{self.options.ext}"
        suffix = f"_{self.options.suffix}" if self.options.suffix else ""
        return out_dir / folder / rel.parent / f"{rel.stem}{suffix}{ext}"

    # -- the stages ---------------------------------------------------------------------------
    def memory_needed(self, width: int, height: int) -> int:
        """Bytes one photo holds at its peak, counted at 16 bits per sample (the header does not
        say): the decoded input, two copies of the output (canvas, encoded), two more with
        --save-comparison; aligned faces' float32 copy; Real-ESRGAN's float32 input and ×2 result,
        twice (ours and its own tensors)."""
        opts = self.options
        pixels = width * height
        need = pixels * 3 * 2 + pixels * opts.upscale ** 2 * 3 * 2 * (4 if opts.save_comparison else 2)
        if opts.aligned:
            return need + pixels * 3 * 4
        return need + (pixels * 3 * 4 * (1 + 4) * 2 if opts.bg_upsampler == "realesrgan" else 0)

    def _check_size(self, width: int, height: int) -> None:
        """Refuse, before decoding, a photo whose output is over --max-pixels or that needs more
        memory than is available (:meth:`memory_needed`)."""
        opts = self.options
        out_w, out_h = width * opts.upscale, height * opts.upscale
        if out_w * out_h > opts.max_pixels:
            raise ImageReadError(f"the output, {out_w}×{out_h} at --upscale {opts.upscale}, is over the --max-pixels "
                                 f"limit of {opts.max_pixels} (raise --max-pixels or lower --upscale)")
        need, free = self.memory_needed(width, height), available_bytes()
        if free is not None and need > free:
            raise ImageReadError(f"{width}×{height} at --upscale {opts.upscale} needs about {format_bytes(need)} of "
                                 f"memory and {format_bytes(free)} is available (lower --upscale, or free memory)")

    def _prepare(self, source: Path, output: Path) -> _Photo:
        opts = self.options
        with self.timer("read"):
            image = read_image(source, opts.max_pixels, self._check_size)
            single = image.mode in _SINGLE_CHANNEL_MODES
        if opts.aligned:
            with self.timer("align"):
                pixels = image.float_bgr()
                crop = cv2.resize(pixels, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA
                                  if min(pixels.shape[:2]) > FACE_SIZE else cv2.INTER_CUBIC)
            return _Photo(source, output, image, image.bgr.shape, single, [crop], [None])
        with self.timer("detect"):
            bgr8 = as_8bit(image.bgr)
            faces = detect_multiscale(self.detector, bgr8)
            if opts.only_center_face and len(faces) > 1:
                h, w = bgr8.shape[:2]
                faces = [faces[get_center_face([f.box for f in faces], h, w)[1]]]
        return self._align(source, output, image, faces)

    def _align(self, source: Path, output: Path, image: LoadedImage, faces: list) -> _Photo:
        """The aligned crops of detected ``faces`` (also the entry point of video frames)."""
        with self.timer("align"):
            aligned = [align_face(image.bgr, f.landmarks) for f in faces]
        return _Photo(source, output, image, image.bgr.shape, image.mode in _SINGLE_CHANNEL_MODES,
                      [c for c, _ in aligned], [a for _, a in aligned], faces=faces)

    def _reload(self, photo: _Photo) -> LoadedImage:
        """The photo's pixels, read again when they were let go while its faces waited."""
        if photo.image is None:
            with self.timer("read"):
                image = read_image(photo.source, self.options.max_pixels)
            if image.bgr.shape != photo.shape:
                raise ImageReadError("the file changed while its faces were being restored")
            photo.image = image
        return photo.image

    def _masks(self, photo: _Photo) -> list[np.ndarray]:
        """Paste masks: from the network's own parsing prior when it has one, else from the
        separate ParseNet when loaded, else the feathered ellipse. A parsing that finds almost no
        face (under 1 % of the crop: an untrained parser, a back of a head) gets the ellipse."""
        if self.restorer.parses:
            masks = [parse_mask(labels, MPCNET_FACE_CLASSES) for labels in photo.labels]
        elif self.parsenet is not None:
            masks = [parse_mask(labels) for labels in parse_labels(self.parsenet, photo.restored, self.restorer.device)]
        else:
            return [self._ellipse] * len(photo.restored)
        return [mask if mask.mean() >= 0.01 else cv2.resize(self._ellipse, mask.shape[::-1]) for mask in masks]

    def _compose(self, photo: _Photo) -> np.ndarray:
        """Background upscaled, faces pasted: BGR at the output size in the photo's sample type
        (uint8 or uint16); only each face's box is blended in float32."""
        opts = self.options
        image = self._reload(photo)
        h, w = photo.shape[:2]
        size = (w * opts.upscale, h * opts.upscale)
        if opts.aligned:
            with self.timer("paste"):
                return self._to_dtype(photo, cv2.resize(photo.restored[0], size, interpolation=cv2.INTER_AREA
                                                        if size[0] < FACE_SIZE else cv2.INTER_CUBIC).clip(0, 1))
        with self.timer("background"):
            if self._background is None or opts.upscale == 1:  # pasted in place; the comparison needs a copy
                canvas = image.bgr.copy() if opts.save_comparison else image.bgr
            else:
                canvas = self._background(image.bgr, size)
        with self.timer("paste"):
            for face, mask, affine in zip(photo.restored, self._masks(photo), photo.affines):
                paste_face(canvas, face, mask, inverse_affine(affine, opts.upscale))
            if opts.draw_box:
                draw_faces(canvas, photo.faces, opts.upscale)
            return canvas

    def _encode(self, photo: _Photo, bgr: np.ndarray) -> np.ndarray:
        """Composed BGR → the input's mode: gray stays gray, alpha kept (upscaled), 16 bits kept."""
        image, opts = photo.image, self.options
        out = bgr
        if image.gray:
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            out = gray if photo.single_channel and image.alpha is None else cv2.merge([gray] * 3)
        if image.alpha is not None and photo.output.suffix.lower() not in (".jpg", ".jpeg", ".bmp"):
            alpha = cv2.resize(image.alpha, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_LINEAR) \
                if opts.upscale != 1 else image.alpha
            out = np.dstack([out, alpha])
        return out

    def _notes(self, photo: _Photo) -> str:
        ext = photo.output.suffix.lower()
        notes = []
        if photo.image.bit_depth == 16 and ext in (".jpg", ".jpeg", ".webp", ".bmp"):
            notes.append(f"16-bit input written as 8-bit ({ext[1:]} holds 8 bits)")
        if photo.image.alpha is not None and ext in (".jpg", ".jpeg", ".bmp"):
            notes.append(f"alpha channel dropped ({ext[1:]} has none)")
        return "; ".join(notes)

    def _finish(self, photo: _Photo, out_dir: Path, root: Path) -> ImageResult:
        opts = self.options
        faces = 0 if opts.aligned else len(photo.crops)
        if faces == 0 and not opts.aligned and opts.faces_only:
            return ImageResult(str(photo.source), "no-face", None, 0, "no face found; not written (--faces-only)")
        composed = self._compose(photo)
        with self.timer("write"):
            write_image(photo.output, self._encode(photo, composed), overwrite=opts.overwrite)
            if opts.save_faces:
                for i, (crop, face) in enumerate(zip(photo.crops, photo.restored)):
                    for folder, img in (("cropped_faces", crop), ("restored_faces", face)):
                        path = self.output_path(photo.source, root, out_dir, folder)
                        path = path.with_name(f"{path.stem}_{i:02d}.png")
                        write_image(path, self._to_dtype(photo, img), overwrite=opts.overwrite)
            if opts.save_comparison:
                h, w = composed.shape[:2]
                before = cv2.resize(photo.image.bgr, (w, h), interpolation=cv2.INTER_NEAREST)
                write_image(self.output_path(photo.source, root, out_dir, "cmp"), np.hstack([before, composed]),
                            overwrite=opts.overwrite)
        if opts.aligned:
            return ImageResult(str(photo.source), "restored", str(photo.output), 1, self._notes(photo))
        if faces == 0:
            message = "; ".join(filter(None, ["no face found; background upscaled only", self._notes(photo)]))
            return ImageResult(str(photo.source), "no-face", str(photo.output), 0, message)
        return ImageResult(str(photo.source), "restored", str(photo.output), faces, self._notes(photo))

    @staticmethod
    def _to_dtype(photo: _Photo, bgr: np.ndarray) -> np.ndarray:
        """float32 [0, 1] → the input's sample type, colour as is (face crops, aligned outputs)."""
        return np.rint(bgr * photo.image.max_value).astype(photo.image.bgr.dtype)

    # -- the batch loop -------------------------------------------------------------------------
    def _run_network(self, queue: deque) -> None:
        """Restore the next batch of queued faces; on a network error (e.g. out of memory) the
        photos those faces belong to fail and their other faces leave the queue."""
        jobs = [queue.popleft() for _ in range(min(self.restorer.batch_size, len(queue)))]
        try:
            with self.timer("network"):
                outs = self.restorer([photo.crops[i] for photo, i in jobs])
        except (RuntimeError, ValueError, MemoryError) as exc:
            failed = {id(photo): photo for photo, _ in jobs}
            for photo in failed.values():
                photo.error = f"network failed: {(str(exc) or type(exc).__name__).splitlines()[0]}"
            for job in [j for j in queue if id(j[0]) in failed]:
                queue.remove(job)
            return
        for (photo, i), (face, labels) in zip(jobs, outs):
            photo.restored.append(blend_fidelity(face, photo.crops[i], self.options.fidelity))
            photo.labels.append(labels)

    def run(self, files: list[Path], root: Path, out_dir: Path,
            on_result: Callable[[ImageResult], None] | None = None) -> Summary:
        """Restore ``files`` (under ``root``) into ``out_dir/restored_imgs``; never stops on a bad
        file: each gets an :class:`ImageResult`. ``on_result`` is called as each photo finishes.
        A file whose output would replace an input fails; the caller checks ``out_dir`` against
        the input folder first (:func:`~mpcnet.utils.safe_output.check_output_location`). Ctrl-C (or a
        SIGTERM turned into KeyboardInterrupt) stops the batch: the summary holds the files that
        finished, marked ``interrupted``; writes are atomic, so no partial file is left."""
        opts = self.options
        self.timer = StageTimer()
        summary = Summary(timer=self.timer)
        start = time.perf_counter()
        pending: deque[_Photo] = deque()
        queue: deque = deque()  # (photo, face index) waiting for the network

        def record(result: ImageResult) -> None:
            summary.results.append(result)
            if on_result:
                on_result(result)

        def drain(flush: bool) -> None:
            while len(queue) >= self.restorer.batch_size or (flush and queue):
                self._run_network(queue)
            while pending and pending[0].ready:
                photo = pending.popleft()
                if photo.error:
                    record(ImageResult(str(photo.source), "failed", None, 0, photo.error))
                    continue
                try:
                    record(self._finish(photo, out_dir, root))
                except (OSError, ValueError, ImageReadError, cv2.error) as exc:
                    record(ImageResult(str(photo.source), "failed", None, 0, str(exc).splitlines()[0]))
                except MemoryError:  # the last resort behind _check_size's estimate
                    h, w = photo.shape[:2]
                    record(ImageResult(str(photo.source), "failed", None, 0, f"out of memory composing the "
                                       f"{w * opts.upscale}×{h * opts.upscale} output (lower --upscale)"))

        claimed: dict[Path, Path] = {}  # output → the input that writes it in this run
        try:
            for source in files:
                output = self.output_path(source, root, out_dir)
                if output in claimed:
                    record(ImageResult(str(source), "failed", None, 0, f"same output name as {claimed[output]} "
                                       "(give --ext auto, or rename one)"))
                    continue
                claimed[output] = source
                try:
                    check_not_input(output, source)
                except UnsafeOutputError as exc:
                    record(ImageResult(str(source), "failed", None, 0, str(exc)))
                    continue
                if output.exists() and not opts.overwrite:
                    if opts.skip_existing:
                        record(ImageResult(str(source), "skipped", str(output), 0, "output exists (--skip-existing)"))
                    else:
                        record(ImageResult(str(source), "failed", str(output), 0,
                                           f"{output} exists (use --overwrite to replace it or --skip-existing)"))
                    continue
                if not opts.aligned:  # the waiting photos' pixels go, to be read again when finished
                    for waiting in pending:
                        waiting.image = None
                try:
                    photo = self._prepare(source, output)
                except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                    record(ImageResult(str(source), "failed", None, 0, str(exc).splitlines()[0] or type(exc).__name__))
                    continue
                pending.append(photo)
                queue.extend((photo, i) for i in range(len(photo.crops)))
                drain(flush=False)
            drain(flush=True)
        except KeyboardInterrupt:
            summary.interrupted = True
        order = {str(source): i for i, source in enumerate(files)}
        summary.results.sort(key=lambda r: order[r.source])  # reported as finished, listed as given
        summary.seconds = time.perf_counter() - start
        return summary
