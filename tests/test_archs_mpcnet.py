"""MPCNet as a whole: frozen priors, gradients, Table 1 ablation switches, precision/layout, checkpoints."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from mpcnet.archs import network_from_checkpoint
from mpcnet.archs.apff_arch import AdaIN
from mpcnet.archs.mpcnet_arch import MPCNet
from mpcnet.checkpoint import load_checkpoint, save_checkpoint
from tests.test_archs import SMALL, face_tensor


def called_modules(net, x) -> set[str]:
    """Names of the sub-modules a forward pass calls."""
    called, handles = set(), []
    for name, module in net.named_modules():
        handles.append(module.register_forward_hook(lambda m, i, o, name=name: called.add(name)))
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return called


def param_shapes(net) -> dict[str, tuple]:
    return {n: tuple(p.shape) for n, p in net.named_parameters()}


@pytest.fixture(scope="module")
def face64(aligned_faces):
    return face_tensor(aligned_faces[3], 64, batch=2)


def test_frozen_priors_get_no_gradient_and_every_trainable_part_does(aligned_faces):
    torch.manual_seed(0)
    net = MPCNet(out_size=128, **SMALL).train()
    assert not net.stylegan.training and not net.parsenet.training  # frozen priors stay in eval mode
    bn = net.parsenet.encoder[1].conv1.norm.norm
    running = bn.running_mean.clone()
    lq, hq = face_tensor(aligned_faces[4], 128, 2), face_tensor(aligned_faces[5], 128, 2)
    start = time.perf_counter()
    F.l1_loss(net(lq), hq).backward()
    seconds = time.perf_counter() - start
    print(f"MPCNet-128 (narrow) forward+backward, batch 2: {seconds:.2f} s")
    assert seconds < 30  # a few seconds on an idle 2-core CPU; generous for a busy one
    assert torch.equal(bn.running_mean, running)
    for name, p in net.named_parameters():
        frozen = name.startswith(("stylegan.", "parsenet."))
        assert p.requires_grad != frozen and (p.grad is None) == frozen, name
    for name, part in trainable_parts(net):
        assert sum(p.grad.abs().sum() for p in part.parameters()) > 0, name


def trainable_parts(net):
    """Every trainable unit: encoder blocks, latent MLP, each up conv and each APFF's sub-blocks, ToRGB."""
    parts = [("conv_first", net.conv_first), ("final_conv", net.final_conv), ("to_rgb", net.to_rgb)]
    parts += [(f"down.{j}", m) for j, m in enumerate(net.down)] + [(f"up.{j}", m) for j, m in enumerate(net.up)]
    parts += [("latent_mlp", net.latent_mlp)] if net.latent_mlp is not None else []
    for j, apff in enumerate(net.apff):
        parts += [(f"apff.{j}.{n}", m) for n, m in apff.named_children() if any(True for _ in m.parameters())]
    return parts


def test_unfrozen_priors_train_except_their_unused_outputs(face64):
    torch.manual_seed(0)
    net = MPCNet(out_size=64, freeze_gan=False, freeze_parse=False, **SMALL).train()
    assert net.stylegan.training and net.parsenet.training
    net(face64).abs().mean().backward()
    unused = ("stylegan.style_mlp.", "stylegan.to_rgb", "parsenet.out_img_conv.", "parsenet.out_mask_conv.")
    for name, p in net.named_parameters():
        assert p.requires_grad == (not name.startswith(unused)), name
        assert (p.grad is not None) == p.requires_grad, name
    priors = [("stylegan.style_conv1", net.stylegan.style_conv1), ("stylegan.constant_input", net.stylegan.constant_input)]
    priors += [(f"stylegan.style_convs.{j}", m) for j, m in enumerate(net.stylegan.style_convs)]
    priors += [(f"parsenet.{n}", m) for n, m in net.parsenet.named_children() if n not in ("out_img_conv", "out_mask_conv")]
    for name, part in priors + trainable_parts(net):
        assert sum(p.grad.abs().sum() for p in part.parameters()) > 0, name


def test_ablation_without_gan_prior(face64):
    full, ablated = MPCNet(out_size=64, **SMALL), MPCNet(out_size=64, use_gan_prior=False, **SMALL)
    assert ablated.stylegan is None and ablated.latent_mlp is None
    shapes, kept = param_shapes(full), param_shapes(ablated)
    removed = {n for n in shapes if n not in kept}
    assert removed == {n for n in shapes if n.startswith(("stylegan.", "latent_mlp."))
                       or any(f".{c}." in n for c in ("conv_g1", "conv_g2", "conv_s2"))}
    # the SFT now modulates F_s1 alone (C channels instead of concat[F_g1, F_s1], 2C)
    for n in kept:  # the last conv of each SFT branch
        halves = ".sft." in n and n.rsplit(".", 2)[-2] == "2"
        assert kept[n] == ((shapes[n][0] // 2, *shapes[n][1:]) if halves else shapes[n]), n
    called = called_modules(ablated, face64)
    assert not any(isinstance(m, AdaIN) for m in ablated.modules())
    assert "parsenet.encoder" in called and "apff.0.sft" in called
    assert ablated(face64).shape == face64.shape


def test_ablation_without_adain(face64):
    torch.manual_seed(0)
    full = MPCNet(out_size=64, **SMALL).eval()
    ablated = MPCNet(out_size=64, use_adain=False, **SMALL).eval()
    assert param_shapes(full) == param_shapes(ablated)  # AdaIN has no parameters
    ablated.load_state_dict(full.state_dict())
    assert "apff.0.adain" in called_modules(full, face64)
    assert not any(isinstance(m, AdaIN) for m in ablated.modules())
    # conv_g1 sees F_GAN itself
    seen = {}
    ablated.apff[2].conv_g1.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0]))
    with torch.no_grad():
        out_ablated, out_full = ablated(face64), full(face64)
        f_spatial, _ = ablated.encode(face64)
        latent = ablated.latent_mlp(f_spatial.mean(dim=(2, 3))).view(2, ablated.stylegan.num_latent, -1)
        f_gan = ablated.stylegan.features(latent)
    torch.testing.assert_close(seen["x"], f_gan[32])
    assert not torch.allclose(out_ablated, out_full)


def test_ablation_without_parse_prior(face64):
    full = MPCNet(out_size=64, **SMALL)
    ablated = MPCNet(out_size=64, use_parse_prior=False, **SMALL)
    assert ablated.parsenet is None
    shapes, kept = param_shapes(full), param_shapes(ablated)
    assert set(shapes) - set(kept) == {n for n in shapes if n.startswith("parsenet.") or ".sft." in n}
    assert all(kept[n] == shapes[n] for n in kept)
    out, logits = ablated(face64, return_parse=True)
    assert logits is None and out.shape == face64.shape
    assert not any(".sft" in n or "parsenet" in n for n in called_modules(ablated, face64))


def test_ablation_without_sft_still_uses_the_parse_prior(face64):
    torch.manual_seed(0)
    full, ablated = MPCNet(out_size=64, **SMALL), MPCNet(out_size=64, use_sft=False, **SMALL).eval()
    shapes, kept = param_shapes(full), param_shapes(ablated)
    assert set(shapes) - set(kept) == {n for n in shapes if ".sft." in n}
    added = set(kept) - set(shapes)
    assert added == {f"apff.{j}.fuse.{k}" for j in range(len(ablated.apff)) for k in ("weight", "bias")}
    called = called_modules(ablated, face64)
    assert "parsenet.decoder.0" in called and "apff.0.fuse" in called and not any(".sft" in n for n in called)
    # the output depends on the parser: change its weights and the output changes
    with torch.no_grad():
        before = ablated(face64)
        ablated.parsenet.decoder[-1].conv2.conv2d.weight.mul_(-1)
        assert not torch.allclose(before, ablated(face64))


def test_bf16_autocast_and_channels_last(face64):
    torch.manual_seed(0)
    net = MPCNet(out_size=64, **SMALL).eval()
    with torch.inference_mode():
        ref = net(face64)
        net_cl = net.to(memory_format=torch.channels_last)
        out_cl = net_cl(face64.contiguous(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = net_cl(face64.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, ref, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(out_bf16).all()
    rel = (out_bf16.float() - ref).norm() / ref.norm()
    assert rel < 0.1, rel


def test_checkpoint_rebuilds_without_prior_files(tmp_path, face64):
    torch.manual_seed(0)
    net = MPCNet(out_size=64, use_sft=False, **SMALL).eval()
    arch = net.arch_config
    assert arch["type"] == "MPCNet" and arch["use_sft"] is False and "gan_prior_path" not in arch
    assert all(isinstance(v, (int, float, bool, str)) for v in arch.values())
    save_checkpoint({"params": net.state_dict(), "arch": arch, "meta": {}}, tmp_path / "net.pth")
    rebuilt = network_from_checkpoint(load_checkpoint(tmp_path / "net.pth"))
    with torch.inference_mode():
        assert torch.equal(rebuilt(face64), net(face64))


def test_prior_weights_load_by_path_into_the_priors(tmp_path, face64):
    """Pretrained priors load from files in the public layouts (here: random ones we saved)."""
    from facexlib.parsing.parsenet import ParseNet
    from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean

    torch.manual_seed(0)
    gan = StyleGAN2GeneratorClean(64, num_style_feat=SMALL["num_style_feat"], num_mlp=8, channel_multiplier=1,
                                  narrow=SMALL["narrow"])
    parse = ParseNet(64, 64, min_feat_size=4, base_ch=16, res_depth=2, ch_range=[16, 32])
    save_checkpoint({"params_ema": gan.state_dict()}, tmp_path / "gan.pth")
    save_checkpoint(parse.state_dict(), tmp_path / "parse.pth")
    net = MPCNet(out_size=64, gan_prior_path=str(tmp_path / "gan.pth"),
                 parse_prior_path=str(tmp_path / "parse.pth"), **SMALL)
    torch.testing.assert_close(net.stylegan.constant_input.weight, gan.constant_input.weight)
    torch.testing.assert_close(net.parsenet.body[0].conv1.conv2d.weight, parse.body[0].conv1.conv2d.weight)
    assert not any(p.requires_grad for p in net.stylegan.parameters())
    with pytest.raises(ValueError, match="does not fit this StyleGAN2GeneratorNoNoise .*size mismatch"):
        MPCNet(out_size=64, **(SMALL | dict(channel_multiplier=2)), gan_prior_path=str(tmp_path / "gan.pth"))
    with pytest.raises(ValueError, match="use_gan_prior=False"):
        MPCNet(out_size=64, use_gan_prior=False, gan_prior_path=str(tmp_path / "gan.pth"), **SMALL)


def test_a_whole_mpcnet_file_gives_its_parsing_prior_to_a_variant_without_the_gan_prior(tmp_path):
    """The w/o-GAN ablation of a shipped model takes that model's parsing prior straight from its file."""
    torch.manual_seed(0)
    full = MPCNet(out_size=64, **SMALL)
    save_checkpoint({"params": full.state_dict()}, tmp_path / "full.pth")
    torch.manual_seed(1)
    variant = MPCNet(out_size=64, use_gan_prior=False, parse_prior_path=str(tmp_path / "full.pth"), **SMALL)
    for name, value in full.parsenet.state_dict().items():
        torch.testing.assert_close(variant.parsenet.state_dict()[name], value)
    assert not torch.equal(next(variant.down.parameters()), next(full.down.parameters()))  # only the prior came over


# The 256 px CPU MPCNet of issue 12 (its stage-3 option file comes with the training branch):
# stage 1 on the face pool's pseudo labels must train exactly its parsing prior.
MPCNET_256 = {"type": "MPCNet", "out_size": 256, "num_style_feat": 128, "channel_multiplier": 1, "narrow": 0.125,
              "num_mlp": 4, "num_latent_mlp": 2, "num_rcab": 1, "use_gan_prior": True, "use_adain": True,
              "use_parse_prior": True, "use_sft": True, "parse_min_feat_size": 4, "parse_base_ch": 16,
              "parse_res_depth": 4, "parse_max_ch": 128}


@pytest.mark.parametrize("stage1, stage3", [
    *(("train_parsenet_512.yml", name) for name in ("train_mpcnet_512.yml", "ablation/mpcnet_512_no_adain.yml",
                                                   "ablation/mpcnet_512_no_gan_prior.yml",
                                                   "ablation/mpcnet_512_no_sft.yml")),
    ("train_parsenet_pool256.yml", MPCNET_256)])
def test_stage1_parser_fits_the_stage3_networks(stage1, stage3):
    """The parser a stage-1 option file trains loads, strictly, into the stage-3 networks that use it."""
    import yaml
    from basicsr.utils.registry import ARCH_REGISTRY

    options = Path(__file__).resolve().parents[1] / "options"

    def build(spec):
        opt = dict(spec if isinstance(spec, dict) else yaml.safe_load((options / spec).read_text())["network_g"])
        opt.pop("gan_prior_path", None), opt.pop("parse_prior_path", None)
        with torch.device("meta"):
            return ARCH_REGISTRY.get(opt.pop("type"))(**opt)

    parser, net = build(stage1), build(stage3)
    net.parsenet.load_state_dict(parser.state_dict(), strict=True, assign=True)
    assert {k: v.shape for k, v in parser.state_dict().items()} == \
        {k: v.shape for k, v in net.parsenet.state_dict().items()}


def test_residual_mpcnet_starts_as_the_identity_and_adds_its_correction(face64):
    net = MPCNet(out_size=64, residual=True, **SMALL).eval()
    with torch.no_grad():
        assert torch.equal(net(face64), face64)
        torch.nn.init.normal_(net.to_rgb.weight, std=0.1)
        plain = MPCNet(out_size=64, **SMALL).eval()
        plain.load_state_dict(net.state_dict())
        torch.testing.assert_close(net(face64), plain(face64) + face64)
    assert net.arch_config["residual"] is True


def test_out_size_is_a_power_of_two_from_8():
    for bad in (4, 48, 96):
        with pytest.raises(ValueError, match=f"power of two ≥ 8, got {bad}"):
            MPCNet(out_size=bad, **SMALL)
    torch.manual_seed(0)
    net = MPCNet(out_size=8, **{**SMALL, "parse_min_feat_size": 2}).eval()  # the smallest: one APFF block
    with torch.no_grad():
        assert net.scales == [8] and net(torch.rand(1, 3, 8, 8) * 2 - 1).shape == (1, 3, 8, 8)


def test_scales_under_the_parsers_smallest_map_get_that_map_mean_pooled(face64):
    """F_parse^8 of a parser whose smallest map is 16 px: that map, each 2×2 block averaged."""
    torch.manual_seed(0)
    net = MPCNet(out_size=64, **{**SMALL, "parse_min_feat_size": 16}).eval()
    with torch.no_grad():
        feats, f_parse = net.parsenet.features(face64), net.parse_features(face64)
        assert sorted(feats) == [16, 32, 64] and sorted(f_parse) == net.scales == [8, 16, 32, 64]
        assert all(torch.equal(f_parse[s], feats[s]) for s in (16, 32, 64))
        b, c = feats[16].shape[:2]
        assert torch.allclose(f_parse[8], feats[16].view(b, c, 8, 2, 8, 2).mean((3, 5)), atol=1e-6)
        assert net(face64).shape == face64.shape  # the APFF block at 8 takes the pooled map's channels


def test_widened_bundled_model_gives_the_same_faces_and_its_new_channels_learn(tmp_path, aligned_faces):
    """The bundled 256 px file widened to twice its finest width (channel_floor): the widened checkpoint
    restores a real face exactly as the file does, and one loss's gradient reaches the weights on the
    new channels."""
    from mpcnet.archs import load_network, widen_checkpoint

    bundled = Path(__file__).resolve().parents[1] / "weights" / "mpcnet_s256.pth"
    narrow, _ = load_network(bundled)
    width = narrow.to_rgb.in_channels  # the 256 px scale's
    arch = widen_checkpoint(bundled, tmp_path / "wide.pth", channel_floor=2 * width)
    wide, size = load_network(tmp_path / "wide.pth")
    assert arch["channel_floor"] == 2 * width and size == 256 and wide.to_rgb.in_channels == 2 * width
    x = face_tensor(aligned_faces[5], 256)
    with torch.no_grad():
        out = wide(x)
        torch.testing.assert_close(out, narrow(x), atol=1e-6, rtol=0)
        assert (out - x).abs().mean() > 0.01  # a network that changes the face, not the identity
    F.l1_loss(wide.train()(x), x.flip(-1)).backward()
    assert wide.to_rgb.weight.grad[:, width:].abs().sum() > 0


def test_widening_refuses_to_narrow_and_the_floor_needs_no_gan_prior(tmp_path):
    from mpcnet.archs import widen_checkpoint
    from mpcnet.checkpoint import CheckpointError

    torch.manual_seed(0)
    net = MPCNet(out_size=64, residual=True, channel_floor=24, **{**SMALL, "use_gan_prior": False})
    save_checkpoint({"params": net.state_dict(), "arch": net.arch_config}, tmp_path / "floor24.pth")
    with pytest.raises(CheckpointError, match="narrows"):
        widen_checkpoint(tmp_path / "floor24.pth", tmp_path / "out.pth", channel_floor=0)
    assert not (tmp_path / "out.pth").exists()
    with pytest.raises(ValueError, match="use it with use_gan_prior=False"):
        MPCNet(out_size=64, channel_floor=24, **{**SMALL, "use_gan_prior": True})
