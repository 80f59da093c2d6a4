"""Stage 1 (section 4.1): the parsing prior, per-pixel cross-entropy on degraded CelebAMask-HQ."""
from __future__ import annotations

from collections import OrderedDict
from copy import deepcopy

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from mpcnet.metrics.parsing import confusion, mean_iou
from mpcnet.models.training_base import MPCTrainingModel


def parse_logits(output) -> torch.Tensor:
    """The 19-class logits of a parser that returns ``(logits, image)`` (facexlib's layout) or logits."""
    return output[0] if isinstance(output, (tuple, list)) else output


@MODEL_REGISTRY.register()
class MPCParseNetModel(MPCTrainingModel):
    """Options: ``network_g`` (MPCParseNet), ``train.{ce_opt, optim_g, scheduler}``; the dataset gives
    ``lq`` (eq. 1 degraded) and ``label``. Validation: mean CE (the plateau signal), pixel accuracy and
    mIoU over the classes present in the labels or predictions of the validation set."""

    def __init__(self, opt: dict):
        super().__init__(opt)
        self.net_g = self.prepare(build_network(deepcopy(opt["network_g"])))
        self.saved_nets = {"net_g": "network_g"}
        if self.is_train:
            train_opt = opt["train"]
            self.net_g.train()
            self.cri_ce = build_loss(deepcopy(train_opt.get("ce_opt") or {"type": "ParseCELoss"})).to(self.device)
            self.optimizer_g = self.make_optimizer(train_opt["optim_g"], self.net_g.parameters())
            self.optimizers = [self.optimizer_g]
            self.setup_schedulers()

    def feed_data(self, data: dict) -> None:
        self.lq = self.to_input(data["lq"])
        self.label = data["label"].to(self.device)

    def train_step(self, current_iter: int) -> None:
        with self.autocast():
            loss = self.cri_ce(parse_logits(self.net_g(self.lq)), self.label)
        self.backward_step(loss, self.optimizer_g, "g")
        self.log_dict = self.reduce_loss_dict(OrderedDict(l_ce=loss))

    @torch.no_grad()
    def validation(self, dataloader, current_iter: int, tb_logger=None, save_img: bool = False) -> dict:
        self.net_g.eval()
        ce = acc = 0.0
        n = 0
        matrix = 0
        for n, data in enumerate(dataloader, start=1):
            self.feed_data(data)
            with self.autocast():
                logits = parse_logits(self.net_g(self.lq)).float()
            ce += self.cri_ce(logits, self.label).item()
            acc += (logits.argmax(1) == self.label).float().mean().item()
            matrix = matrix + confusion(logits.argmax(1), self.label, logits.shape[1])
        self.net_g.train()
        metrics = {"ce": ce / max(n, 1), "pixel_acc": acc / max(n, 1), "miou": mean_iou(matrix) if n else float("nan")}
        self.plateau_step(metrics["ce"])
        get_root_logger().info(f"Validation @ {current_iter}: ce {metrics['ce']:.4f}, "
                               f"pixel accuracy {metrics['pixel_acc']:.4f}, mIoU {metrics['miou']:.4f}")
        if tb_logger is not None:
            for k, v in metrics.items():
                tb_logger.add_scalar(f"metrics/parse/{k}", v, current_iter)
        return metrics
