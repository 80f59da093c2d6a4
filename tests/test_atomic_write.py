"""Atomic writes, checked where a plain ``open(path, 'wb').write`` would fail: the target is never
seen half-written, an error mid-write keeps the previous file, a full disk says so, and the bytes
are synced before the rename."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mpcnet.utils import safe_output
from mpcnet.utils.image_io import write_image
from mpcnet.utils.safe_output import PART_SUFFIX, atomic_path, remove_stale_parts, write_bytes_atomic


def test_target_is_untouched_until_the_block_ends(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.") and tmp.name.endswith(PART_SUFFIX)
        tmp.write_bytes(b"new bytes")
        assert target.read_bytes() == b"old"  # still the previous file while the new one is written
    assert target.read_bytes() == b"new bytes" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("error", [RuntimeError("encoder crashed"), KeyboardInterrupt()])
def test_an_error_mid_write_keeps_the_previous_file(tmp_path, error):
    target = tmp_path / "photo.png"
    target.write_bytes(b"previous")
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise error
    assert target.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_a_full_disk_is_reported_and_leaves_nothing(tmp_path, monkeypatch):
    real_open = open

    def full_disk_open(path, mode="r", *args, **kw):
        f = real_open(path, mode, *args, **kw)
        if "w" in mode and str(path).endswith(PART_SUFFIX):
            def write(data):
                raise OSError(errno.ENOSPC, "No space left on device")
            f.write = write
        return f

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(OSError, match="disk full.*a.png; nothing was written") as info:
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_bytes_are_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(safe_output.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(safe_output.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    write_bytes_atomic(tmp_path / "x.bin", b"data")
    assert events == ["fsync", "replace"]


@pytest.mark.parametrize("name", ["a.jpg", "b.JPEG", "c.webp", "d.bmp"])
def test_8_bit_formats_get_16_bit_images_scaled_down(tmp_path, name):
    write_image(tmp_path / name, np.full((8, 8, 3), 100 * 257 + 200, np.uint16))  # 100.8 on the 8-bit scale
    back = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and abs(int(back[4, 4, 0]) - 100) <= 1


def test_write_image_refuses_to_overwrite_and_keeps_16_bit_png(tmp_path):
    target = tmp_path / "a.png"
    write_image(target, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_image(target, np.zeros((8, 8, 3), np.uint8))
    png = write_image(tmp_path / "b.png", np.full((8, 8), 1000, np.uint16))
    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[0, 0] == 1000  # PNG keeps 16 bits


@pytest.mark.parametrize("name", ["q.jpg", "q.jpeg"])
def test_jpeg_quality_is_the_one_asked_for(tmp_path, aligned_faces, name):
    face = cv2.imread(str(aligned_faces[0]))
    for quality in (95, 40):
        path = write_image(tmp_path / f"{quality}{name}", face, jpeg_quality=quality)
        assert path.read_bytes() == cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
    default = write_image(tmp_path / f"default{name}", face)
    assert default.read_bytes() == (tmp_path / f"95{name}").read_bytes()  # 95 unless asked


def test_stale_parts_of_a_killed_write_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    stale = [tmp_path / f".a.png.x1{PART_SUFFIX}", tmp_path / "sub" / f".b.jpg.y2{PART_SUFFIX}"]
    for p in stale:
        p.write_bytes(b"partial")
    keep = tmp_path / "a.png"
    keep.write_bytes(b"whole")
    assert sorted(remove_stale_parts(tmp_path)) == sorted(stale)
    assert [p for p in Path(tmp_path).rglob("*") if p.is_file()] == [keep]
    assert remove_stale_parts(tmp_path / "missing") == []
