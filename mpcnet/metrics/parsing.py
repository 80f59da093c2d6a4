"""Face-parsing agreement: per-class IoU and mIoU from a confusion matrix accumulated over images
(IoU_c = TP_c / (TP_c + FP_c + FN_c), summed over every pixel of the set, as segmentation
benchmarks report it)."""
from __future__ import annotations

import numpy as np
import torch


def confusion(pred, ref, num_classes: int) -> torch.Tensor:
    """num_classes² int64 counts, rows = reference class, columns = predicted class."""
    pred, ref = (torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x for x in (pred, ref))
    index = ref.reshape(-1).long() * num_classes + pred.reshape(-1).long()
    return torch.bincount(index.cpu(), minlength=num_classes ** 2).reshape(num_classes, num_classes)


def class_iou(matrix: torch.Tensor) -> torch.Tensor:
    """IoU of every class (NaN for a class in neither prediction nor reference)."""
    matrix = matrix.double()
    tp = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(matrix: torch.Tensor, classes=None) -> float:
    """Mean IoU over ``classes`` (default: every class that occurs), NaN classes left out."""
    iou = class_iou(matrix)
    if classes is not None:
        iou = iou[list(classes)]
    return float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else float("nan")
