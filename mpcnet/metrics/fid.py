"""FID (Heusel et al. 2017): Fréchet distance between Gaussians fitted to features of two image sets.

``d² = |μ1 − μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)`` (BasicSR's stable implementation). Features come from
any fixed extractor; the standard one is pytorch-fid's Inception-v3 port (2048-d pool features),
loaded through the weights registry ('inception-fid'). Reference statistics are cached on disk,
keyed by the extractor and the reference folder's file list (names, sizes, mtimes).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from unittest import mock

import numpy as np
import torch
from basicsr.metrics.fid import calculate_fid

from mpcnet.metrics import MetricUnavailable, model_file_needed
from mpcnet.metrics.pixel import bgr_to_tensor
from mpcnet.utils.dist import pad_batch
from mpcnet.weights import cache_dir, resolve

WEIGHTS_NAME = "inception-fid"


@dataclass
class FeatureExtractor:
    """A fixed network mapping a B×3×H×W RGB batch in [-1, 1] to B×D features; ``name`` keys the cache.
    Every call runs a full batch (the last one padded, :func:`~mpcnet.utils.dist.pad_batch`), so that
    the features of a set split across processes come from calls of one shape."""
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    device: str = "cpu"

    @torch.no_grad()
    def features(self, images_bgr: Iterable[np.ndarray], batch_size: int = 8) -> np.ndarray:
        feats, batch = [], []
        for img in images_bgr:
            batch.append(bgr_to_tensor(img))
            if len(batch) == batch_size:
                feats.append(self._run(batch, batch_size))
                batch = []
        if batch:
            feats.append(self._run(batch, batch_size))
        return np.concatenate(feats, 0).astype(np.float64)

    def _run(self, batch: list[torch.Tensor], batch_size: int) -> np.ndarray:
        out = self.fn(pad_batch(torch.cat(batch), batch_size).to(self.device))[:len(batch)]
        return out.reshape(len(batch), -1).float().cpu().numpy()


def inception_extractor(device: str = "cpu") -> FeatureExtractor:
    """pytorch-fid's Inception-v3 (BasicSR's port), weights from the registry; input resized to 299."""
    with model_file_needed():
        path = resolve(WEIGHTS_NAME)  # BasicSR's port loads the file itself
    import basicsr.archs.inception as inception

    # BasicSR reads LOCAL_FID_WEIGHTS when it exists and downloads otherwise: point it at our verified copy.
    with mock.patch.object(inception, "LOCAL_FID_WEIGHTS", str(path)):
        net = inception.InceptionV3([3], resize_input=True, normalize_input=False).eval().to(device)
    return FeatureExtractor(f"{WEIGHTS_NAME}:{path.stat().st_size}", lambda x: net(x)[0], device)


@dataclass
class FIDStats:
    mu: np.ndarray
    sigma: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> "FIDStats":
        if len(features) < 2:
            raise MetricUnavailable(f"FID needs at least 2 images per set, got {len(features)}")
        return cls(features.mean(0), np.cov(features, rowvar=False), len(features))


def frechet_distance(a: FIDStats, b: FIDStats) -> float:
    """FID between two fitted Gaussians; ≈0 for a set against itself (clipped at 0 for round-off)."""
    return max(0.0, float(calculate_fid(a.mu, a.sigma, b.mu, b.sigma)))


def folder_key(files: list[Path], root: Path, extractor: FeatureExtractor) -> str:
    """Cache key of a reference set: extractor name + every file's relative path, size and mtime."""
    listing = [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps([extractor.name, listing]).encode()).hexdigest()[:24]


def reference_stats(root: Path, files: list[Path], load: Callable[[Path], np.ndarray],
                    extractor: FeatureExtractor, cache: Path | None = None) -> tuple[FIDStats, bool]:
    """Statistics of a reference folder, from the cache when the same files were seen before.

    Returns ``(stats, from_cache)``. The cache lives in ``$MPCNET_CACHE_DIR/fid`` unless ``cache`` is given.
    """
    cache = cache or cache_dir() / "fid"
    path = cache / f"{folder_key(files, root, extractor)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return FIDStats(z["mu"], z["sigma"], int(z["count"])), True
    stats = FIDStats.of(extractor.features(load(f) for f in files))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, mu=stats.mu, sigma=stats.sigma, count=stats.count)
    tmp.replace(path)
    return stats, False
