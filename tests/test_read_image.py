"""read_image on real photos and on files broken in known ways: the pixels as written (no stray EXIF
turn), the exact one-line reason for each bad file, and the size limits at their boundary."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mpcnet.utils.image_io import ImageReadError, is_gray, read_image
from tests.conftest import DATA

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.resize(cv2.imread(str(WHOLE / "03.jpg")), (120, 90), interpolation=cv2.INTER_AREA)


def test_pixels_mode_and_path_as_written(tmp_path, photo):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), photo)
    img = read_image(path)
    assert np.array_equal(img.bgr, photo) and img.alpha is None and not img.gray
    assert (img.path, img.mode) == (path, "RGB")
    rgba = np.dstack([photo, np.full(photo.shape[:2], 77, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    img = read_image(tmp_path / "a.png")
    assert np.array_equal(img.bgr, photo) and (img.alpha == 77).all() and img.mode == "RGBA"


def test_gray_means_all_three_channels_equal(photo):
    g = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert is_gray(np.dstack([g, g, g]))
    for odd in range(3):  # one channel different, in each position
        channels = [g, g, g]
        channels[odd] = 255 - g
        assert not is_gray(np.dstack(channels)), odd


@pytest.mark.parametrize("make,reason", [
    (lambda p, src: p.write_bytes(b""), "^empty file \\(0 bytes\\)$"),
    (lambda p, src: p.write_text("hello"), "^not an image or corrupt$"),
    (lambda p, src: p.write_bytes(src.read_bytes()[:1500]), "^corrupt or truncated image data$"),
    (lambda p, src: p.mkdir(), "^not a file$"),
    (lambda p, src: p.symlink_to(p.parent / "gone.jpg"), "^broken symbolic link to .*gone.jpg \\(no such file\\)$"),
])
def test_each_bad_file_has_its_reason(tmp_path, make, reason):
    make(tmp_path / "bad.jpg", WHOLE / "03.jpg")
    with pytest.raises(ImageReadError, match=reason):
        read_image(tmp_path / "bad.jpg")


def test_truncated_png_is_refused(tmp_path, photo):
    cv2.imwrite(str(tmp_path / "whole.png"), photo)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match="^corrupt or truncated image data$"):
        read_image(tmp_path / "cut.png")


def test_size_limits_at_their_boundary(tmp_path, photo):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), photo)  # 120×90 = 10,800 pixels
    assert read_image(path, max_pixels=10_800).bgr.shape == (90, 120, 3)
    with pytest.raises(ImageReadError, match=r"^120×90 is over the max_pixels limit of 10799 \(raise max_pixels"):
        read_image(path, max_pixels=10_799)
    seen = []
    read_image(path, check_size=lambda w, h: seen.append((w, h)))
    assert seen == [(120, 90)]
    for w, h in ((1, 5), (5, 1)):
        cv2.imwrite(str(tmp_path / f"{w}x{h}.png"), photo[:h, :w])
        with pytest.raises(ImageReadError, match=f"^too small \\({w}×{h}\\)$"):
            read_image(tmp_path / f"{w}x{h}.png")
    cv2.imwrite(str(tmp_path / "2x2.png"), photo[:2, :2])
    assert read_image(tmp_path / "2x2.png").bgr.shape == (2, 2, 3)
