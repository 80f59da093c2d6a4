"""Shared fixtures: the real data and model files in ../shared, and an isolated weights cache."""
from __future__ import annotations

import os
from pathlib import Path

# `make test` runs one pytest-xdist worker per core: each worker, and every process a test starts from it,
# computes on one thread, so that the workers do not fight over the cores (set before torch is imported)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MPCNET_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
SHARED_WEIGHTS = SHARED / "weights"

if not DATA.is_dir():
    raise RuntimeError(f"the real test data is expected in {DATA} (set MPCNET_SHARED)")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test sees shared/weights as MPCNET_WEIGHTS_DIR and an empty private cache."""
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(SHARED_WEIGHTS))
    monkeypatch.setenv("MPCNET_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present on this machine")
    return path


@pytest.fixture(scope="session")
def aligned_faces() -> list[Path]:
    """Real aligned 512×512 faces (CodeFormer's cropped_faces)."""
    return sorted((DATA / "codeformer-inputs" / "cropped_faces").glob("*.png"))


@pytest.fixture(scope="session")
def hq_faces() -> list[Path]:
    """Real clean CelebA-HQ faces (1024×1024 JPEG) — the HQ side for degradation tests."""
    return sorted((DATA / "celeba-hq-clean" / "sean-1024" / "style_imgs_test").glob("*.jpg"))


@pytest.fixture(scope="session")
def whole_photos() -> list[Path]:
    """Real whole photos with one or more faces."""
    return sorted((DATA / "codeformer-inputs" / "whole_imgs").iterdir())


def eval_folders(root: Path, faces: list[Path], size: int, lq_ext: str = "png") -> Path:
    """An eval run's folders under ``root`` from real faces: gt/ (each at ``size`` px), restored/ (a mild
    blur, σ 1, plus unpaired.png, a copy of the first GT) and lq/ (a strong blur, σ 3, as ``lq_ext``)."""
    for name in ("gt", "restored", "lq"):
        (root / name).mkdir()
    for i, path in enumerate(faces):
        gt = cv2.resize(cv2.imread(str(path)), (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / "gt" / f"{i:03d}.png"), gt)
        cv2.imwrite(str(root / "restored" / f"{i:03d}.png"), cv2.GaussianBlur(gt, (0, 0), 1.0))
        cv2.imwrite(str(root / "lq" / f"{i:03d}.{lq_ext}"), cv2.GaussianBlur(gt, (0, 0), 3.0))
    cv2.imwrite(str(root / "restored" / "unpaired.png"), cv2.imread(str(root / "gt" / "000.png")))
    return root


def heldout_faces(count: int) -> dict[str, np.ndarray]:
    """The first ``count`` held-out faces of the face pool's aligned sources of at least 512 px, taken from
    ../shared/data by the pool's own code (README sources, seeded split, 512 px resize): pool file name →
    512×512 BGR uint8, as ``make pool`` writes them (scripts/eval_heldout.sh's GT); no pool needed."""
    from mpcnet.data.face_pool import (
        face_name,
        load_fixed_splits,
        pool_files,
        read_sources,
        resize_aligned,
        source_split,
    )
    from mpcnet.utils.image_io import read_image

    fixed, faces = load_fixed_splits(REPO / "options" / "splits"), {}
    for source, path in pool_files(DATA, read_sources(DATA)):
        if len(faces) == count:
            break
        if source.pool == "aligned" and source_split(path, DATA, fixed) == "heldout":
            image = read_image(path)
            if image.bgr.shape[0] >= 512:
                faces[Path(face_name(source, path, None)).name] = resize_aligned(image)
    return faces


class Negative(torch.nn.Module):
    """Stand-in restorer: (B,3,S,S) in [-1, 1] → its negative."""

    def forward(self, x):
        return -x


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A 64-px MPCNet with narrow channels and random weights, saved as restore loads it
    ({'params', 'arch', 'meta'})."""
    from mpcnet.archs.mpcnet_arch import MPCNet
    from mpcnet.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = MPCNet(out_size=64, num_style_feat=64, channel_multiplier=1, narrow=0.125, num_mlp=2,
                 parse_base_ch=16, parse_res_depth=1, parse_max_ch=32)
    path = tmp_path_factory.mktemp("weights") / "mpcnet-64.pth"
    save_checkpoint({"params": net.state_dict(), "arch": net.arch_config, "meta": {"note": "random, for tests"}}, path)
    return str(path)


@pytest.fixture(scope="module")
def yunet():
    """The YuNet face detector from ../shared/weights."""
    from mpcnet.restoration.detectors import make_detector

    shared_file("weights", "face_detection_yunet.onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPCNET_WEIGHTS_DIR", str(SHARED_WEIGHTS))
        return make_detector("yunet")
