"""HQ faces (folder, list file or lmdb) with LQ synthesised on the fly by eq. 1 and random h-flip."""
from __future__ import annotations

import json
from os import path as osp

import cv2
import numpy as np
from basicsr.data.data_util import paths_from_folder, paths_from_lmdb
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from mpcnet.data.eq1_degradation import PAPER_RANGES, check_ranges, degrade
from mpcnet.utils.image_io import IMAGE_EXTS


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one sample: fixed by (seed, epoch, index), not by worker or resume point."""
    return np.random.default_rng([seed, epoch, index])


def gt_paths(opt: dict) -> list[str]:
    """``dataroot_gt`` + ``meta_info_file`` (one relative path a line), or every image in the folder/lmdb."""
    root = opt["dataroot_gt"]
    if opt["io_backend"]["type"] == "lmdb":
        return paths_from_lmdb(root)
    if opt.get("meta_info_file"):
        with open(opt["meta_info_file"]) as fin:
            return [osp.join(root, line.strip()) for line in fin if line.strip()]
    # only images: a folder written by `mpcnet degrade` (scripts/resize_ffhq.sh) also holds its manifest.csv
    return sorted(p for p in paths_from_folder(root) if p.lower().endswith(IMAGE_EXTS))


class RangeMixture:
    """Ranges of eq. 1 and how often each is drawn (one entry: always the same ranges)."""

    def __init__(self, ranges: list[dict], weights: list[float]):
        for r in ranges:
            check_ranges(r)
        if len(ranges) != len(weights) or not ranges or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("degradation_mix needs one weight ≥ 0 per entry and a positive sum")
        self.ranges = [{**PAPER_RANGES, **r} for r in ranges]
        self.cumulative = np.cumsum(weights) / sum(weights)

    def draw(self, rng: np.random.Generator) -> dict:
        if len(self.ranges) == 1:  # no extra draw: single-range runs keep their random streams
            return self.ranges[0]
        return self.ranges[min(int(np.searchsorted(self.cumulative, rng.random(), side="right")), len(self.ranges) - 1)]


def mixture(opt: dict) -> RangeMixture:
    """The dataset's ``degradation`` (one mapping) or ``degradation_mix`` (``[{weight, ranges}, …]``)."""
    mix = opt.get("degradation_mix")
    if mix is None:
        return RangeMixture([opt.get("degradation") or {}], [1.0])
    if opt.get("degradation") is not None:
        raise ValueError("give either degradation or degradation_mix, not both")
    if not isinstance(mix, list) or not all(isinstance(m, dict) and set(m) == {"weight", "ranges"} for m in mix):
        raise ValueError("degradation_mix must be a list of {weight: W, ranges: {...}} entries")
    return RangeMixture([m["ranges"] or {} for m in mix], [float(m["weight"]) for m in mix])


def read_resized(file_client: FileClient, path: str, size: int) -> np.ndarray:
    """float32 BGR [0, 1] image resized (area) to size×size."""
    raw = file_client.get(path, "default") if file_client.backend == "lmdb" else file_client.get(path)
    img = imfrombytes(raw, float32=True)
    if img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def similarity_jitter(opt: dict) -> dict | None:
    """The dataset's ``similarity_jitter`` (``{scale: [lo, hi], rotation: degrees}``, lo > 0, rotation
    ≥ 0; scale [1, 1] and rotation 0 where left out) with its defaults filled in, or None."""
    jitter = opt.get("similarity_jitter")
    if jitter is None:
        return None
    scale, rotation = jitter.get("scale", [1.0, 1.0]), jitter.get("rotation", 0.0)
    if set(jitter) - {"scale", "rotation"} or not (
            isinstance(scale, (list, tuple)) and len(scale) == 2 and 0 < scale[0] <= scale[1]
            and isinstance(rotation, (int, float)) and 0 <= rotation <= 180):
        raise ValueError(f"similarity_jitter must be {{scale: [lo, hi], rotation: degrees}} with 0 < lo ≤ hi "
                         f"and 0 ≤ degrees ≤ 180, not {jitter!r}")
    return {"scale": scale, "rotation": rotation}


def jitter_similarity(gt_2x: np.ndarray, rng: np.random.Generator, jitter: dict, size: int) -> np.ndarray:
    """A random similarity of the GT about the face's centre (scale in [lo, hi], rotation within
    ±degrees, reflected border), resampled at twice ``size`` and area-reduced to ``size`` so the GT
    keeps its fine detail: a small pool's faces seen under new framings, not learnt pixel for pixel."""
    scale, angle = rng.uniform(*jitter["scale"]), rng.uniform(-1, 1) * jitter["rotation"]
    side = gt_2x.shape[0]
    m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
    warped = cv2.warpAffine(gt_2x, m, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA), 0, 1)


@DATASET_REGISTRY.register()
class FaceDegradedDataset(data.Dataset):
    """FFHQ-style training set: each item is ``{'lq', 'gt', 'gt_path', 'degradation'}``.

    Options: ``dataroot_gt``, ``io_backend`` (disk | lmdb), ``meta_info_file`` (optional list),
    ``gt_size``, ``use_hflip``, ``degradation`` (overrides of eq. 1's ranges, default the paper's),
    ``degradation_mix`` (instead of ``degradation``: a list of ``{weight, ranges}``; each sample draws
    one of them with probability ∝ weight, e.g. the paper's ranges and milder, real-photo-like ones),
    ``similarity_jitter`` (optional ``{scale: [lo, hi], rotation: degrees}``: :func:`jitter_similarity`),
    ``seed``, ``synthesize_lq`` (false: ``gt`` only). Tensors are RGB normalised to [-1, 1]; ``degradation`` is the JSON of the drawn params.
    Set ``epoch`` (``set_epoch``) so every epoch draws new degradations yet stays reproducible.
    """

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.io_backend_opt = dict(opt["io_backend"])
        if self.io_backend_opt["type"] == "lmdb":
            self.io_backend_opt["db_paths"] = [opt["dataroot_gt"]]
        self.paths = gt_paths(opt)
        if not self.paths:
            raise ValueError(f"no images found for dataroot_gt {opt['dataroot_gt']}")
        self.gt_size = int(opt["gt_size"])
        self.mix = mixture(opt)
        self.jitter = similarity_jitter(opt)
        self.seed = int(opt.get("seed", 0))
        self.epoch = 0
        self.file_client = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            opt = dict(self.io_backend_opt)
            self.file_client = FileClient(opt.pop("type"), **opt)
        rng = sample_rng(self.seed, self.epoch, index)
        if self.jitter is None:
            gt = read_resized(self.file_client, self.paths[index], self.gt_size)
        else:  # draws only with the option: runs without it keep their random streams
            gt = jitter_similarity(read_resized(self.file_client, self.paths[index], 2 * self.gt_size), rng,
                                   self.jitter, self.gt_size)
        if self.opt.get("use_hflip", True) and rng.random() < 0.5:
            gt = np.ascontiguousarray(gt[:, ::-1])
        if not self.opt.get("synthesize_lq", True):  # HQ only (StyleGAN2 prior training)
            return {"gt": img2tensor(gt, bgr2rgb=True, float32=True) * 2 - 1, "gt_path": self.paths[index]}
        lq, params = degrade(gt, rng, ranges=self.mix.draw(rng), out_size=self.gt_size)
        lq, gt = img2tensor([np.clip(lq, 0, 1), gt], bgr2rgb=True, float32=True)
        return {"lq": lq * 2 - 1, "gt": gt * 2 - 1, "gt_path": self.paths[index],
                "degradation": json.dumps(params.to_dict())}
