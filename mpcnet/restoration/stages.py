"""The stages of ``mpcnet restore`` for one photo: read → detect (on reduced copies) → align to
the FFHQ template; then, once the network has restored its faces (:meth:`PhotoStages._run_network`,
faces of several photos share a batch), paste back with a soft mask over the upscaled background →
encode → write atomically. Every stage is timed (:class:`~mpcnet.restoration.results.StageTimer`).
The order in which photos go through them, and on which thread, is
:mod:`mpcnet.restoration.scheduler`'s.

A photo's pixels stay in its own sample type (uint8 or uint16; only the regions around faces become
float32), and a photo whose faces wait for the network may be let go (``image`` None) and read
again (:meth:`PhotoStages._reload`) when it is finished."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from facexlib.utils.face_restoration_helper import get_center_face

from mpcnet.parsing_classes import MPCNET_FACE_CLASSES
from mpcnet.restoration.align import FACE_SIZE, align_face, inverse_affine
from mpcnet.restoration.background import make_background_upsampler
from mpcnet.restoration.draw import draw_faces
from mpcnet.restoration.encode import format_notes, like_input, single_channel
from mpcnet.restoration.multiscale import detect_multiscale
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.paste import ellipse_mask, parse_labels, parse_mask, paste_face
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.restoration.results import ImageResult, StageTimer
from mpcnet.utils.image_io import ImageReadError, LoadedImage, as_8bit, encode_image, read_image, write_encoded
from mpcnet.utils.memory import available_bytes, format_bytes


def blend_fidelity(restored: np.ndarray, crop: np.ndarray, fidelity: float) -> np.ndarray:
    """The fidelity knob, model-agnostic: ``I = (1 − W)·I_restored + W·I_aligned`` on the aligned
    crop, before paste-back. W = 0 is the network's output unchanged (the default), W = 1 the input."""
    return restored if fidelity == 0 else restored + fidelity * (crop - restored)


@dataclass
class Photo:
    """A photo between detection and paste: its faces wait for the network."""

    source: Path
    output: Path
    image: LoadedImage | None  # None while let go (:meth:`PhotoStages._reload` reads it again)
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


class PhotoStages:
    """The stages of one photo (or aligned face), with a :class:`FaceRestorer` and a detector.

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

    def upscale_for(self, width: int, height: int) -> int:
        """The photo's upscale: ``--upscale``, but 1 where the default ×2 (not asked for) would make an
        output over ``--max-pixels``: a photo over 16 MP keeps its size rather than failing."""
        opts = self.options
        if not opts.upscale_given and width * height * opts.upscale ** 2 > opts.max_pixels:
            return 1
        return opts.upscale

    # -- the stages ---------------------------------------------------------------------------
    def memory_needed(self, width: int, height: int) -> int:
        """Bytes one photo holds at its peak, counted at 16 bits per sample (the header does not
        say): the decoded input, two copies of the output (canvas, encoded), two more with
        --save-comparison; aligned faces' float32 copy; Real-ESRGAN's float32 input and ×2 result,
        twice (ours and its own tensors)."""
        opts = self.options
        pixels = width * height
        need = pixels * 3 * 2 + pixels * self.upscale_for(width, height) ** 2 * 3 * 2 * (4 if opts.save_comparison
                                                                                       else 2)
        if opts.aligned:
            return need + pixels * 3 * 4
        return need + (pixels * 3 * 4 * (1 + 4) * 2 if opts.bg_upsampler == "realesrgan" else 0)

    def _check_size(self, width: int, height: int) -> None:
        """Refuse, before decoding, a photo whose output is over ``max_pixels`` or that needs more
        memory than is available (:meth:`memory_needed`)."""
        opts, upscale = self.options, self.upscale_for(width, height)
        out_w, out_h = width * upscale, height * upscale
        if out_w * out_h > opts.max_pixels:
            raise ImageReadError(f"the output, {out_w}×{out_h} at upscale {upscale}, is over the --max-pixels "
                                 f"limit of {opts.max_pixels} (raise --max-pixels or lower --upscale)")
        need, free = self.memory_needed(width, height), available_bytes()
        if free is not None and need > free:
            raise ImageReadError(f"{width}×{height} at upscale {upscale} needs about {format_bytes(need)} of "
                                 f"memory and {format_bytes(free)} is available (lower --upscale, or free memory)")

    def _prepare(self, source: Path, output: Path) -> Photo:
        opts = self.options
        with self.timer("read"):
            image = read_image(source, opts.max_pixels, self._check_size)
        if opts.aligned:
            with self.timer("align"):
                pixels = image.float_bgr()
                crop = cv2.resize(pixels, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA
                                  if min(pixels.shape[:2]) > FACE_SIZE else cv2.INTER_CUBIC)
            return Photo(source, output, image, image.bgr.shape, single_channel(image), [crop], [None])
        with self.timer("detect"):
            bgr8 = as_8bit(image.bgr)
            faces = detect_multiscale(self.detector, bgr8)
            if opts.only_center_face and len(faces) > 1:
                h, w = bgr8.shape[:2]
                faces = [faces[get_center_face([f.box for f in faces], h, w)[1]]]
        return self._align(source, output, image, faces)

    def _align(self, source: Path, output: Path, image: LoadedImage, faces: list) -> Photo:
        """The aligned crops of detected ``faces`` (also the entry point of video frames)."""
        with self.timer("align"):
            aligned = [align_face(image.bgr, f.landmarks) for f in faces]
        return Photo(source, output, image, image.bgr.shape, single_channel(image),
                     [c for c, _ in aligned], [a for _, a in aligned], faces=faces)

    def _reload(self, photo: Photo) -> LoadedImage:
        """The photo's pixels, read again when they were let go while its faces waited."""
        if photo.image is None:
            with self.timer("read"):
                image = read_image(photo.source, self.options.max_pixels)
            if image.bgr.shape != photo.shape:
                raise ImageReadError("the file changed while its faces were being restored")
            photo.image = image
        return photo.image

    def _masks(self, photo: Photo) -> list[np.ndarray]:
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

    def _compose(self, photo: Photo) -> np.ndarray:
        """Background upscaled, faces pasted: BGR at the output size in the photo's sample type
        (uint8 or uint16); only each face's box is blended in float32."""
        opts = self.options
        image = self._reload(photo)
        h, w = photo.shape[:2]
        upscale = self.upscale_for(w, h)
        size = (w * upscale, h * upscale)
        if opts.aligned:
            with self.timer("paste"):
                return self._to_dtype(photo, cv2.resize(photo.restored[0], size, interpolation=cv2.INTER_AREA
                                                        if size[0] < FACE_SIZE else cv2.INTER_CUBIC).clip(0, 1))
        with self.timer("background"):
            if self._background is None or upscale == 1:  # pasted in place; the comparison needs a copy
                canvas = image.bgr.copy() if opts.save_comparison else image.bgr
            else:
                canvas = self._background(image.bgr, size)
        with self.timer("paste"):
            for face, mask, affine in zip(photo.restored, self._masks(photo), photo.affines):
                paste_face(canvas, face, mask, inverse_affine(affine, upscale))
            if opts.draw_box:
                draw_faces(canvas, photo.faces, upscale)
            return canvas

    def _encode(self, photo: Photo, out_dir: Path, root: Path) -> tuple[ImageResult, list[tuple[Path, bytes]]]:
        """Compose and encode the photo whose faces are restored (and its faces and comparison when
        asked): its result and the files to write, ``(path, encoded bytes)``."""
        opts = self.options
        faces = 0 if opts.aligned else len(photo.crops)
        if faces == 0 and not opts.aligned and opts.faces_only:
            return ImageResult(str(photo.source), "no-face", None, 0, "no face found; not written (--faces-only)"), []
        composed = self._compose(photo)
        ext = photo.output.suffix.lower()
        h, w = photo.shape[:2]
        with self.timer("write"):
            files = [(photo.output, encode_image(photo.output, like_input(photo.image, composed, photo.single_channel,
                                                                           ext),
                                                 metadata=photo.image.metadata.scaled(composed.shape[1] // w)))]
            if opts.save_faces:
                for i, (crop, face) in enumerate(zip(photo.crops, photo.restored)):
                    for folder, img in (("cropped_faces", crop), ("restored_faces", face)):
                        path = self.output_path(photo.source, root, out_dir, folder)
                        path = path.with_name(f"{path.stem}_{i:02d}.png")
                        files.append((path, encode_image(path, self._to_dtype(photo, img))))
            if opts.save_comparison:
                h, w = composed.shape[:2]
                before = cv2.resize(photo.image.bgr, (w, h), interpolation=cv2.INTER_NEAREST)
                path = self.output_path(photo.source, root, out_dir, "cmp")
                files.append((path, encode_image(path, np.hstack([before, composed]))))
        kept = self.upscale_for(w, h) != opts.upscale
        notes = "; ".join(filter(None, [format_notes(photo.image, ext), kept and (
            f"kept at its size: ×{opts.upscale} would be {w * opts.upscale}×{h * opts.upscale}, over --max-pixels "
            f"(give --upscale {opts.upscale} and a larger --max-pixels to enlarge it)")]))
        if opts.aligned:
            if w != h:  # an aligned face crop is square; this may be a whole photo
                notes = "; ".join(filter(None, [notes, f"not square ({w}×{h}): --aligned takes FFHQ-aligned face "
                                                       "crops; for a photo, leave it out and faces are detected"]))
            return ImageResult(str(photo.source), "restored", str(photo.output), 1, notes), files
        if faces == 0:
            message = "; ".join(filter(None, ["no face found; background upscaled only", notes]))
            return ImageResult(str(photo.source), "no-face", str(photo.output), 0, message), files
        return ImageResult(str(photo.source), "restored", str(photo.output), faces, notes), files

    def _write(self, files: list[tuple[Path, bytes]]) -> None:
        """Write encoded files atomically, all of a photo's or none: never over an existing file unless
        --overwrite (checked for every file before the first is written)."""
        with self.timer("write"):
            existing = [path for path, _ in files if path.exists()] if not self.options.overwrite else []
            if existing:
                raise FileExistsError(f"{existing[0]} exists (use --overwrite to replace it); nothing of this "
                                      "photo was written")
            for path, data in files:
                write_encoded(path, data, overwrite=self.options.overwrite)

    @staticmethod
    def _to_dtype(photo: Photo, bgr: np.ndarray) -> np.ndarray:
        """float32 [0, 1] → the input's sample type, colour as is (face crops, aligned outputs)."""
        return np.rint(bgr * photo.image.max_value).astype(photo.image.bgr.dtype)

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
