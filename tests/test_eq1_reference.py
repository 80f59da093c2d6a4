"""Eq. 1 end to end against a reference chain written here, x = JPEG_q[(y ⊛ k)↓r + n_δ] then ↑ to
the output size, on a real CelebA-HQ face: stage order, kernels, sizes, noise draw and rounding."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy.ndimage import median_filter

from mpcnet.data.eq1_degradation import DegradationParams, apply_degradation, motion_kernel, to_uint8

SIZE = 96


@pytest.fixture(scope="module")
def face(hq_faces) -> np.ndarray:
    img = cv2.imread(str(hq_faces[2]), cv2.IMREAD_COLOR)
    return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def gaussian_kernel(sigma: float) -> np.ndarray:
    """exp(−x²/2σ²), normalised, over ±4σ (OpenCV's float support: size round(8σ + 1), odd)."""
    size = int(math.floor(sigma * 8 + 1 + 0.5)) | 1
    x = np.arange(size) - (size - 1) / 2
    k = np.exp(-x ** 2 / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)


def reference_blur(y: np.ndarray, p: DegradationParams) -> np.ndarray:
    """y ⊛ k, each kernel built from its definition (reflect-101 borders)."""
    if p.kernel == "gaussian":
        k = gaussian_kernel(p.sigma)
        return cv2.sepFilter2D(y, -1, k, k, borderType=cv2.BORDER_REFLECT_101)
    if p.kernel == "average":
        box = np.full((p.kernel_size, p.kernel_size), 1.0 / p.kernel_size ** 2, np.float32)
        return cv2.filter2D(y, -1, box, borderType=cv2.BORDER_REFLECT_101)
    if p.kernel == "median":  # a rank filter on the 8-bit samples, edges repeated
        u8 = np.floor(y * 255 + 0.5).clip(0, 255).astype(np.uint8)
        return median_filter(u8, size=(p.kernel_size, p.kernel_size, 1), mode="nearest").astype(np.float32) / 255
    if p.kernel == "motion":
        return cv2.filter2D(y, -1, motion_kernel(p.kernel_size, p.angle), borderType=cv2.BORDER_REFLECT_101)
    return y


def reference_eq1(y: np.ndarray, p: DegradationParams, out: int) -> np.ndarray:
    x = reference_blur(y, p)
    small = max(1, int(math.floor(SIZE / p.scale + 0.5)))
    x = cv2.resize(x, (small, small), interpolation=cv2.INTER_CUBIC)               # ↓r, bicubic
    x = x + np.random.default_rng(p.seed).standard_normal(x.shape, dtype=np.float32) * np.float32(p.noise / 255)
    if p.jpeg_quality is not None:                                                  # JPEG_q of 8-bit samples
        u8 = np.floor(x * 255 + 0.5).clip(0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality])
        x = cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255
    x = cv2.resize(x, (out, out), interpolation=cv2.INTER_CUBIC)                   # back up, bicubic
    return np.clip(x, 0, 1)


CASES = [
    DegradationParams(kernel="gaussian", sigma=3.7, scale=4.0, noise=12.0, jpeg_quality=30, seed=5),
    DegradationParams(kernel="average", kernel_size=5, scale=6.5, noise=20.0, jpeg_quality=60, seed=6),
    DegradationParams(kernel="median", kernel_size=7, scale=7.15, noise=3.0, jpeg_quality=15, seed=7),
    DegradationParams(kernel="motion", kernel_size=11, angle=33.0, scale=5.0, noise=8.0, jpeg_quality=None, seed=8),
]


@pytest.mark.parametrize("p", CASES, ids=lambda p: p.kernel)
@pytest.mark.parametrize("out", [SIZE, 128])
def test_eq1_matches_the_reference_chain(face, p, out):
    got = apply_degradation(face, p, out_size=out)
    want = reference_eq1(face, p, out)
    assert got.shape == want.shape == (out, out, 3) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4, f"max |diff| {np.abs(got - want).max():.2e}"


@pytest.mark.parametrize("p", CASES[:2], ids=lambda p: p.kernel)
def test_reordered_stages_give_another_image(face, p):
    """The reference chain is sensitive to the order: noise added before ↓r is averaged away."""
    want = reference_eq1(face, p, SIZE)
    blurred = reference_blur(face, p)
    noisy_first = blurred + np.random.default_rng(p.seed).standard_normal(blurred.shape, dtype=np.float32) * (p.noise / 255)
    swapped = reference_eq1(noisy_first, DegradationParams(kernel="none", scale=p.scale, jpeg_quality=p.jpeg_quality), SIZE)
    assert np.abs(swapped - want).mean() > 0.01
    assert np.abs(apply_degradation(face, p) - want).max() < 1e-4


def test_each_stage_alone(face):
    """One stage at a time: blur keeps the size, ↓r rounds the size, noise is N(0, δ/255) with the
    seed's draw, JPEG is the standard codec at that quality."""
    g = DegradationParams(kernel="gaussian", sigma=5.0)
    assert np.abs(apply_degradation(face, g) - reference_blur(face, g)).max() < 1e-5
    # ↓6.5 of 96 px is 15 px (14.77 rounded, not truncated to 14): check the size through the up-sampling
    down = DegradationParams(scale=6.5)
    small = cv2.resize(face, (15, 15), interpolation=cv2.INTER_CUBIC)
    expected = np.clip(cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.abs(apply_degradation(face, down) - expected).max() < 1e-5
    n = DegradationParams(noise=10.0, seed=3)
    noise = np.random.default_rng(3).standard_normal(face.shape, dtype=np.float32) * np.float32(10 / 255)
    assert np.abs(apply_degradation(face, n) - np.clip(face + noise, 0, 1)).max() < 1e-6
    q = DegradationParams(jpeg_quality=20)
    ok, buf = cv2.imencode(".jpg", np.floor(face * 255 + 0.5).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 20])
    assert np.array_equal(apply_degradation(face, q), cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255)


def test_to_uint8_rounds_to_nearest():
    k = np.arange(0, 255, dtype=np.float32)
    assert np.array_equal(to_uint8((k + 0.45) / 255), k.astype(np.uint8))
    assert np.array_equal(to_uint8((k + 0.55) / 255), (k + 1).astype(np.uint8))
    assert to_uint8(np.array([-0.2, 1.3], np.float32)).tolist() == [0, 255]


@pytest.mark.parametrize("length,angle", [(9, 0.0), (10, 90.0), (15, 45.0)])
def test_motion_kernel_is_a_centred_line(length, angle):
    """Sums to 1, centred, its weight along the line at ``angle`` (counter-clockwise, y down),
    spread over ``length`` pixels."""
    k = motion_kernel(length, angle).astype(np.float64)
    assert k.sum() == pytest.approx(1.0, abs=1e-6) and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    c = (k.shape[0] - 1) / 2
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]]
    u, v = xs - c, c - ys  # x right, y up
    assert (k * u).sum() == pytest.approx(0, abs=1e-6) and (k * v).sum() == pytest.approx(0, abs=1e-6)
    rad = math.radians(angle)
    along = u * math.cos(rad) + v * math.sin(rad)
    across = -u * math.sin(rad) + v * math.cos(rad)
    var_along = (k * along ** 2).sum()
    assert (k * across ** 2).sum() < 0.3
    # a uniform segment between the centres of the end pixels (length L − 1) has variance (L − 1)²/12
    assert var_along == pytest.approx((length - 1) ** 2 / 12, rel=0.15)


def test_params_from_csv_strings_have_the_right_types():
    """A manifest row (all strings) gives ints for sizes, seeds and quality, None for no JPEG."""
    row = {"kernel": "median", "kernel_size": "7", "sigma": "0.0", "angle": "0.0", "scale": "6.5", "noise": "3.0",
           "jpeg_quality": "None", "seed": "12", "file": "a.png"}
    p = DegradationParams.from_dict(row)
    assert (type(p.kernel_size), type(p.seed), p.jpeg_quality, p.scale) == (int, int, None, 6.5)
    assert DegradationParams.from_dict({**row, "jpeg_quality": "40"}).jpeg_quality == 40
    partial = DegradationParams.from_dict({"scale": "4", "seed": "9"})  # missing keys keep their defaults
    assert (partial.kernel, partial.scale, partial.seed) == ("none", 4.0, 9)


def test_presets_fix_their_factor_and_leave_the_paper_ranges_alone():
    from mpcnet.data.eq1_degradation import PAPER_RANGES, _fixed

    before = {k: (list(v) if isinstance(v, list) else v) for k, v in PAPER_RANGES.items()}
    fixed = _fixed(PAPER_RANGES, scale=8.0)
    assert fixed["scale"] == 8.0 and {k: v for k, v in fixed.items() if k != "scale"} == \
        {k: v for k, v in before.items() if k != "scale"}
    fixed["kernels"].append("gaussian")  # a deep copy: changing a preset's lists leaves the paper's
    assert PAPER_RANGES == before


@pytest.mark.parametrize("p", [DegradationParams(scale=2.0), DegradationParams(scale=float(SIZE)),
                               DegradationParams(noise=0.6, seed=2)], ids=["x2", "to-1-px", "faint-noise"])
def test_small_factors_still_apply(face, p):
    """↓2, a scale that leaves one pixel, and noise under 1 grey level are applied like any other."""
    assert np.abs(apply_degradation(face, p, out_size=SIZE) - reference_eq1(face, p, SIZE)).max() < 1e-5
    assert np.abs(apply_degradation(face, p) - face).max() > 1e-3


def test_non_square_images_keep_their_shape(face):
    wide = np.ascontiguousarray(face[:64])  # 96 wide, 64 high
    p = DegradationParams(kernel="gaussian", sigma=3.0, scale=4.0, noise=5.0, jpeg_quality=50, seed=1)
    assert apply_degradation(wide, p).shape == (64, 96, 3)
    assert apply_degradation(wide, p, out_size=128).shape == (128, 128, 3)


def reference_sample(rng: np.random.Generator, r: dict) -> DegradationParams:
    """The documented draw order (a manifest's seed must keep giving the same parameters): 12 uniforms
    u, then the noise seed; u0 kernel (gated by u1 < blur_prob), u2 σ, u3 average size, u4 median size
    (odd), u5 motion length, u6 angle, u7 r, u8 δ (gated by u9), u10 q (gated by u11)."""
    u = rng.random(12)
    seed = int(rng.integers(0, 2**31 - 1))

    def real(spec, x):
        return spec[0] + (spec[1] - spec[0]) * x

    def pick(values, x):
        return values[min(int(x * len(values)), len(values) - 1)]

    names = r["kernels"]
    kernel = pick(names, u[0]) if u[1] < r["blur_prob"] else "none"
    p = DegradationParams(kernel=kernel, scale=real(r["scale"], u[7]), seed=seed)
    if kernel == "gaussian":
        p.sigma = real(r["gaussian_sigma"], u[2])
    elif kernel == "average":
        p.kernel_size = pick(range(r["average_size"][0], r["average_size"][1] + 1), u[3])
    elif kernel == "median":
        p.kernel_size = pick([v for v in range(r["median_size"][0], r["median_size"][1] + 1) if v % 2], u[4])
    elif kernel == "motion":
        p.kernel_size = pick(range(r["motion_size"][0], r["motion_size"][1] + 1), u[5])
        p.angle = real(r["motion_angle"], u[6]) % 360
    if u[9] < r["noise_prob"]:
        p.noise = real(r["noise"], u[8])
    if u[11] < r["jpeg_prob"]:
        p.jpeg_quality = pick(range(r["jpeg_quality"][0], r["jpeg_quality"][1] + 1), u[10])
    return p


@pytest.mark.parametrize("probs", [(1.0, 1.0, 1.0), (0.5, 0.5, 0.5)])
def test_sampling_follows_the_documented_draw_order(probs):
    from mpcnet.data.eq1_degradation import PAPER_RANGES, sample_params

    ranges = {**PAPER_RANGES, "blur_prob": probs[0], "noise_prob": probs[1], "jpeg_prob": probs[2]}
    for seed in range(200):
        got = sample_params(np.random.default_rng(seed), ranges)
        want = reference_sample(np.random.default_rng(seed), ranges)
        assert got.to_dict() == pytest.approx(want.to_dict(), abs=1e-9), seed
