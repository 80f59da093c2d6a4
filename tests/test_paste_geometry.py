"""Paste-back geometry as a round trip on a real photo: an unchanged aligned face pasted back at
×1/×2/×4 reproduces the resized photo; the soft mask blends as written."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mpcnet.restoration.align import FFHQ_TEMPLATE_512, align_face, face_affine, inverse_affine
from mpcnet.restoration.paste import ellipse_mask, paste_face

CROP = 128


@pytest.fixture(scope="module")
def photo(whole_photos) -> np.ndarray:
    img = cv2.imread(str(next(p for p in whole_photos if p.name == "03.jpg")), cv2.IMREAD_COLOR)
    return img[:240, :300].astype(np.float32) / 255.0


def placed_landmarks(scale: float, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """The FFHQ template (at CROP px) put into the photo by a known similarity."""
    t = FFHQ_TEMPLATE_512 * (CROP / 512) - CROP / 2
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * scale
    return (t @ rot.T + centre).astype(np.float32)


def test_alignment_inverts_the_placement():
    """The fitted affine maps the placed landmarks back onto the template (LMedS, exact data)."""
    lm = placed_landmarks(1.3, 17.0, (150.0, 110.0))
    affine = face_affine(lm, CROP)
    mapped = np.c_[lm, np.ones(5)] @ affine.T
    np.testing.assert_allclose(mapped, FFHQ_TEMPLATE_512 * (CROP / 512), atol=1e-3)
    assert math.hypot(*affine[:, 0]) == pytest.approx(1 / 1.3, rel=1e-4)


@pytest.mark.parametrize("upscale", [1, 2, 4])
def test_unchanged_face_pasted_back_reproduces_the_resized_photo(photo, upscale):
    h, w = photo.shape[:2]
    crop, affine = align_face(photo, placed_landmarks(0.5, 12.0, (160.0, 120.0)), CROP)
    inverse = inverse_affine(affine, upscale)
    canvas = np.zeros((h * upscale, w * upscale, 3), np.float32)
    paste_face(canvas, crop, np.ones((CROP, CROP), np.float32), inverse)
    covered = np.zeros_like(canvas)
    paste_face(covered, np.ones((CROP, CROP, 3), np.float32), np.ones((CROP, CROP), np.float32), inverse)
    inner = cv2.erode((covered[..., 0] > 0.999).astype(np.uint8), np.ones((3 * upscale, 3 * upscale), np.uint8)) > 0
    assert inner.sum() > 0.5 * (CROP * 0.5 * upscale) ** 2
    # pixel centres: input pixel i sits at upscale·i + (upscale − 1)/2, as cv2.resize places it
    expected = cv2.resize(photo, (w * upscale, h * upscale), interpolation=cv2.INTER_LINEAR)
    err = np.abs(canvas - expected)[inner].mean()
    shift = np.float32([[1, 0, 0.5 * upscale], [0, 1, 0]])  # the same face half an input pixel to the right
    shifted = cv2.warpAffine(expected, shift, expected.shape[1::-1],
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err_shifted = np.abs(shifted - expected)[inner].mean()
    # at ×1 the round trip resamples twice at the photo's own pixel size (a slight blur); above it
    # the expected image is itself interpolated, and a quarter-pixel error already doubles the error
    bound = 0.45 if upscale == 1 else 0.2
    assert err < bound * err_shifted, f"×{upscale}: {err:.4f} is not clearly below a half-pixel shift's {err_shifted:.4f}"
    assert not canvas[~(covered[..., 0] > 0)].any()  # nothing drawn outside the face's footprint


def test_soft_mask_blends_linearly_and_clips_at_the_border(photo):
    base = np.full((60, 80, 3), 0.2, np.float32)
    face = np.full((CROP, CROP, 3), 0.6, np.float32)
    shift_left = np.float32([[1, 0, -40], [0, 1, -30]])  # the crop's top-left quarter lands in the canvas
    canvas = base.copy()
    paste_face(canvas, face, np.full((CROP, CROP), 0.25, np.float32), shift_left)
    # 0.2 + 0.25·(0.6 − 0.2) wherever the crop covers: the whole canvas, first row and column included
    np.testing.assert_allclose(canvas, 0.3, atol=1e-6)
    for off in ([[1, 0, 500], [0, 1, 0]], [[1, 0, 80], [0, 1, 0]], [[1, 0, 0], [0, 1, 60]]):
        untouched = base.copy()  # entirely off the canvas (or just touching its edge): nothing changes
        paste_face(untouched, face, np.ones((CROP, CROP), np.float32), np.float32(off))
        assert np.array_equal(untouched, base)


def test_outside_the_photo_is_filled_grey():
    """A face at the photo's corner: the crop's part beyond the photo is BORDER_GRAY, not black."""
    white = np.ones((200, 200, 3), np.float32)
    crop, _ = align_face(white, placed_landmarks(1.0, 0.0, (20.0, 20.0)), CROP)
    assert np.allclose(crop[2, 2], (0.53, 0.52, 0.52)) and np.allclose(crop[-3, -3], 1.0)


@pytest.mark.parametrize("degrees", [30.0, 120.0, 210.0, 300.0])
def test_paste_matches_a_whole_canvas_warp_at_any_rotation(photo, degrees):
    """Only the face's bounding box is warped; the result equals warping face and mask over the
    whole canvas (each corner of the crop is the box's extreme at one of these rotations)."""
    h, w = photo.shape[:2]
    crop, affine = align_face(photo, placed_landmarks(0.6, degrees, (150.0, 120.0)), CROP)
    inverse = inverse_affine(affine, 2)
    mask = ellipse_mask(CROP)
    mask[:4], mask[-4:], mask[:, :4], mask[:, -4:] = 0, 0, 0, 0  # as parse_mask: nothing pasted from the crop's edge
    canvas = cv2.resize(photo, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    face = np.ascontiguousarray(crop[::-1])  # a different picture than the canvas holds there
    a = cv2.warpAffine(mask, inverse, (2 * w, 2 * h), flags=cv2.INTER_LINEAR)[..., None]
    f = cv2.warpAffine(face, inverse, (2 * w, 2 * h), flags=cv2.INTER_LINEAR)
    expected = canvas + a * (f - canvas)
    paste_face(canvas, face, mask, inverse)
    assert np.abs(canvas - expected).max() < 5e-3  # OpenCV interpolates at 1/32 px: offsets round differently
