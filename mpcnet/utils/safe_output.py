"""Output safety: never write into the input or over an existing file unasked, and never leave a
partial file (writes go to a temporary file beside the target, then a rename).

Shared by every command that writes files (images, reports, checkpoints, model files).
"""
from __future__ import annotations

import errno
import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

PART_SUFFIX = ".part"  # temporary files of atomic writes: ".NAME.XXXX.part" beside the target

_UMASK = os.umask(0)
os.umask(_UMASK)


class UnsafeOutputError(Exception):
    """An output location that could harm the user's files."""


def check_output_location(inputs: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> None:
    """Refuse an output folder that a scan of the input (or of any of several inputs) would read
    back: the input folder itself or a folder inside it (and, for a recursive ``**`` glob, a folder
    inside the glob's root).

    A single photo or a flat glob may write anywhere, its own folder included: outputs go to their
    own files, and :func:`check_not_input` refuses the one that would replace an input.
    """
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise UnsafeOutputError(f"output folder {out_dir} exists and is a file, not a folder; choose a folder")
    made_in = next(p for p in [out, *out.parents] if p.exists())  # where the first folder will be made
    if not made_in.is_dir():
        raise UnsafeOutputError(f"output folder {out_dir} cannot be made: {made_in} is a file, not a folder")
    if not os.access(made_in, os.W_OK | os.X_OK):
        raise UnsafeOutputError(f"output folder {out_dir} cannot be written: no permission to write in {made_in}")
    for source in [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs:
        _check_not_inside(source, out)


def _check_not_inside(inputs: str | os.PathLike, out: Path) -> None:
    src = Path(inputs)
    if src.is_file():
        return
    if src.is_dir():
        root = src.resolve()
    elif "**" in str(inputs):
        root = Path(os.path.commonpath([Path(p).resolve().parent for p in glob.glob(str(inputs), recursive=True)]
                                       or [Path.cwd()]))
    else:
        return
    if out == root or root in out.parents:
        raise UnsafeOutputError(f"output folder {out} is inside the input folder {root}, so a rescan would "
                                "read the outputs back; choose a folder outside it")


def check_not_input(output: str | os.PathLike, source: str | os.PathLike) -> None:
    """Refuse to write ``output`` when it is the input file ``source`` itself."""
    output, source = Path(output), Path(source)
    if output.exists() and output.resolve() == source.resolve():
        raise UnsafeOutputError(f"{output} is the input file itself; choose another output folder")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """A temporary file beside ``path`` for the caller to fill (an encoded image, a streamed video);
    synced and renamed onto ``path`` when the block ends. An error (a full disk included, reported
    as such) or an interrupt removes it, so no partial file is ever left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            full = OSError(f"disk full: no space left to write {path.name}; nothing was written")
            full.errno = exc.errno
            raise full from exc
        raise


def remove_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that :func:`write_bytes_atomic` leaves only when its process is
    killed outright (``kill -9``, power loss) mid-write; returns what was removed."""
    stale = sorted(Path(folder).rglob(f".*{PART_SUFFIX}")) if Path(folder).is_dir() else []
    for part in stale:
        part.unlink(missing_ok=True)
    return stale
