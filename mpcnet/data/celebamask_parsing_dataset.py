"""CelebAMask-HQ for pretraining the parsing prior (stage 1): 19-class label maps + eq. 1 LQ input."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from mpcnet.data.eq1_degradation import PAPER_RANGES, degrade
from mpcnet.data.face_degraded_dataset import sample_rng
from mpcnet.parsing_classes import CELEBAMASK_PARTS, FLIP_LABELS


def anno_dir(root: Path, index: int) -> Path:
    """``CelebAMask-HQ-mask-anno/<index // 2000>``: where image ``index``'s part masks live."""
    return Path(root) / "CelebAMask-HQ-mask-anno" / str(index // 2000)


def assemble_label_map(root: str | Path, index: int, size: int = 512) -> np.ndarray:
    """uint8 size×size map of the 19 classes from the per-part PNGs ``{index:05d}_{part}.png``."""
    label = np.zeros((size, size), np.uint8)
    folder = anno_dir(Path(root), index)
    for k, part in enumerate(CELEBAMASK_PARTS, start=1):
        path = folder / f"{index:05d}_{part}.png"
        if path.is_file():
            mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise ValueError(f"{path} is not a readable mask PNG")
            mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
            label[mask > 127] = k
    return label


def image_indices(root: str | Path) -> list[int]:
    """Indices of ``CelebA-HQ-img/<index>.jpg`` present under ``root``, sorted."""
    return sorted(int(p.stem) for p in (Path(root) / "CelebA-HQ-img").glob("*.jpg") if p.stem.isdigit())


class DegradedParsingDataset(data.Dataset):
    """Stage 1's (face, label map) pairs with eq. 1 LQ made on the fly; subclasses list ``items`` and
    :meth:`load` one as ``(uint8 BGR face, label map at gt_size)``. Options shared by all: ``dataroot``,
    ``gt_size``, ``use_hflip`` (left/right labels swap), ``degradation`` (eq. 1 range overrides), ``seed``."""

    items: list

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.root = Path(opt["dataroot"])
        self.gt_size = int(opt["gt_size"])
        self.ranges = {**PAPER_RANGES, **(opt.get("degradation") or {})}
        self.seed = int(opt.get("seed", 0))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict:
        img, label = self.load(i)
        rng = sample_rng(self.seed, self.epoch, i)
        return {**degraded_parsing_item(img, label, rng, self.ranges, self.opt.get("use_hflip", True)),
                "index": self.items[i]}


@DATASET_REGISTRY.register()
class CelebAMaskHQParsingDataset(DegradedParsingDataset):
    """Items ``{'lq', 'gt', 'label', 'index'}``: ``lq``/``gt`` RGB in [-1, 1], ``label`` int64 H×W.

    Options: ``dataroot`` (CelebAMask-HQ root with ``CelebA-HQ-img`` and ``CelebAMask-HQ-mask-anno``),
    ``label_cache`` (optional folder of ``<index>.png`` label maps written by
    ``scripts/cache_celebamask_labels.py``; assembled from the part masks when absent),
    ``meta_info_file`` (optional list of indices, e.g. the 24,000 training images), and
    :class:`DegradedParsingDataset`'s.
    """

    def __init__(self, opt: dict):
        super().__init__(opt)
        if opt.get("meta_info_file"):
            self.items = [int(s) for s in Path(opt["meta_info_file"]).read_text().split()]
        else:
            self.items = image_indices(self.root)
        if not self.items:
            raise ValueError(f"no CelebA-HQ-img/<index>.jpg under {self.root}")
        self.cache = Path(opt["label_cache"]) if opt.get("label_cache") else None

    def label_map(self, index: int) -> np.ndarray:
        cached = self.cache / f"{index}.png" if self.cache else None
        if cached is not None and cached.is_file():
            label = cv2.imread(str(cached), cv2.IMREAD_GRAYSCALE)
            return cv2.resize(label, (self.gt_size, self.gt_size), interpolation=cv2.INTER_NEAREST)
        return assemble_label_map(self.root, index, self.gt_size)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        index = self.items[i]
        img = cv2.imread(str(self.root / "CelebA-HQ-img" / f"{index}.jpg"), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"CelebA-HQ-img/{index}.jpg is missing or unreadable")
        return img, self.label_map(index)


def degraded_parsing_item(img: np.ndarray, label: np.ndarray, rng: np.random.Generator, ranges: dict,
                          use_hflip: bool) -> dict:
    """``{'lq', 'gt', 'label'}`` of a uint8 BGR face and its label map (already at the training size
    S): GT = the face area-resized to S, h-flipped with probability ½ (left/right classes swap),
    LQ = eq. 1 of the GT at S; images RGB in [-1, 1], the label int64 S×S."""
    size = label.shape[0]
    gt = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    if use_hflip and rng.random() < 0.5:
        gt = np.ascontiguousarray(gt[:, ::-1])
        label = FLIP_LABELS[label[:, ::-1]]
    lq, _ = degrade(gt, rng, ranges=ranges, out_size=size)
    lq, gt = img2tensor([np.clip(lq, 0, 1), gt], bgr2rgb=True, float32=True)
    return {"lq": lq * 2 - 1, "gt": gt * 2 - 1, "label": torch.from_numpy(label.astype(np.int64))}


# CelebAMask-HQ's colour-coded maps (its g_color.py), background first; some copies (GPEN's
# examples/segs, MaskGAN's and SEAN's UIs) colour r_brow (51, 255, 255) instead of (255, 204, 204).
CELEBAMASK_COLOURS = ((0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204),
                      (0, 255, 255), (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0),
                      (0, 0, 153), (0, 0, 204), (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0))
R_BROW_ALT_COLOUR = (51, 255, 255)


def decode_colour_map(rgb: np.ndarray) -> np.ndarray:
    """uint8 class ids of a colour-coded CelebAMask-HQ map (H×W×3 RGB); an unknown colour raises."""
    palette = {(r << 16) | (g << 8) | b: k for k, (r, g, b) in enumerate(CELEBAMASK_COLOURS)}
    r, g, b = R_BROW_ALT_COLOUR
    palette[(r << 16) | (g << 8) | b] = CELEBAMASK_PARTS.index("r_brow") + 1
    packed = rgb.astype(np.int32)
    codes, inverse = np.unique((packed[..., 0] << 16) | (packed[..., 1] << 8) | packed[..., 2], return_inverse=True)
    unknown = [(int(c) >> 16, (int(c) >> 8) & 255, int(c) & 255) for c in codes if int(c) not in palette]
    if unknown:
        raise ValueError(f"not a CelebAMask-HQ colour map: colours {unknown[:3]} are not in its table")
    ids = np.array([palette[int(c)] for c in codes], np.uint8)
    return ids[inverse.reshape(rgb.shape[:2])]
