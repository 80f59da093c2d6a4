"""The face pool with its pseudo parsing labels, for pretraining the parsing prior (stage 1) where no
CelebAMask-HQ is at hand (issue 12): (pool face, pseudo label) pairs, eq. 1 LQ made on the fly."""
from __future__ import annotations

import cv2
import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY

from mpcnet.data.celebamask_parsing_dataset import DegradedParsingDataset
from mpcnet.data.pool_labels import label_path, labelled_faces


@DATASET_REGISTRY.register()
class FacePoolParsingDataset(DegradedParsingDataset):
    """Items ``{'lq', 'gt', 'label', 'index'}`` as :class:`CelebAMaskHQParsingDataset`'s; ``index`` is
    the face's path in the pool.

    Options: ``dataroot`` (a face pool with ``labels/``, see ``scripts/make_parsing_labels.py``),
    ``split`` (``train``/``val``/``heldout``: that list's faces; all of the pool when absent); only
    faces whose landmarks were trusted (``labels.csv`` ok) are used; and
    :class:`DegradedParsingDataset`'s.
    """

    def __init__(self, opt: dict):
        super().__init__(opt)
        self.items = labelled_faces(self.root, opt.get("split"))
        if not self.items:
            raise ValueError(f"no labelled faces in {self.root} (split {opt.get('split')}): "
                             f"run scripts/make_parsing_labels.py {self.root}")

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        face = self.items[i]
        img = cv2.imread(str(self.root / face), cv2.IMREAD_COLOR)
        label = cv2.imread(str(label_path(self.root, face)), cv2.IMREAD_GRAYSCALE)
        if img is None or label is None:
            raise ValueError(f"{face} or its label is missing or unreadable in {self.root}")
        return img, cv2.resize(label, (self.gt_size, self.gt_size), interpolation=cv2.INTER_NEAREST)
