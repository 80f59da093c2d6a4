"""The order of ``mpcnet restore``'s work on a batch of photos: three threads, so that reading and
detecting the next photo, and pasting and writing the finished ones, overlap the network (PyTorch,
OpenCV and the image codecs release the GIL; issue 19):

* a reader thread reads, detects and aligns the next photo, one photo ahead;
* the calling thread runs the network on the waiting faces: a full ``--batch-size`` batch, or the
  faces there are when the next photo is not ready yet (the network would otherwise idle). With
  ``fixed_batch`` only full batches run (the last one padded), so that outputs never depend on
  timing;
* a writer thread pastes and encodes each photo whose faces are restored, in order; the calling
  thread writes the encoded files (atomically, so that Ctrl-C leaves no partial file).

At most :data:`PHOTOS_ALIVE` decoded photos are alive, whatever ``--batch-size``: each decode takes
a slot, given back when its pixels go. A photo whose faces wait behind the next photo's is let go
and read again by the writer. Results are recorded on the calling thread; a bad file fails alone."""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import cv2

from mpcnet.restoration.results import ImageResult, StageTimer, Summary
from mpcnet.restoration.stages import Photo, PhotoStages
from mpcnet.utils.image_io import ImageReadError
from mpcnet.utils.safe_output import UnsafeOutputError, check_not_input

PHOTOS_ALIVE = 2  # the one being read and detected, the one being pasted and encoded


class _Stopped(Exception):
    """The run stopped (Ctrl-C, an error) while a thread waited for a slot."""


class _Slots:
    """At most ``n`` decoded photos: a slot is taken before a decode and given back when the
    photo's pixels go."""

    def __init__(self, n: int):
        self._free = threading.Semaphore(n)
        self.stopped = threading.Event()

    def take(self) -> None:
        while not self._free.acquire(timeout=0.05):
            if self.stopped.is_set():
                raise _Stopped

    def release(self) -> None:
        self._free.release()

    def let_go(self, photo: Photo) -> None:
        if photo.image is not None:
            photo.image = None
            self._free.release()


def _failed(source: Path, exc: BaseException) -> ImageResult:
    return ImageResult(str(source), "failed", None, 0, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


class RestorePipeline(PhotoStages):
    """Restores whole photos (or aligned faces) with a :class:`FaceRestorer` and a detector, the
    stages of :class:`PhotoStages` scheduled as the module says."""

    def _admitted(self, files: list[Path], root: Path, out_dir: Path,
                  record: Callable[[ImageResult], None]) -> Iterator[tuple[Path, Path]]:
        """``(source, output)`` of each file to restore; the others (same output as an earlier
        file, output that would replace an input, output that exists) are recorded."""
        opts = self.options
        claimed: dict[Path, Path] = {}  # output → the input that writes it in this run
        for source in files:
            output = self.output_path(source, root, out_dir)
            if output in claimed:
                record(ImageResult(str(source), "failed", None, 0, f"same output name as {claimed[output]} "
                                   "(give --ext auto, or rename one)"))
                continue
            claimed[output] = source
            if opts.save_faces:  # its face crops are named NAME_00.png, … whatever the input's extension
                crops = self.output_path(source, root, out_dir, "cropped_faces").with_suffix("")
                if crops in claimed:
                    record(ImageResult(str(source), "failed", None, 0, f"its face crops would take the names of "
                                       f"{claimed[crops]}'s ({crops.name}_NN.png); rename one"))
                    continue
                claimed[crops] = source
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
            yield source, output

    def _read(self, source: Path, output: Path, slots: _Slots | None) -> Photo | ImageResult:
        """The reader thread's work: the photo read, detected and aligned, or its failure."""
        try:
            if slots:
                slots.take()
            try:
                return self._prepare(source, output)
            except BaseException:
                if slots:
                    slots.release()
                raise
        except _Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            return _failed(source, exc)

    def _compose_encoded(self, photo: Photo, out_dir: Path, root: Path,
                         slots: _Slots | None) -> tuple[ImageResult, list[tuple[Path, bytes]]]:
        """The writer thread's work: the photo (read again if it was let go) pasted and encoded, or
        its failure."""
        try:
            if photo.image is None and (photo.crops or not self.options.faces_only):
                slots.take()
                try:
                    self._reload(photo)
                except BaseException:
                    slots.release()
                    raise
            return self._encode(photo, out_dir, root)
        except (OSError, ValueError, ImageReadError, cv2.error) as exc:
            return _failed(photo.source, exc), []
        except MemoryError:  # the last resort behind _check_size's estimate
            h, w = photo.shape[:2]
            upscale = self.upscale_for(w, h)
            return ImageResult(str(photo.source), "failed", None, 0, f"out of memory composing the "
                               f"{w * upscale}×{h * upscale} output (lower --upscale)"), []
        finally:
            if slots:
                slots.let_go(photo)

    def run(self, files: list[Path], root: Path, out_dir: Path,
            on_result: Callable[[ImageResult], None] | None = None) -> Summary:
        """Restore ``files`` (under ``root``) into ``out_dir/restored_imgs``; never stops on a bad
        file: each gets an :class:`ImageResult`. ``on_result`` is called (on this thread) as each
        photo finishes. A file whose output would replace an input fails; the caller checks
        ``out_dir`` against the input folder first (:func:`~mpcnet.utils.safe_output.check_output_location`).
        Ctrl-C (or a SIGTERM turned into KeyboardInterrupt) stops the batch: the summary holds the
        files that finished, marked ``interrupted``; writes are atomic, so no partial file is left."""
        self.timer = StageTimer()
        summary = Summary(timer=self.timer)
        start = time.perf_counter()
        slots = None if self.options.aligned else _Slots(PHOTOS_ALIVE)  # aligned faces are small and kept
        pending: deque[Photo] = deque()  # photos whose faces wait for the network, in order
        queue: deque = deque()  # (photo, face index) waiting for the network
        writes: deque[tuple[Future, bool]] = deque()  # the writer's work in order, and whether it reads again

        def record(result: ImageResult) -> None:
            summary.results.append(result)
            if on_result:
                on_result(result)

        def collect(wait: bool) -> None:
            """Write what the writer thread encoded, in order, here: Ctrl-C then stops a write
            midway and its temporary file goes (the writer thread could not be stopped)."""
            while writes and (wait or writes[0][0].done()):
                result, encoded = writes.popleft()[0].result()
                try:
                    self._write(encoded)
                except OSError as exc:
                    result = _failed(Path(result.source), exc)
                record(result)

        def hand_over() -> None:
            """Photos whose faces are all restored go to the writer, in order; one keeps its pixels
            unless a photo before it is to be read again (which needs the slot)."""
            reread = any(again and not future.done() for future, again in writes)
            while pending and pending[0].ready:
                photo = pending.popleft()
                if photo.error:
                    if slots:
                        slots.let_go(photo)
                    record(ImageResult(str(photo.source), "failed", None, 0, photo.error))
                    continue
                if slots and (reread or photo.image is None):
                    slots.let_go(photo)
                    reread = True
                writes.append((writer.submit(self._compose_encoded, photo, out_dir, root, slots), photo.image is None))
            for waiting in pending if slots else ():  # their faces wait behind the next photo's
                slots.let_go(waiting)

        reader = ThreadPoolExecutor(1, thread_name_prefix="mpcnet-read")
        writer = ThreadPoolExecutor(1, thread_name_prefix="mpcnet-write")
        admitted = self._admitted(files, root, out_dir, record)

        def read_next() -> Future | None:
            job = next(admitted, None)
            return None if job is None else reader.submit(self._read, *job, slots)

        try:
            ahead = read_next()
            while ahead is not None:
                photo = ahead.result()
                ahead = read_next()
                if isinstance(photo, ImageResult):
                    record(photo)
                else:
                    pending.append(photo)
                    queue.extend((photo, i) for i in range(len(photo.crops)))
                while len(queue) >= self.restorer.batch_size or (queue and not self.restorer.fixed_batch and (
                        ahead is None or not ahead.done())):
                    self._run_network(queue)
                hand_over()
                collect(wait=False)
            while queue:
                self._run_network(queue)
            hand_over()
            collect(wait=True)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            if slots:
                slots.stopped.set()
            for executor in (reader, writer):
                executor.shutdown(wait=True, cancel_futures=True)
        order = {str(source): i for i, source in enumerate(files)}
        summary.results.sort(key=lambda r: order[r.source])  # reported as finished, listed as given
        summary.seconds = time.perf_counter() - start
        return summary
