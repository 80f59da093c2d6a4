"""Stage 2 (section 4.1): the noise-free StyleGAN2 prior, trained on HQ faces.

The usual StyleGAN2 objective without noise inputs: non-saturating logistic loss (BasicSR's
``GANLoss`` ``wgan_softplus``), lazy R1 penalty on real images, EMA of the generator. Left out
(differences from NVIDIA's recipe): style mixing and path-length regularisation. The public
FFHQ-512 checkpoint (registry ``stylegan2-ffhq512-clean``) can replace this stage: give it to
stage 3 as ``network_g.gan_prior_path``.
"""
from __future__ import annotations

from collections import OrderedDict
from copy import deepcopy

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.losses.gan_loss import r1_penalty
from basicsr.utils.registry import MODEL_REGISTRY

from mpcnet.models.training_base import MPCTrainingModel


@MODEL_REGISTRY.register()
class NoiseFreeStyleGAN2Model(MPCTrainingModel):
    """Options: ``network_g`` (StyleGAN2GeneratorNoNoise), ``network_d``, ``train.{gan_opt, optim_g,
    optim_d, r1_reg_weight, net_d_reg_every, ema_decay}``; the dataset's ``gt`` images are the reals.
    The saved ``net_g`` holds ``params`` and ``params_ema`` (stage 3 loads the EMA weights)."""

    def __init__(self, opt: dict):
        super().__init__(opt)
        self.net_g = self.prepare(build_network(deepcopy(opt["network_g"])))
        self.num_style_feat = opt["network_g"].get("num_style_feat", 512)
        self.saved_nets = {"net_g": "network_g"}
        if self.is_train:
            self.init_training_settings()

    def init_training_settings(self) -> None:
        train_opt = self.opt["train"]
        self.net_g_ema = build_network(deepcopy(self.opt["network_g"])).to(self.device).eval()
        self.net_g_ema.load_state_dict(self.get_bare_model(self.net_g).state_dict())
        self.net_d = self.prepare(build_network(deepcopy(self.opt["network_d"])))
        self.saved_nets["net_d"] = "network_d"
        self.net_g.train()
        self.net_d.train()
        self.cri_gan = build_loss(deepcopy(train_opt.get("gan_opt") or {"type": "GANLoss",
                                                                          "gan_type": "wgan_softplus"})).to(self.device)
        self.r1_weight = train_opt.get("r1_reg_weight", 10.0)
        self.d_reg_every = train_opt.get("net_d_reg_every", 16)
        self.optimizer_g = self.make_optimizer(train_opt["optim_g"], self.net_g.parameters())
        self.optimizer_d = self.make_optimizer(train_opt["optim_d"], self.net_d.parameters())
        self.optimizers = [self.optimizer_g, self.optimizer_d]
        self.setup_schedulers()

    def feed_data(self, data: dict) -> None:
        self.real_img = self.to_input(data["gt"])

    def sample(self, batch: int) -> torch.Tensor:
        return self.net_g([torch.randn(batch, self.num_style_feat, device=self.device)])[0]

    def train_step(self, current_iter: int) -> None:
        loss_dict = OrderedDict()
        b = self.real_img.shape[0]
        # discriminator
        self.net_d.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                fake = self.sample(b)
            real_pred, fake_pred = self.net_d(self.real_img), self.net_d(fake)
            l_d = loss_dict["l_d"] = self.cri_gan(real_pred, True, is_disc=True) + self.cri_gan(fake_pred, False,
                                                                                                 is_disc=True)
        loss_dict["real_score"], loss_dict["fake_score"] = real_pred.detach().mean(), fake_pred.detach().mean()
        self.backward_step(l_d, self.optimizer_d, "d")
        if current_iter % self.d_reg_every == 0:  # lazy R1 (fp32: it differentiates twice)
            self.real_img.requires_grad_(True)
            real_pred = self.net_d(self.real_img)
            l_r1 = loss_dict["l_d_r1"] = self.r1_weight / 2 * r1_penalty(real_pred, self.real_img) * self.d_reg_every
            self.backward_step(l_r1, self.optimizer_d, "d_r1")
            self.real_img.requires_grad_(False)
        # generator
        self.net_d.requires_grad_(False)
        with self.autocast():
            l_g = loss_dict["l_g"] = self.cri_gan(self.net_d(self.sample(b)), True, is_disc=False)
        self.backward_step(l_g, self.optimizer_g, "g")
        self.model_ema(decay=self.opt["train"].get("ema_decay", 0.999))
        self.log_dict = self.reduce_loss_dict(loss_dict)

    def validation(self, dataloader, current_iter: int, tb_logger=None, save_img: bool = False) -> dict:
        """No reconstruction to validate for an unconditional generator; nothing to step."""
        return {}

