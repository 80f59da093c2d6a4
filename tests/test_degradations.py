"""Eq. 1 degradation (mpcnet.data.eq1_degradation) on real CelebA-HQ / aligned faces."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mpcnet.data.eq1_degradation import (
    KERNELS,
    PRESETS,
    DegradationParams,
    apply_degradation,
    degrade,
    encode_jpeg,
    motion_kernel,
    sample_params,
    to_uint8,
)


def _load(path, size=256) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def face(hq_faces) -> np.ndarray:
    return _load(hq_faces[0])


@pytest.fixture(scope="module")
def faces(hq_faces) -> list[np.ndarray]:
    return [_load(p, 128) for p in hq_faces[:6]]


def test_same_seed_same_sample_bit_for_bit(face):
    lq1, p1 = degrade(face, np.random.default_rng(7))
    lq2, p2 = degrade(face, np.random.default_rng(7))
    assert p1 == p2
    assert np.array_equal(lq1, lq2)
    assert np.array_equal(apply_degradation(face, p1), lq1)
    lq3, p3 = degrade(face, np.random.default_rng(8))
    assert p3 != p1 and not np.array_equal(lq3, lq1)


def test_samples_cover_the_paper_ranges():
    rng = np.random.default_rng(0)
    ps = [sample_params(rng) for _ in range(2000)]
    assert {p.kernel for p in ps} == set(KERNELS)
    for p in ps:
        assert 4 <= p.scale <= 16 and 0 <= p.noise <= 25.5 and 10 <= p.jpeg_quality <= 65
        if p.kernel == "gaussian":
            assert 3 <= p.sigma <= 15
        elif p.kernel == "motion":
            assert 5 <= p.kernel_size <= 25 and 0 <= p.angle < 360
        else:
            assert 3 <= p.kernel_size <= 15
        if p.kernel == "median":
            assert p.kernel_size % 2 == 1
    scales = np.array([p.scale for p in ps])
    assert len(np.unique(scales)) > 1000  # real-valued r
    assert {p.jpeg_quality for p in ps} == set(range(10, 66))


def test_params_round_trip_dict_and_csv_strings():
    p = sample_params(np.random.default_rng(3))
    assert DegradationParams.from_dict(p.to_dict()) == p
    as_csv = {k: ("" if v is None else str(v)) for k, v in p.to_dict().items()}
    assert DegradationParams.from_dict(as_csv) == p
    q = DegradationParams.from_dict({**as_csv, "jpeg_quality": ""})
    assert q.jpeg_quality is None


def test_fixing_one_factor_keeps_the_other_draws():
    a = sample_params(np.random.default_rng(11), PRESETS["celeba-test"])
    b = sample_params(np.random.default_rng(11), PRESETS["table4-x8"])
    c = sample_params(np.random.default_rng(11), PRESETS["table6-noise15"])
    assert b.scale == 8.0 and c.noise == 15.0
    assert (b.kernel, b.noise, b.jpeg_quality, b.seed) == (a.kernel, a.noise, a.jpeg_quality, a.seed)
    assert (c.kernel, c.scale, c.jpeg_quality) == (a.kernel, a.scale, a.jpeg_quality)


def test_presets():
    rng = np.random.default_rng(0)
    m = sample_params(rng, PRESETS["table5-motion-45"])
    assert (m.kernel, m.kernel_size, m.angle, m.noise) == ("motion", 10, 45.0, 0.0)
    g = sample_params(rng, PRESETS["table5-gauss-6"])
    assert (g.kernel, g.sigma, g.noise) == ("gaussian", 6.0, 0.0)
    c = sample_params(rng, PRESETS["clean"])
    assert (c.kernel, c.scale, c.noise, c.jpeg_quality) == ("none", 1.0, 0.0, None)
    assert len([n for n in PRESETS if n.startswith("table5-")]) == 8
    mild = [sample_params(np.random.default_rng(i), PRESETS["gfpgan-train"]) for i in range(200)]
    assert {p.kernel for p in mild} == {"gaussian"} and all(0.1 <= p.sigma <= 10 and 1 <= p.scale <= 8
                                                            and p.noise <= 20 and 60 <= p.jpeg_quality <= 100
                                                            for p in mild)


def test_ranges_are_options():
    gfpgan_like = {"kernels": ["gaussian"], "gaussian_sigma": [0.1, 10], "scale": [0.8, 8],
                   "noise": [0, 20], "jpeg_quality": [60, 100]}
    ps = [sample_params(np.random.default_rng(i), gfpgan_like) for i in range(300)]
    assert {p.kernel for p in ps} == {"gaussian"}
    assert min(p.scale for p in ps) < 1.5 and max(p.jpeg_quality for p in ps) > 90
    assert all(0.1 <= p.sigma <= 10 and p.noise <= 20 for p in ps)
    with pytest.raises(ValueError, match="unknown degradation range"):
        sample_params(np.random.default_rng(0), {"jpeg": [10, 20]})
    none = sample_params(np.random.default_rng(0), {"noise_prob": 0.0, "jpeg_prob": 0.0, "blur_prob": 0.0})
    assert (none.kernel, none.noise, none.jpeg_quality) == ("none", 0.0, None)


@pytest.mark.parametrize("scale", [4.0, 6.5, 7.15, 16.0])
def test_output_size(face, scale):
    p = DegradationParams(kernel="gaussian", sigma=3.0, scale=scale, noise=5.0, jpeg_quality=40, seed=1)
    assert apply_degradation(face, p).shape == face.shape
    lq = apply_degradation(face, p, out_size=512)
    assert lq.shape == (512, 512, 3) and lq.dtype == np.float32
    assert 0.0 <= lq.min() and lq.max() <= 1.0


def test_real_valued_scale_changes_the_result(face):
    base = dict(kernel="none", noise=0.0, jpeg_quality=None)
    err = [np.abs(apply_degradation(face, DegradationParams(scale=s, **base)) - face).mean() for s in (4, 6.5, 7.15, 8)]
    assert err == sorted(err) and len(set(err)) == 4


def _directional_energy(img: np.ndarray, angle: float) -> tuple[float, float]:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
    gx, gy = cv2.Sobel(g, cv2.CV_64F, 1, 0), cv2.Sobel(g, cv2.CV_64F, 0, 1)
    c, s = math.cos(math.radians(angle)), -math.sin(math.radians(angle))  # image y points down
    along, across = gx * c + gy * s, -gx * s + gy * c
    m = (slice(20, -20), slice(20, -20))
    return float((along[m] ** 2).mean()), float((across[m] ** 2).mean())


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 90.0, 135.0])
def test_motion_blur_removes_energy_along_its_angle(face, angle):
    k = motion_kernel(15, angle)
    assert math.isclose(k.sum(), 1.0, rel_tol=1e-5)
    ys, xs = np.nonzero(k > 1e-3)
    w = k[ys, xs]
    cov = np.cov(np.stack([xs, -ys]), aweights=w)
    axis = np.degrees(np.arctan2(*np.linalg.eigh(cov)[1][:, -1][::-1])) % 180
    assert min(abs(axis - angle % 180), 180 - abs(axis - angle % 180)) < 3
    lq = apply_degradation(face, DegradationParams(kernel="motion", kernel_size=15, angle=angle))
    perp = apply_degradation(face, DegradationParams(kernel="motion", kernel_size=15, angle=angle + 90))
    a0, c0 = _directional_energy(face, angle)
    a1, c1 = _directional_energy(lq, angle)
    a2, _ = _directional_energy(perp, angle)
    assert a1 / a0 < 0.65 * (c1 / c0)  # detail along the motion goes, across it stays
    assert a1 < 0.65 * a2  # and the perpendicular blur keeps more of it


def test_median_and_average_differ_on_salt_noise(face):
    rng = np.random.default_rng(0)
    salty = face.copy()
    mask = rng.random(face.shape[:2]) < 0.05
    salty[mask] = 1.0
    med = apply_degradation(salty, DegradationParams(kernel="median", kernel_size=3))
    avg = apply_degradation(salty, DegradationParams(kernel="average", kernel_size=3))
    err_med, err_avg = np.abs(med - face).mean(), np.abs(avg - face).mean()
    assert err_med < 0.5 * err_avg
    assert med[mask].mean() < avg[mask].mean()  # the median drops isolated white pixels


@pytest.mark.parametrize("kind,key,values", [("gaussian", "sigma", (3.0, 6.0, 15.0)),
                                             ("average", "kernel_size", (3, 7, 15)),
                                             ("median", "kernel_size", (3, 7, 15))])
def test_stronger_blur_removes_more_detail(face, kind, key, values):
    def detail(img):
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())

    d = [detail(apply_degradation(face, DegradationParams(kernel=kind, **{key: v}))) for v in values]
    assert detail(face) > d[0] > d[1] > d[2]


def test_jpeg_quality_monotonic_in_file_size_and_error(faces):
    qualities = (10, 25, 40, 65, 90)
    for img in faces:
        u8 = to_uint8(img)
        sizes = [len(encode_jpeg(u8, q)) for q in qualities]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
        err = [np.abs(apply_degradation(img, DegradationParams(jpeg_quality=q)) - img).mean() for q in qualities]
        assert err == sorted(err, reverse=True)


@pytest.mark.parametrize("delta", [5.0, 15.0, 25.5])
def test_noise_std_matches_delta(face, delta):
    lq = apply_degradation(face, DegradationParams(noise=delta, seed=5))
    resid = (lq - face) * 255.0
    ok = np.all((face > 0.15) & (face < 0.85), axis=2)  # away from clipping
    assert ok.sum() > 10_000
    r = resid[ok]
    assert abs(r.std() - delta) < 0.03 * delta
    assert abs(r.mean()) < 0.05 * delta
    corr = np.corrcoef(r.T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.05  # independent per channel
