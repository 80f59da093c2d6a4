"""Throughput of our eq. 1 degradation against BasicSR's GFPGAN-style pipeline, on one core.

The peer is what GFPGAN's ``FFHQDegradationDataset`` does with its training options: a 41×41
iso/aniso Gaussian from ``basicsr.data.degradations.random_mixed_kernels`` (σ ∈ [0.1, 10]) via
``cv2.filter2D``, linear resize down by [0.8, 8], ``random_add_gaussian_noise`` [0, 20],
JPEG [60, 100] (``add_jpg_compression``), linear resize back up. Both pipelines get the same
float32 BGR images at the same size, with OpenCV and torch limited to one thread; timed rounds
alternate the order (ours, peer, peer, ours, …) so that drifts in machine load hit both alike.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from mpcnet.data.eq1_degradation import PAPER_RANGES, apply_degradation, sample_params
from mpcnet.utils.image_io import list_images, read_image

GFPGAN_OPTIONS = {"kernel_list": ["iso", "aniso"], "kernel_prob": [0.5, 0.5], "blur_kernel_size": 41,
                  "blur_sigma": [0.1, 10], "downsample_range": [0.8, 8], "noise_range": [0, 20],
                  "jpeg_range": [60, 100]}
TARGET_IMAGES_PER_S = 20.0


def load_images(source: str | Path | None, size: int, count: int = 8) -> list[np.ndarray]:
    """Up to ``count`` faces from ``source`` (default: scikit-image's astronaut portrait and its
    mirror), as float32 BGR [0, 1] at size×size."""
    if source is None:
        from skimage import data

        rgb = data.astronaut()
        imgs = [rgb[..., ::-1], rgb[:, ::-1, ::-1]]
    else:
        _, files = list_images(source)
        imgs = [read_image(f).bgr for f in files[:count]]
        if not imgs:
            raise FileNotFoundError(f"no images in {source}")
    return [cv2.resize(np.ascontiguousarray(i), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            for i in imgs]


def gfpgan_degrade(img: np.ndarray, opt: dict = GFPGAN_OPTIONS) -> np.ndarray:
    """GFPGAN's LQ synthesis (``FFHQDegradationDataset.__getitem__``) with BasicSR's functions."""
    from basicsr.data import degradations

    h, w = img.shape[:2]
    kernel = degradations.random_mixed_kernels(opt["kernel_list"], opt["kernel_prob"], opt["blur_kernel_size"],
                                               opt["blur_sigma"], opt["blur_sigma"], [-math.pi, math.pi],
                                               noise_range=None)
    lq = cv2.filter2D(img, -1, kernel)
    scale = np.random.uniform(*opt["downsample_range"])
    lq = cv2.resize(lq, (int(w // scale), int(h // scale)), interpolation=cv2.INTER_LINEAR)
    lq = degradations.random_add_gaussian_noise(lq, opt["noise_range"])
    # random_add_jpg_compression passes a float quality, which OpenCV ≥ 4.12 rejects; same draw, as int.
    lq = degradations.add_jpg_compression(lq, int(np.random.uniform(*opt["jpeg_range"])))
    return cv2.resize(lq, (w, h), interpolation=cv2.INTER_LINEAR)


def run(images: list[np.ndarray], n: int = 200, rounds: int = 4, seed: int = 0, ranges: dict = PAPER_RANGES) -> dict:
    """Time ``n`` degradations of each pipeline (cycling over ``images``) on one thread."""
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch plays no part in either pipeline
        pass
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    params = [sample_params(rng, ranges) for _ in range(n)]
    ours_t, peer_t = [], []
    by_kernel: dict[str, list[float]] = defaultdict(list)

    def ours(i: int) -> None:
        t = time.perf_counter()
        apply_degradation(images[i % len(images)], params[i])
        dt = time.perf_counter() - t
        ours_t.append(dt)
        by_kernel[params[i].kernel].append(dt)

    def peer(i: int) -> None:
        t = time.perf_counter()
        gfpgan_degrade(images[i % len(images)])
        peer_t.append(time.perf_counter() - t)

    # BasicSR's JPEG step encodes float images and OpenCV warns on each call: errors only meanwhile.
    log_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        for f in (ours, peer):  # warm-up (imports, OpenCV's first calls)
            f(0)
        ours_t.clear()
        peer_t.clear()
        by_kernel.clear()
        for r, chunk in enumerate(np.array_split(np.arange(n), rounds)):
            for f in ((ours, peer) if r % 2 == 0 else (peer, ours)):
                for i in chunk:
                    f(int(i))
    finally:
        cv2.utils.logging.setLogLevel(log_level)
    ours_ips, peer_ips = len(ours_t) / sum(ours_t), len(peer_t) / sum(peer_t)
    return {
        "size": images[0].shape[0], "images": n, "threads": 1, "ranges": "paper (eq. 1)",
        "mpcnet": {"images_per_s": round(ours_ips, 2), "ms_per_image": round(1000 / ours_ips, 2),
                   "p95_ms": round(1000 * float(np.percentile(ours_t, 95)), 2)},
        "basicsr_gfpgan": {"images_per_s": round(peer_ips, 2), "ms_per_image": round(1000 / peer_ips, 2),
                           "p95_ms": round(1000 * float(np.percentile(peer_t, 95)), 2)},
        "ratio": float(f"{ours_ips / peer_ips:.3g}"),  # 3 significant digits, whatever the size
        "by_kernel_ms": {k: round(1000 * float(np.mean(v)), 2) for k, v in sorted(by_kernel.items())},
        "target_images_per_s": TARGET_IMAGES_PER_S,
        "meets_target": bool(ours_ips >= TARGET_IMAGES_PER_S and ours_ips >= peer_ips),
    }
