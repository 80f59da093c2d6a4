"""What a photo carries besides its pixels, kept in its restored copy: the ICC colour profile (without
it a wide-gamut photo is shown as sRGB, with shifted colours), EXIF (date, camera, description) and the
print resolution. Written into JPEG and PNG outputs as their own segments and chunks, after OpenCV
encodes the pixels; other formats are written without it."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from PIL import Image as PILImage

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
ORIENTATION, X_RESOLUTION, Y_RESOLUTION = 0x0112, 0x011A, 0x011B
PIXEL_X_DIMENSION, PIXEL_Y_DIMENSION = 0xA002, 0xA003
_EXIF_HEADER = b"Exif\x00\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"
_SEGMENT_MAX = 65533  # a JPEG segment's payload, its 2 length bytes excluded


@dataclass
class Metadata:
    icc: bytes | None = None
    exif: bytes | None = None  # TIFF-structured, with the "Exif\0\0" header; orientation 1 (pixels are upright)
    dpi: tuple[float, float] | None = None

    @classmethod
    def of(cls, im: PILImage.Image) -> Metadata:
        """The profile, EXIF and resolution of an image PIL has opened, as far as PIL reads them
        (nothing where it cannot). EXIF keeps its Exif and GPS sub-IFDs; the orientation is set to 1, as
        ``read_image`` turns the pixels upright, and the pixel dimensions and thumbnail, which would be
        stale, are left out."""
        try:
            exif, icc, dpi = im.getexif(), im.info.get("icc_profile") or None, im.info.get("dpi")
            if len(exif):
                exif.get_ifd(GPS_IFD)  # loaded, so that tobytes() writes them
                sub = exif.get_ifd(EXIF_IFD)
                sub.pop(PIXEL_X_DIMENSION, None)
                sub.pop(PIXEL_Y_DIMENSION, None)
                if ORIENTATION in exif:
                    exif[ORIENTATION] = 1
            return cls(icc, exif.tobytes() if len(exif) else None,
                       (float(dpi[0]), float(dpi[1])) if dpi and min(dpi) > 0 else None)
        except Exception:  # noqa: BLE001 - PIL's errors vary; a file without readable metadata has none
            return cls()

    def scaled(self, factor: int) -> Metadata:
        """The metadata of the photo enlarged ``factor`` times: the resolution multiplied, so that it
        prints at the same size."""
        if factor == 1 or (self.dpi is None and self.exif is None):
            return self
        exif = self.exif
        if exif is not None:
            table = PILImage.Exif()
            table.load(exif)
            table.get_ifd(EXIF_IFD)
            table.get_ifd(GPS_IFD)
            for tag in (X_RESOLUTION, Y_RESOLUTION):
                if tag in table:
                    table[tag] = float(table[tag]) * factor
            exif = table.tobytes()
        dpi = (self.dpi[0] * factor, self.dpi[1] * factor) if self.dpi else None
        return Metadata(self.icc, exif, dpi)

    def embed(self, data: bytes, ext: str, channels: int) -> bytes:
        """``data``, a JPEG or PNG file of ``channels`` channels encoded by OpenCV, with this metadata
        written in (the profile only where its colour space, gray or RGB, is the file's); other
        formats unchanged."""
        space = self.icc[16:20] if self.icc else None
        own = self if space == (b"GRAY" if channels < 3 else b"RGB ") else Metadata(None, self.exif, self.dpi)
        if ext in (".jpg", ".jpeg"):
            return own._into_jpeg(data)
        if ext == ".png":
            return own._into_png(data)
        return data

    def _into_jpeg(self, data: bytes) -> bytes:
        if data[:4] != b"\xff\xd8\xff\xe0" or data[6:11] != b"JFIF\x00":  # OpenCV writes SOI, then JFIF
            return data
        app0_end = 4 + struct.unpack(">H", data[4:6])[0]
        app0 = bytearray(data[4:app0_end])
        if self.dpi:  # units 1 (dots per inch), then the two densities
            app0[9:14] = struct.pack(">BHH", 1, *(min(65535, round(d)) for d in self.dpi))
        segments = []
        if self.exif and self.exif.startswith(_EXIF_HEADER) and len(self.exif) <= _SEGMENT_MAX - 2:
            segments.append(_segment(0xE1, self.exif))
        if self.icc:
            size = _SEGMENT_MAX - 2 - len(_ICC_HEADER) - 2
            chunks = [self.icc[i:i + size] for i in range(0, len(self.icc), size)]
            segments += [_segment(0xE2, _ICC_HEADER + bytes([n + 1, len(chunks)]) + chunk)
                         for n, chunk in enumerate(chunks)]
        return b"\xff\xd8\xff\xe0" + bytes(app0) + b"".join(segments) + data[app0_end:]

    def _into_png(self, data: bytes) -> bytes:
        ihdr_end = 8 + 25  # signature, then IHDR (length, type, 13 bytes, CRC)
        if data[12:16] != b"IHDR":
            return data
        chunks = []
        if self.icc:
            chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(self.icc)))
        if self.dpi:
            chunks.append(_chunk(b"pHYs", struct.pack(">IIB", *(round(d / 0.0254) for d in self.dpi), 1)))
        if self.exif and self.exif.startswith(_EXIF_HEADER):
            chunks.append(_chunk(b"eXIf", self.exif[len(_EXIF_HEADER):]))
        return data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
