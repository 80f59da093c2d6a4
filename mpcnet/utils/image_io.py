"""Reading and writing images: finding inputs, reading them with clear errors (EXIF orientation,
alpha and 16 bits kept), and encoding outputs by extension (written through :mod:`mpcnet.utils.safe_output`).

Shared by ``degrade``, ``restore`` and ``eval``.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image as PILImage

from mpcnet.utils.image_metadata import Metadata
from mpcnet.utils.safe_output import write_bytes_atomic

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
DEFAULT_MAX_PIXELS = 64_000_000  # 8000×8000; larger is refused as a possible decompression bomb

# PIL is only used to read headers (size, EXIF orientation); our own limit applies instead of PIL's.
PILImage.MAX_IMAGE_PIXELS = None


class ImageReadError(Exception):
    """An input that cannot be used; the message is one line fit for a report."""


@dataclass
class LoadedImage:
    """An image as read from disk, colour in BGR (OpenCV order)."""

    bgr: np.ndarray  # H×W×3, uint8 or uint16
    alpha: np.ndarray | None  # H×W, same dtype, or None
    gray: bool  # the source had one channel (or three equal ones)
    path: Path
    mode: str | None = None  # the file's own pixel mode as PIL names it ("L", "RGBA", "I;16"…), if PIL reads it
    metadata: Metadata = field(default_factory=Metadata)  # ICC profile, EXIF, resolution: kept in outputs

    @property
    def bit_depth(self) -> int:
        return 16 if self.bgr.dtype == np.uint16 else 8

    @property
    def max_value(self) -> int:
        """The largest sample value of its bit depth (255 or 65535)."""
        return int(np.iinfo(self.bgr.dtype).max)

    def float_bgr(self) -> np.ndarray:
        """The colour as float32 BGR in [0, 1], whatever the bit depth."""
        return self.bgr.astype(np.float32) / self.max_value


def list_images(sources: str | os.PathLike | Sequence[str | os.PathLike],
                exts: tuple[str, ...] = IMAGE_EXTS) -> tuple[Path, list[Path]]:
    """Resolve a file, a folder (recursive, sorted; files ending in ``exts``, hidden files and folders
    left out) or a glob, or several of them (as a shell expands ``*.jpg``), to ``(root, files)``.

    ``root`` is the folder that output paths are made relative to: of several sources, the folder
    they share (their files then listed by absolute path, each once). A dangling symbolic link with an
    image extension is listed too, so that it is reported (:func:`read_image` says where it points).
    """
    if isinstance(sources, (str, os.PathLike)):
        return _list_one(sources, exts)
    listed = [_list_one(source, exts) for source in sources]
    if len(listed) == 1:
        return listed[0]
    root = Path(os.path.commonpath([os.path.abspath(r) for r, _ in listed]))
    return root, sorted({Path(os.path.abspath(f)) for _, files in listed for f in files})


def _list_one(source: str | os.PathLike, exts: tuple[str, ...]) -> tuple[Path, list[Path]]:
    src = str(source)
    path = Path(src)
    if path.is_file():
        return path.parent, [path]
    if path.is_dir():
        files = sorted(p for p in _walk(path) if (p.is_file() or p.is_symlink() and not p.exists())
                       and p.suffix.lower() in exts)
        return path, files
    matches = sorted(Path(p) for p in glob.glob(src, recursive=True) if Path(p).is_file())
    if matches:
        return Path(os.path.commonpath([p.parent for p in matches])), matches
    raise FileNotFoundError(f"no such file, folder or glob match: {src}")


def _walk(folder: Path) -> Iterator[Path]:
    """Every file under ``folder``, into symbolically linked folders too (each real folder once, so a
    link back up cannot loop), leaving out hidden files and folders (``._photo.jpg`` of macOS,
    ``.thumbs/``, ``.git/``)."""
    seen = set()
    for top, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = [f for f in folders if not f.startswith(".")]
        yield from (Path(top) / n for n in names if not n.startswith("."))


def _header(path: Path, with_metadata: bool = False) -> tuple[tuple[int, int] | None, str | None, int, Metadata]:
    """``(size, mode, EXIF orientation, metadata)`` from one header read (the metadata only when asked:
    :meth:`Metadata.of`); ``(None, None, 1, Metadata())`` where PIL cannot read the file."""
    try:
        with PILImage.open(path) as im:
            orient = int(im.getexif().get(0x0112, 1))  # before Metadata.of sets it to 1
            return im.size, im.mode, orient, Metadata.of(im) if with_metadata else Metadata()
    except Exception:  # noqa: BLE001 - PIL's errors vary; read_image gives the reason
        return None, None, 1, Metadata()


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(width, height)`` from the header alone (before EXIF orientation), or None when unreadable."""
    return _header(Path(path))[0]


def pixel_count(path: str | os.PathLike) -> int:
    """Width × height from the header alone (0 when unreadable): the weight of a photo when a batch
    is split across processes."""
    size = image_size(path)
    return size[0] * size[1] if size else 0


_ORIENT = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: lambda a: cv2.flip(cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE), 1),
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.flip(cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE), 1),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _truncated(path: Path) -> bool:
    """OpenCV's libjpeg decodes a truncated JPEG without error (grey fill), and its libpng prints a
    stray ``libpng error`` line for a truncated PNG; PIL notices both quietly. The JPEG decode is at
    1/8 scale (DCT scaling) and PNG's ``verify`` checks chunk CRCs without decoding, so both are cheap."""
    try:
        with PILImage.open(path) as im:
            if im.format == "PNG":
                im.verify()
                return False
            if im.format != "JPEG":
                return False
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except PILImage.UnidentifiedImageError:  # not an image to PIL: OpenCV decides below
        return False
    except (OSError, SyntaxError):  # PIL's PNG reader raises SyntaxError for a broken chunk
        return True
    return False


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               check_size: Callable[[int, int], None] | None = None) -> LoadedImage:
    """Read any supported image, honouring EXIF orientation, keeping alpha and 16-bit depth.

    Raises :class:`ImageReadError` with a one-line reason for empty, non-image, corrupt, tiny
    (under 2×2) or oversized (over ``max_pixels``) files. ``check_size(width, height)`` is called
    with the header's size before any pixel is decoded, to refuse what the caller cannot afford.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ImageReadError(f"broken symbolic link to {os.readlink(path)} (no such file)")
    if not path.is_file():
        raise ImageReadError("not a file")
    if path.stat().st_size == 0:
        raise ImageReadError("empty file (0 bytes)")
    size, mode, orient, metadata = _header(path, with_metadata=True)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageReadError(f"{size[0]}×{size[1]} is over the max_pixels limit of {max_pixels} "
                             "(raise max_pixels to allow it)")
    if size is not None and check_size is not None:
        check_size(*size)
    if _truncated(path):
        raise ImageReadError("corrupt or truncated image data")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        reason = "not an image or corrupt" if size is None else "corrupt or truncated image data"
        raise ImageReadError(reason)
    if raw.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"unsupported sample type {raw.dtype}")
    if raw.shape[0] < 2 or raw.shape[1] < 2:
        raise ImageReadError(f"too small ({raw.shape[1]}×{raw.shape[0]})")
    if orient in _ORIENT:
        raw = _ORIENT[orient](raw)
    alpha = None
    if raw.ndim == 2:
        bgr, gray = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR), True
    elif raw.shape[2] == 4:
        bgr, alpha = np.ascontiguousarray(raw[..., :3]), np.ascontiguousarray(raw[..., 3])
        gray = is_gray(bgr)
    else:
        bgr, gray = raw[..., :3], is_gray(raw)
    return LoadedImage(bgr=bgr, alpha=alpha, gray=gray, path=path, mode=mode, metadata=metadata)


def is_gray(bgr: np.ndarray) -> bool:
    """True when all three channels are equal (a grayscale photo stored as RGB)."""
    return bool(np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 1], bgr[..., 2]))


def as_8bit(image: np.ndarray) -> np.ndarray:
    """``image`` as uint8: a uint16 sample v becomes the nearest 8-bit level, round(v / 257) (the same
    place on the 0–1 scale, 65535 / 255 = 257), so 8 bits scaled up by ×257 come back exactly and every
    output is within half an 8-bit step of the input. Truncation (``v >> 8`` or ``v // 257``) would
    darken by half a step on average. Done in integers: round(v / 257) = (v + 128) // 257 for integer v.
    A uint8 image is returned as it is."""
    if image.dtype == np.uint8:
        return image
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False,
                jpeg_quality: int = 95) -> Path:
    """Encode ``image`` (:func:`encode_image`) and write it atomically (:func:`write_encoded`)."""
    return write_encoded(path, encode_image(path, image, jpeg_quality), overwrite)


def encode_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 95,
                 metadata: Metadata | None = None) -> bytes:
    """``image`` (BGR/BGRA/gray, uint8 or uint16) encoded by ``path``'s extension, with ``metadata``
    written in (JPEG and PNG)."""
    path = Path(path)
    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext in (".jpg", ".jpeg") else []
    if ext in (".jpg", ".jpeg", ".webp", ".bmp") and image.dtype == np.uint16:
        image = as_8bit(image)  # these formats hold 8 bits per sample
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OSError(f"could not encode {path.name}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    return metadata.embed(buf.tobytes(), ext, channels) if metadata else buf.tobytes()


def write_encoded(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write an encoded image atomically (temporary file in the same folder, then rename). Never
    replaces an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use --overwrite to replace it)")
    write_bytes_atomic(path, data)
    return path
