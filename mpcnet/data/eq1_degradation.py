"""The degradation model of eq. 1 (section 3.1 of the paper):

    x = JPEG_q[(y ⊛ k) ↓r + n_δ],  then bicubic back up to the network size.

* k: one of four blurs — Gaussian (σ ∈ [3, 15]), average (box, size 3–15), median (a median
  *filter*, size 3–15, odd) and motion (a line of length 5–25 at any angle);
* ↓r: bicubic resize by a real-valued factor r ∈ [4, 16] (×6.5 and ×7.15 work as well);
* n_δ: channel-wise (independent per channel) Gaussian noise, SD δ ∈ [0, 25.5] on the 0–255 scale;
* JPEG_q: q ∈ [10, 65] used as the usual JPEG *quality* factor (lower = stronger compression).
  The paper says "higher means stronger compression"; that sentence describes imgaug's
  ``JpegCompression(compression=(10, 65))`` used by PSFRGAN (quality = 100 − compression, i.e.
  quality ∈ [35, 90]). We follow the DESIGN reading (quality factor); ``jpeg_quality: [35, 90]``
  in the ranges reproduces the other one.

Ranges are a plain dict (see :data:`PAPER_RANGES`), so an option file can replace any of them.
Every value is either a ``[lo, hi]`` range or a fixed scalar; ``jpeg_quality: null`` disables JPEG.
Sampling always draws the same random numbers in the same order, so fixing one parameter (a
Table 4/5/6 preset) leaves every other sampled parameter of an image unchanged. The images are
float32 H×W×3 BGR in [0, 1]; the same :class:`DegradationParams` always give bit-identical output.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

KERNELS = ("gaussian", "average", "median", "motion")

PAPER_RANGES: dict = {
    "kernels": list(KERNELS),          # chosen uniformly; a dict {name: weight} weights them
    "gaussian_sigma": [3.0, 15.0],
    "average_size": [3, 15],
    "median_size": [3, 15],            # odd sizes only
    "motion_size": [5, 25],
    "motion_angle": [0.0, 360.0],      # degrees, counter-clockwise from the +x axis
    "scale": [4.0, 16.0],
    "noise": [0.0, 25.5],              # δ on the 0–255 scale
    "jpeg_quality": [10, 65],          # standard JPEG quality factor; None = no JPEG
    "blur_prob": 1.0,                  # probability that each stage is applied at all
    "noise_prob": 1.0,
    "jpeg_prob": 1.0,
}


@dataclass
class DegradationParams:
    """Every parameter of one draw of eq. 1; ``seed`` drives the noise n_δ."""

    kernel: str = "none"               # gaussian | average | median | motion | none
    kernel_size: int = 0               # average/median/motion size in pixels (gaussian: derived from σ)
    sigma: float = 0.0                 # Gaussian σ in pixels
    angle: float = 0.0                 # motion direction in degrees
    scale: float = 1.0                 # r
    noise: float = 0.0                 # δ (0–255 scale)
    jpeg_quality: int | None = None    # q; None = no JPEG
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DegradationParams:
        """Inverse of :meth:`to_dict`; also accepts the strings of a CSV row (extra keys ignored)."""
        kw = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            try:
                if f.name == "jpeg_quality":
                    kw[f.name] = None if v in (None, "", "None") else int(v)
                elif f.name == "kernel":
                    kw[f.name] = str(v)
                elif f.name in ("kernel_size", "seed"):
                    kw[f.name] = int(v)
                else:
                    kw[f.name] = float(v)
            except (TypeError, ValueError):
                kind = "an integer" if f.name in ("jpeg_quality", "kernel_size", "seed") else "a number"
                raise ValueError(f"{f.name} {v!r} is not {kind}") from None
        p = cls(**kw)
        p.validate()
        return p

    def validate(self) -> None:
        if self.kernel not in KERNELS + ("none",):
            raise ValueError(f"unknown kernel {self.kernel!r}; choose from {', '.join(KERNELS)}, none")
        if self.kernel in ("average", "median", "motion") and self.kernel_size < 1:
            raise ValueError(f"{self.kernel} blur needs a kernel size ≥ 1")
        if self.kernel == "median" and self.kernel_size % 2 == 0:
            raise ValueError("median blur needs an odd kernel size")
        if self.kernel == "gaussian" and self.sigma <= 0:
            raise ValueError("Gaussian blur needs σ > 0")
        if self.scale <= 0:
            raise ValueError("scale r must be > 0")
        if self.noise < 0:
            raise ValueError("noise δ must be ≥ 0")
        if self.jpeg_quality is not None and not 0 <= self.jpeg_quality <= 100:
            raise ValueError("JPEG quality must be in [0, 100]")


# What each numeric range may hold: (lowest, lowest is allowed, highest, integer, None allowed).
_BOUNDS = {
    "gaussian_sigma": (0.0, False, math.inf, False, False),
    "average_size": (1, True, math.inf, True, False),
    "median_size": (1, True, math.inf, True, False),
    "motion_size": (1, True, math.inf, True, False),
    "motion_angle": (-math.inf, True, math.inf, False, False),
    "scale": (0.0, False, math.inf, False, False),
    "noise": (0.0, True, math.inf, False, True),
    "jpeg_quality": (0, True, 100, True, True),
    "blur_prob": (0.0, True, 1.0, False, False),
    "noise_prob": (0.0, True, 1.0, False, False),
    "jpeg_prob": (0.0, True, 1.0, False, False),
}


def _allowed(key: str) -> str:
    lo, closed, hi, integer, nullable = _BOUNDS[key]
    kind = "an integer" if integer else "a number"
    bounds = [f"{'≥' if closed else '>'} {lo:g}" if lo > -math.inf else "", f"≤ {hi:g}" if hi < math.inf else ""]
    within = " and ".join(b for b in bounds if b)
    pair = "" if key.endswith("_prob") else " or [lo, hi] of such with lo ≤ hi"
    return f"{kind}{' ' + within if within else ''}{pair}{', or null' if nullable else ''}"


def check_ranges(ranges: dict) -> None:
    """Refuse, before any image is drawn, ranges that eq. 1 cannot sample: unknown keys, values
    out of bounds (σ and r > 0, sizes ≥ 1, δ ≥ 0, q in 0–100, probabilities in 0–1), reversed
    [lo, hi] pairs, an even-only median range, unknown kernels. The message names the key and
    what it allows."""
    if not isinstance(ranges, dict):
        raise ValueError(f"degradation ranges must be a mapping of {', '.join(PAPER_RANGES)}")
    unknown = set(ranges) - set(PAPER_RANGES)
    if unknown:
        raise ValueError(f"unknown degradation range(s): {', '.join(sorted(map(str, unknown)))}; "
                         f"known: {', '.join(PAPER_RANGES)}")
    for key, spec in ranges.items():
        if key == "kernels":
            names = [spec] if isinstance(spec, str) else list(spec) if isinstance(spec, (list, tuple, dict)) else None
            weights = list(spec.values()) if isinstance(spec, dict) else [1.0]
            if not names or any(n not in KERNELS for n in names) or not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights) \
                    or sum(weights) <= 0:
                raise ValueError(f"kernels: {spec!r} is not allowed; give one of {', '.join(KERNELS)}, a list of "
                                 "them, or a mapping of them to weights ≥ 0")
            continue
        lo, closed, hi, integer, nullable = _BOUNDS[key]
        if spec is None and nullable:
            continue
        values = list(spec) if isinstance(spec, (list, tuple)) else [spec]
        scalar_only = key.endswith("_prob")  # compared with one uniform draw: no [lo, hi]
        ok = len(values) == (2 if isinstance(spec, (list, tuple)) and not scalar_only else 1) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v >= lo if closed else v > lo) and v <= hi and (not integer or float(v).is_integer())
            for v in values) and values[0] <= values[-1]
        if ok and key == "median_size" and not any(v % 2 for v in range(int(values[0]), int(values[-1]) + 1)):
            ok = False
        if not ok:
            odd = " containing an odd size" if key == "median_size" else ""
            raise ValueError(f"{key}: {spec!r} is not allowed; it must be {_allowed(key)}{odd}")


def _pick_real(spec, u: float) -> float:
    if isinstance(spec, (list, tuple)):
        lo, hi = float(spec[0]), float(spec[1])
        return float(lo + (hi - lo) * u)
    return float(spec)


def _pick_int(spec, u: float, odd: bool = False) -> int:
    if not isinstance(spec, (list, tuple)):
        return int(spec)
    lo, hi = int(spec[0]), int(spec[1])
    values = [v for v in range(lo, hi + 1) if v % 2 == 1] if odd else list(range(lo, hi + 1))
    if not values:
        raise ValueError(f"empty range {spec}")
    return values[min(int(u * len(values)), len(values) - 1)]


def _pick_kernel(spec, u: float) -> str:
    if isinstance(spec, str):
        return spec
    weights = spec if isinstance(spec, dict) else {k: 1.0 for k in spec}
    names, w = list(weights), np.asarray(list(weights.values()), dtype=np.float64)
    cum = np.cumsum(w / w.sum())
    return names[min(int(np.searchsorted(cum, u, side="right")), len(names) - 1)]


def sample_params(rng: np.random.Generator, ranges: dict = PAPER_RANGES) -> DegradationParams:
    """Draw one set of eq. 1 parameters from ``ranges`` (missing keys fall back to the paper's)."""
    check_ranges(ranges)
    r = {**PAPER_RANGES, **ranges}
    u = rng.random(12)  # always the same draws, so fixed values do not shift the others
    seed = int(rng.integers(0, 2**31 - 1))
    kernel = _pick_kernel(r["kernels"], u[0]) if u[1] < r["blur_prob"] else "none"
    p = DegradationParams(kernel=kernel, scale=_pick_real(r["scale"], u[7]), seed=seed)
    if kernel == "gaussian":
        p.sigma = _pick_real(r["gaussian_sigma"], u[2])
    elif kernel == "average":
        p.kernel_size = _pick_int(r["average_size"], u[3])
    elif kernel == "median":
        p.kernel_size = _pick_int(r["median_size"], u[4], odd=True)
    elif kernel == "motion":
        p.kernel_size = _pick_int(r["motion_size"], u[5])
        p.angle = _pick_real(r["motion_angle"], u[6]) % 360.0
    if r["noise"] is not None and u[9] < r["noise_prob"]:
        p.noise = _pick_real(r["noise"], u[8])
    if r["jpeg_quality"] is not None and u[11] < r["jpeg_prob"]:
        p.jpeg_quality = _pick_int(r["jpeg_quality"], u[10])
    p.validate()
    return p


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels through the centre at ``angle`` degrees
    (counter-clockwise from +x, image y pointing down), anti-aliased by bilinear splatting."""
    size = length + 1 if length % 2 == 0 else length
    k = np.zeros((size + 2, size + 2), np.float64)
    c = (size + 1) / 2.0
    t = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, 8 * length)
    rad = math.radians(angle)
    x, y = c + t * math.cos(rad), c - t * math.sin(rad)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    np.add.at(k, (y0, x0), (1 - fx) * (1 - fy))
    np.add.at(k, (y0, x0 + 1), fx * (1 - fy))
    np.add.at(k, (y0 + 1, x0), (1 - fx) * fy)
    np.add.at(k, (y0 + 1, x0 + 1), fx * fy)
    return (k / k.sum()).astype(np.float32)


def blur(img: np.ndarray, p: DegradationParams) -> np.ndarray:
    """y ⊛ k for the kernel in ``p`` (the median is a rank filter on 8-bit samples)."""
    if p.kernel == "gaussian":
        return cv2.GaussianBlur(img, (0, 0), p.sigma, borderType=cv2.BORDER_REFLECT_101)
    if p.kernel == "average":
        return cv2.blur(img, (p.kernel_size, p.kernel_size), borderType=cv2.BORDER_REFLECT_101)
    if p.kernel == "median":
        # OpenCV's float median stops at size 5; larger sizes need 8-bit samples.
        u8 = to_uint8(img)
        return cv2.medianBlur(u8, p.kernel_size).astype(np.float32) / 255.0
    if p.kernel == "motion":
        return cv2.filter2D(img, -1, motion_kernel(p.kernel_size, p.angle), borderType=cv2.BORDER_REFLECT_101)
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] float → uint8, rounded."""
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def encode_jpeg(img_u8: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an 8-bit BGR image at the standard quality factor ``quality``."""
    ok, buf = cv2.imencode(".jpg", img_u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def apply_degradation(img: np.ndarray, params: DegradationParams,
                      out_size: int | None = None) -> np.ndarray:
    """Eq. 1 with fixed ``params``: blur, ↓r (bicubic, real-valued r), + n_δ, JPEG_q, then
    bicubic up to ``out_size``×``out_size`` (default: the input's size). float32 BGR [0, 1] in and out."""
    params.validate()
    img = np.ascontiguousarray(img, dtype=np.float32)
    h, w = img.shape[:2]
    out_hw = (h, w) if out_size is None else (int(out_size), int(out_size))
    x = blur(img, params)
    if params.scale != 1.0:
        small = (max(1, round(w / params.scale)), max(1, round(h / params.scale)))
        x = cv2.resize(x, small, interpolation=cv2.INTER_CUBIC)
    if params.noise > 0:
        noise_rng = np.random.default_rng(params.seed)
        x = x + noise_rng.standard_normal(x.shape, dtype=np.float32) * np.float32(params.noise / 255.0)
    if params.jpeg_quality is not None:
        data = np.frombuffer(encode_jpeg(to_uint8(x), params.jpeg_quality), np.uint8)
        x = cv2.imdecode(data, cv2.IMREAD_COLOR).astype(np.float32) / 255.0
    if x.shape[:2] != out_hw:
        x = cv2.resize(x, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def degrade(img: np.ndarray, rng: np.random.Generator, ranges: dict = PAPER_RANGES,
            out_size: int | None = None) -> tuple[np.ndarray, DegradationParams]:
    """Sample parameters from ``ranges`` with ``rng`` and apply eq. 1; returns ``(lq, params)``."""
    params = sample_params(rng, ranges)
    return apply_degradation(img, params, out_size), params


def _fixed(base: dict, **fixed) -> dict:
    r = copy.deepcopy(base)
    r.update(fixed)
    return r


# Table 5: four Gaussian widths and four motion directions (length 10). The paper does not give
# the Gaussian σ; we take σ = 3, 6, 9, 12, spread over its training range [3, 15].
TABLE5_KERNELS = {
    **{f"gauss-{s}": {"kernels": "gaussian", "gaussian_sigma": float(s)} for s in (3, 6, 9, 12)},
    **{f"motion-{a}": {"kernels": "motion", "motion_size": 10, "motion_angle": float(a)}
       for a in (0, 45, 90, 135)},
}

# The paper does not say what else Tables 4–6 degrade; our reading: each table fixes one factor of
# the CelebA-Test random mode and samples the rest as usual (the same per image across variants).
PRESETS: dict[str, dict] = {
    # Table 3 / CelebA-Test: the random mode with the paper's ranges.
    "celeba-test": _fixed(PAPER_RANGES),
    # Only resizing to the network size (HQ ground truth, FFHQ at 512).
    "clean": _fixed(PAPER_RANGES, blur_prob=0.0, scale=1.0, noise=None, jpeg_quality=None),
    # Table 4: CelebA-Test with the SR factor fixed.
    **{f"table4-x{r}": _fixed(PAPER_RANGES, scale=float(r)) for r in (4, 5, 6, 7, 8)},
    # Table 5: noise-free CelebA-Test with one fixed blur kernel.
    **{f"table5-{name}": _fixed(PAPER_RANGES, noise=0.0, **k)
       for name, k in TABLE5_KERNELS.items()},
    # Not the paper's: GFPGAN's training ranges (options/train_gfpgan_v1.yml: Gaussian σ 0.1–10,
    # ↓ 0.8–8, noise 0–20, JPEG 60–100; r < 1 left out, our ↓r only shrinks), a milder, real-photo-like
    # set on which to check that a model keeps what its input already has ("do no harm").
    "gfpgan-train": _fixed(PAPER_RANGES, kernels="gaussian", gaussian_sigma=[0.1, 10.0], scale=[1.0, 8.0],
                           noise=[0.0, 20.0], jpeg_quality=[60, 100]),
    # Table 6: CelebA-Test with the noise level fixed.
    **{f"table6-noise{n}": _fixed(PAPER_RANGES, noise=float(n))
       for n in (0, 5, 10, 15, 20, 25)},
}
