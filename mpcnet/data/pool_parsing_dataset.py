"""The face pool with its pseudo parsing labels, for pretraining the parsing prior (stage 1) where no
CelebAMask-HQ is at hand (issue 12): (pool face, pseudo label) pairs, eq. 1 LQ made on the fly."""
from __future__ import annotations

from pathlib import Path

import cv2
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from mpcnet.data.celebamask_parsing_dataset import degraded_parsing_item
from mpcnet.data.degradations import PAPER_RANGES
from mpcnet.data.face_degraded_dataset import sample_rng
from mpcnet.data.pool_labels import label_path, labelled_faces


@DATASET_REGISTRY.register()
class FacePoolParsingDataset(data.Dataset):
    """Items ``{'lq', 'gt', 'label', 'index'}`` as :class:`CelebAMaskHQParsingDataset`'s; ``index`` is
    the face's path in the pool.

    Options: ``dataroot`` (a face pool with ``labels/``, see ``scripts/make_parsing_labels.py``),
    ``split`` (``train``/``val``/``heldout``: that list's faces; all of the pool when absent); only
    faces whose landmarks were trusted (``labels.csv`` ok) are used. ``gt_size``, ``use_hflip``
    (left/right labels swap), ``degradation`` (eq. 1 range overrides), ``seed``.
    """

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.root = Path(opt["dataroot"])
        self.faces = labelled_faces(self.root, opt.get("split"))
        if not self.faces:
            raise ValueError(f"no labelled faces in {self.root} (split {opt.get('split')}): "
                             f"run scripts/make_parsing_labels.py {self.root}")
        self.gt_size = int(opt["gt_size"])
        self.ranges = {**PAPER_RANGES, **(opt.get("degradation") or {})}
        self.seed = int(opt.get("seed", 0))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> dict:
        face = self.faces[i]
        img = cv2.imread(str(self.root / face), cv2.IMREAD_COLOR)
        label = cv2.imread(str(label_path(self.root, face)), cv2.IMREAD_GRAYSCALE)
        if img is None or label is None:
            raise ValueError(f"{face} or its label is missing or unreadable in {self.root}")
        label = cv2.resize(label, (self.gt_size, self.gt_size), interpolation=cv2.INTER_NEAREST)
        rng = sample_rng(self.seed, self.epoch, i)
        return {**degraded_parsing_item(img, label, rng, self.ranges, self.opt.get("use_hflip", True)), "index": face}
