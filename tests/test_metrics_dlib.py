"""dlib identity angle and 68-landmark distance on real faces from ../shared/data: orderings that must hold."""
from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from mpcnet.metrics import MetricUnavailable, dlib_face

pytest.importorskip("dlib", reason="the 'identity' extra (dlib-bin) is not installed")


def load512(path):
    return cv2.resize(cv2.imread(str(path)), (512, 512), interpolation=cv2.INTER_AREA)


def bicubic_x4(img):
    small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def faces(hq_faces):
    """Four different people: clean CelebA-HQ faces, aligned."""
    return [load512(p) for p in hq_faces[:4]]


def test_identical_faces_give_zero_angle_unit_cosine_and_zero_lmd(faces):
    s = dlib_face.compare(faces[0], faces[0].copy())
    assert (s.deg_dlib, s.cos_dlib, s.l2_dlib, s.lmd_dlib68) == (0.0, pytest.approx(1.0, abs=1e-12), 0.0, 0.0)
    assert s.face_found


def test_light_degradation_is_small_and_a_different_person_much_larger(faces):
    for i, gt in enumerate(faces):
        light = dlib_face.compare(bicubic_x4(gt), gt)
        other = dlib_face.compare(faces[(i + 1) % len(faces)], gt)
        assert 0 < light.deg_dlib < 10 and 0 < light.lmd_dlib68 < 3, light
        assert other.deg_dlib > 20 and other.deg_dlib > 3 * light.deg_dlib, (light, other)
        assert other.lmd_dlib68 > 3 * light.lmd_dlib68, (light, other)
        assert other.cos_dlib < light.cos_dlib and other.l2_dlib > light.l2_dlib
        # the angle and the cosine describe the same two embeddings
        assert np.cos(np.radians(light.deg_dlib)) == pytest.approx(light.cos_dlib, abs=1e-9)


def test_library_functions_match_compare_and_take_other_sizes_and_grayscale(faces):
    gt, out = faces[1], cv2.GaussianBlur(faces[1], (0, 0), 2.0)
    s = dlib_face.compare(out, gt)
    assert dlib_face.identity_angle(out, gt) == s.deg_dlib
    assert dlib_face.landmark_distance(out, gt) == s.lmd_dlib68
    gray = cv2.cvtColor(gt, cv2.COLOR_BGR2GRAY)  # 2-D: stacked to the 3 channels the embedding needs
    assert dlib_face.identity_angle(gray, gray) == 0.0
    small = cv2.resize(gt, (256, 256), interpolation=cv2.INTER_AREA)  # found again at 512
    assert dlib_face.identity_angle(small, gt) < 5


def test_fixed_box_fits_aligned_faces_and_is_used_when_hog_finds_none(faces):
    left, top, right, bottom = dlib_face.FFHQ_BOX
    for gt in faces:
        box, found = dlib_face.face_box(np.ascontiguousarray(gt[..., ::-1]))
        assert found
        inter = max(0, min(right, box.right()) - max(left, box.left())) * max(0, min(bottom, box.bottom()) - max(top, box.top()))
        union = (right - left) * (bottom - top) + box.area() - inter
        assert inter / union > 0.6
    turned = cv2.rotate(faces[0], cv2.ROTATE_90_CLOCKWISE)  # no upright face for HOG
    s = dlib_face.compare(turned, turned.copy())
    assert not s.face_found and s.deg_dlib == 0.0 and s.lmd_dlib68 == 0.0


def test_orthogonal_and_opposite_embeddings():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 3.0])
    assert dlib_face.embedding_angle(a, b) == pytest.approx(90.0)
    assert dlib_face.embedding_angle(a, -a) == pytest.approx(180.0)


def test_missing_extra_is_one_clear_reason(monkeypatch):
    dlib_face._models.cache_clear()
    monkeypatch.setitem(sys.modules, "dlib", None)
    try:
        with pytest.raises(MetricUnavailable, match="identity' extra"):
            dlib_face.available()
    finally:
        dlib_face._models.cache_clear()
