"""Stage 3 (section 4.1): MPCNet trained with both priors loaded and frozen.

Generator objective λ_pix·L1 + perceptual (eq. 8) + λ_adv·L_adv,G (eq. 9) + Gram style (eq. 10),
plus (ours, optional) λ_grad·L1 of image gradients where no VGG exists; the spectral-norm
discriminator is trained with the hinge loss L_adv,D (eq. 9).
"""
from __future__ import annotations

from collections import OrderedDict
from copy import deepcopy

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn import functional as F

from mpcnet.checkpoint import load_model_file
from mpcnet.models.training_base import MPCTrainingModel

# option key → log name of each loss between output and GT: eq. 6's L1, then ours that need no
# pretrained network (mpcnet/losses/gradient_loss.py, frequency_loss.py)
DIRECT_LOSSES = {"pixel_opt": "l_pix", "gradient_opt": "l_grad", "frequency_opt": "l_freq"}


@MODEL_REGISTRY.register()
class MPCNetModel(MPCTrainingModel):
    """Options: ``network_g`` (MPCNet, priors via ``gan_prior_path``/``parse_prior_path``),
    ``network_d`` (MPCDiscriminator; omitted or ``gan_opt.loss_weight: 0`` trains without GAN),
    ``train.{pixel_opt, gradient_opt, frequency_opt, perceptual_opt, gan_opt, optim_g, optim_d, scheduler,
    net_d_init_iters, ema_decay}`` (``ema_decay`` > 0 keeps an EMA of ``net_g``, saved as ``params_ema``,
    which validation and restore use, as GFPGAN's);
    ``path.pretrain_network_g`` (a checkpoint path or registry name) starts the network from its weights,
    e.g. a shipped model on a machine that has none of its training states (the optimisers start anew);
    ``path.pretrain_network_d`` likewise the discriminator, e.g. to branch a new run off another's checkpoint."""

    def __init__(self, opt: dict):
        super().__init__(opt)
        net_g = build_network(deepcopy(opt["network_g"]))
        if opt["path"].get("pretrain_network_g"):  # BasicSR's key: start from a checkpoint's weights
            load_model_file(opt["path"]["pretrain_network_g"], into=net_g)
        self.net_g = self.prepare(net_g)
        self.saved_nets = {"net_g": "network_g"}
        self.net_d = None
        if self.is_train:
            self.init_training_settings()

    def init_training_settings(self) -> None:
        train_opt = self.opt["train"]
        self.net_g.train()
        if train_opt.get("ema_decay", 0) > 0:
            # a copy of the built net_g: rebuilding from network_g would read the prior files again
            self.net_g_ema = deepcopy(self.get_bare_model(self.net_g)).eval()
        # the losses that compare output and GT directly (eq. 6 and our offline sharpening terms)
        self.cri_direct = {name: build_loss(deepcopy(train_opt[key])).to(self.device)
                           for key, name in DIRECT_LOSSES.items() if train_opt.get(key)}
        self.cri_perceptual = (build_loss(deepcopy(train_opt["perceptual_opt"])).to(self.device)
                               if train_opt.get("perceptual_opt") else None)
        gan_opt = train_opt.get("gan_opt")
        self.cri_gan = build_loss(deepcopy(gan_opt)).to(self.device) if gan_opt and gan_opt.get("loss_weight") else None
        self.optimizer_g = self.make_optimizer(train_opt["optim_g"], self.net_g.parameters())
        self.optimizers = [self.optimizer_g]
        if self.cri_gan is not None:
            net_d = build_network(deepcopy(self.opt["network_d"]))
            if self.opt["path"].get("pretrain_network_d"):  # the discriminator of the run continued from
                load_model_file(self.opt["path"]["pretrain_network_d"], into=net_d)
            self.net_d = self.prepare(net_d)
            self.net_d.train()
            self.saved_nets["net_d"] = "network_d"
            self.optimizer_d = self.make_optimizer(train_opt["optim_d"], self.net_d.parameters())
            self.optimizers.append(self.optimizer_d)
        self.setup_schedulers()

    def feed_data(self, data: dict) -> None:
        self.lq = self.to_input(data["lq"])
        self.gt = self.to_input(data["gt"]) if "gt" in data else None

    def train_step(self, current_iter: int) -> None:
        loss_dict = OrderedDict()
        use_gan = self.net_d is not None and current_iter > self.opt["train"].get("net_d_init_iters", 0)
        if self.net_d is not None:
            self.net_d.requires_grad_(False)
        with self.autocast():
            self.output = self.net_g(self.lq)
            for name, cri in self.cri_direct.items():
                loss_dict[name] = cri(self.output, self.gt)
            l_total = sum(loss_dict.values())
            if self.cri_perceptual is not None:
                l_percep, l_style = self.cri_perceptual(self.output, self.gt)
                for key, value in (("l_percep", l_percep), ("l_style", l_style)):
                    if value is not None:
                        loss_dict[key] = value
                        l_total = l_total + value
            if use_gan:
                l_total = l_total + (loss_dict.setdefault("l_g_gan", self.cri_gan(self.net_d(self.output), True,
                                                                                   is_disc=False)))
        self.backward_step(l_total, self.optimizer_g, "g")

        if self.net_d is not None:
            self.net_d.requires_grad_(True)
            with self.autocast():
                real = self.net_d(self.gt)
                fake = self.net_d(self.output.detach())
                loss_dict["l_d_real"] = self.cri_gan(real, True, is_disc=True)
                loss_dict["l_d_fake"] = self.cri_gan(fake, False, is_disc=True)
            self.backward_step(loss_dict["l_d_real"] + loss_dict["l_d_fake"], self.optimizer_d, "d")
        if hasattr(self, "net_g_ema"):
            self.update_ema(self.opt["train"]["ema_decay"])
        self.log_dict = self.reduce_loss_dict(loss_dict)

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """θ_ema ← decay·θ_ema + (1 − decay)·θ for the weights; buffers (the frozen ParseNet's
        BatchNorm statistics) are copied, since BasicSR's ``model_ema`` leaves them behind."""
        net = self.get_bare_model(self.net_g)
        self.model_ema(decay)
        for ema_buf, buf in zip(self.net_g_ema.buffers(), net.buffers()):
            ema_buf.copy_(buf)

    @torch.no_grad()
    def test(self) -> None:
        net = getattr(self, "net_g_ema", self.net_g)
        net.eval()
        with self.autocast():
            self.output = net(self.lq).float()
        self.net_g.train()

    @torch.no_grad()
    def validation(self, dataloader, current_iter: int, tb_logger=None, save_img: bool = False) -> dict:
        """Mean L1 (the validation reconstruction loss the plateau scheduler watches), PSNR and
        SSIM (8-bit RGB, BasicSR's metrics) over the validation pairs."""
        totals, n = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}, 0
        for n, data in enumerate(dataloader, start=1):
            self.feed_data(data)
            self.test()
            totals["l1"] += F.l1_loss(self.output, self.gt).item()
            out = tensor2img(self.output, rgb2bgr=True, min_max=(-1, 1))
            gt = tensor2img(self.gt, rgb2bgr=True, min_max=(-1, 1))
            totals["psnr"] += calculate_psnr(out, gt, crop_border=0)
            totals["ssim"] += calculate_ssim(out, gt, crop_border=0)
        metrics = {k: v / max(n, 1) for k, v in totals.items()}
        self.plateau_step(metrics["l1"])
        name = dataloader.dataset.opt.get("name", "val")
        get_root_logger().info(f"Validation {name} @ {current_iter}: " +
                               ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if tb_logger is not None:
            for k, v in metrics.items():
                tb_logger.add_scalar(f"metrics/{name}/{k}", v, current_iter)
        return metrics
