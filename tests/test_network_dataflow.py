"""Dataflow of MPCNet (Fig. 2): a change to one encoder skip, one F_GAN^j or one F_parse^j reaches the
output at every decoder scale, and a local change of the input stays local (the full-resolution
skip carries it, not only the 4×4 bottleneck)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.utils import img2tensor, tensor2img

from mpcnet.archs import network_from_checkpoint
from mpcnet.archs.mpcnet_arch import MPCNet
from mpcnet.checkpoint import load_checkpoint
from mpcnet.data.eq1_degradation import PAPER_RANGES, degrade
from mpcnet.metrics.pixel import psnr
from tests.conftest import REPO, heldout_faces
from tests.test_archs import SMALL, face_tensor

SIZE = 64


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return MPCNet(out_size=SIZE, **SMALL).eval()


@pytest.fixture(scope="module")
def face(aligned_faces):
    return face_tensor(aligned_faces[5], SIZE)


def run(net, x):
    with torch.no_grad():
        return net(x)


def gradient_at(net, x, source: str, scale: int) -> torch.Tensor | None:
    """d(output · r)/d(feature) for the feature of ``source`` ('skip', 'gan', 'parse') at ``scale``,
    made a leaf tensor in the forward pass; None when the output does not depend on it."""
    leaf = {}

    def swap(feats):
        out = dict(feats)
        out[scale] = leaf["t"] = feats[scale].detach().clone().requires_grad_(True)
        return out

    encode, gan, parse = net.encode, net.stylegan.features, net.parse_features
    with pytest.MonkeyPatch.context() as mp:
        if source == "skip":
            mp.setattr(net, "encode", lambda x: (lambda f, skips: (f, swap(skips)))(*encode(x)))
        elif source == "gan":
            mp.setattr(net.stylegan, "features", lambda latent: swap(gan(latent)))
        else:
            mp.setattr(net, "parse_features", lambda x: swap(parse(x)))
        out = net(x)
    r = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    return torch.autograd.grad((out * r).sum(), leaf["t"], allow_unused=True)[0]


@pytest.mark.parametrize("scale", [8, 16, 32, 64])
@pytest.mark.parametrize("source", ["skip", "gan", "parse"])
def test_each_feature_reaches_the_output(net, face, source, scale):
    """The encoder skip, F_GAN^j and F_parse^j of every decoder scale j influence I_HQ."""
    grad = gradient_at(net, face, source, scale)
    assert grad is not None and grad.abs().max() > 0, f"the {source} feature at {scale} px does not reach the output"


def test_features_are_routed_by_scale(net, face):
    """Block j gets the skip, F_GAN and F_parse of its own scale: record what each APFF receives."""
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(tuple(a.shape[-1] for a in args)))
             for b in net.apff]
    try:
        run(net, face)
    finally:
        for h in hooks:
            h.remove()
    assert seen == [(s, s, s) for s in (8, 16, 32, 64)]


def test_a_local_change_of_the_input_stays_local(net, face):
    """Change an 8×8 patch: the output moves most there (through the full-resolution skip); the
    far corner moves far less (only through the bottleneck and the priors' global paths)."""
    base = run(net, face)
    x = face.clone()
    x[..., 8:16, 8:16] = -x[..., 8:16, 8:16]
    diff = (run(net, x) - base).abs().mean(dim=1)[0]
    near, far = diff[8:16, 8:16].mean(), diff[44:60, 44:60].mean()
    assert near > 1e-3 and near > 5 * far, (float(near), float(far))


def test_forward_is_the_u_net_composed_by_hand(net, face):
    """Fig. 2 / eq. 2–3 by hand from the network's parts: encoder blocks (a conv, then per block
    lrelu(conv2(↓2 lrelu(conv1 x))) + skip(↓2 x), ↓2 being a 2×2 mean), W+ latents from the pooled
    4×4 features, then per scale F_out = APFF(up(F_out) + skip, F_GAN, F_parse), and ToRGB."""
    lrelu = lambda t: torch.nn.functional.leaky_relu(t, 0.2)  # noqa: E731
    half = lambda t: torch.nn.functional.avg_pool2d(t, 2)  # noqa: E731
    with torch.no_grad():
        feat = net.conv_first(face)
        skips = {SIZE: feat}
        for block in net.down:
            feat = lrelu(block.conv2(half(lrelu(block.conv1(feat))))) + block.skip(half(feat))
            skips[feat.shape[-1]] = feat
        f_spatial = net.final_conv(feat)
        latent = net.latent_mlp(f_spatial.mean(dim=(2, 3))).view(1, net.stylegan.num_latent, -1)
        f_gan, f_parse = net.stylegan.features(latent), net.parsenet.features(face)
        out = f_spatial
        for s, up, apff in zip(net.scales, net.up, net.apff):
            out = apff(up(out) + skips[s], f_gan[s], f_parse[s])
        expected = net.to_rgb(out)
        got, logits = net(face, return_parse=True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, net.parsenet.out_mask_conv(f_parse[SIZE]))


def test_a_wrong_input_size_names_the_size_it_got(net):
    with pytest.raises(ValueError, match=r"^MPCNet\(64\) needs 64×64 input, got \(48, 64\)$"):
        run(net, torch.zeros(1, 3, 48, 64))


def test_adain_of_a_flat_feature_is_finite():
    """σ = 0 (a constant channel) on either side: eq. 4 with ε stays finite."""
    from mpcnet.archs.apff_arch import AdaIN

    flat, varied = torch.full((1, 4, 8, 8), 0.3), torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    a = AdaIN()(flat, varied)  # (F_GAN − μ)/σ is 0: the spatial features' mean
    torch.testing.assert_close(a, varied.mean(dim=(2, 3), keepdim=True).expand_as(a))
    assert torch.isfinite(AdaIN()(varied, flat)).all()


def test_ablation_blocks_compute_their_formulas():
    """use_sft=False: F_guide = conv1×1(concat[F_g1, F_s1, F_parse]); use_gan_prior=False:
    F_out = SFT(F_s1) = α ⊙ F_s1 + β (Table 1)."""
    from mpcnet.archs.apff_arch import APFF, AdaIN

    torch.manual_seed(0)
    f_sp, f_gan, f_parse = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8), torch.randn(1, 4, 8, 8)
    no_sft = APFF(8, 4, num_rcab=1, use_sft=False).eval()
    no_gan = APFF(8, 4, num_rcab=1, use_gan_prior=False).eval()
    with torch.no_grad():
        r = no_sft.rcabs(f_sp)
        a = AdaIN()(f_gan, f_sp)
        guide = no_sft.fuse(torch.cat([no_sft.conv_g1(a), no_sft.conv_s1(r), f_parse], dim=1))
        w = torch.sigmoid(guide[:, :8] - guide[:, 8:])
        f_g2, f_s2 = no_sft.conv_g2(a), no_sft.conv_s2(r)
        torch.testing.assert_close(no_sft(f_sp, f_gan, f_parse), w * f_g2 + (1 - w) * f_s2, atol=1e-5, rtol=1e-5)
        f_s1 = no_gan.conv_s1(no_gan.rcabs(f_sp))
        expected = no_gan.sft.alpha(f_parse) * f_s1 + no_gan.sft.beta(f_parse)
        torch.testing.assert_close(no_gan(f_sp, None, f_parse), expected)


def test_the_shipped_checkpoint_rebuilds_strictly_and_restores_at_its_own_size():
    """weights/mpcnet_s256.pth rebuilt from the architecture it records (a strict load: every layer's name
    and shape as trained) restores two held-out faces at 256 px, degraded with its stage-3 ranges
    (options/train_mpcnet_s256.yml): PSNR above the input's (the identity, its residual output at
    initialisation, gains 0). Construction changes that random weights cannot tell from the design
    (kernel sizes, layer counts, activation slopes) fail here."""
    net = network_from_checkpoint(load_checkpoint(REPO / "weights" / "mpcnet_s256.pth"))
    stage3 = yaml.safe_load((REPO / "options" / "train_mpcnet_s256.yml").read_text())
    ranges = {**PAPER_RANGES, **stage3["datasets"]["train"]["degradation"]}
    gains = []
    for i, face in enumerate(heldout_faces(2).values()):
        gt = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
        lq, _ = degrade(gt.astype(np.float32) / 255, np.random.default_rng(i), ranges, out_size=256)
        lq = np.round(lq.clip(0, 1) * 255).astype(np.uint8)
        x = img2tensor(lq.astype(np.float32) / 255, bgr2rgb=True, float32=True).unsqueeze(0) * 2 - 1
        out = tensor2img(run(net, x), rgb2bgr=True, min_max=(-1, 1))
        gains.append(psnr(out, gt) - psnr(lq, gt))
    assert np.mean(gains) > 0.1, gains
