"""MPCNet network: shapes at every size, the noise-free StyleGAN2 prior, the parsing prior."""
from __future__ import annotations

import cv2
import pytest
import torch
from basicsr.utils import img2tensor
from basicsr.utils.registry import ARCH_REGISTRY

import mpcnet.archs  # noqa: F401 - registers the archs
from mpcnet.archs.mpcnet_arch import MPCNet
from mpcnet.archs.parsenet_arch import MPCParseNet
from mpcnet.archs.stylegan2_nonoise_arch import StyleGAN2GeneratorNoNoise

# a narrow MPCNet that still has every part
SMALL = dict(num_style_feat=32, narrow=0.0625, parse_base_ch=16, parse_max_ch=32, parse_res_depth=2)


def face_tensor(path, size: int, batch: int = 1) -> torch.Tensor:
    """A real aligned face as (batch, 3, size, size) RGB in [-1, 1]."""
    img = cv2.resize(cv2.imread(str(path)), (size, size), interpolation=cv2.INTER_AREA).astype("float32") / 255
    x = img2tensor(img, bgr2rgb=True, float32=True).unsqueeze(0) * 2 - 1
    return x.repeat(batch, 1, 1, 1)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registered():
    """The registry hands out our classes under their names (BasicSR's ``get`` raises for unknown names)."""
    for cls in (MPCNet, StyleGAN2GeneratorNoNoise, MPCParseNet):
        assert ARCH_REGISTRY.get(cls.__name__) is cls
    with pytest.raises(KeyError):
        ARCH_REGISTRY.get("MPCNetThatDoesNotExist")


@pytest.mark.parametrize("size", [64, 128, 256])
def test_mpcnet_shapes(size, aligned_faces):
    torch.manual_seed(0)
    net = MPCNet(out_size=size, **SMALL).eval()
    x = face_tensor(aligned_faces[0], size, batch=2)
    with torch.inference_mode():
        out, logits = net(x, return_parse=True)
    assert out.shape == x.shape and logits.shape == (2, 19, size, size)
    assert torch.isfinite(out).all()
    # one APFF per scale 8…size, one encoder block per halving down to 4×4
    assert len(net.apff) == len(net.down) == size.bit_length() - 3


def test_mpcnet_512_shape_and_param_count(aligned_faces):
    torch.manual_seed(0)
    net = MPCNet(out_size=512, **SMALL).eval()
    with torch.inference_mode():
        out = net(face_tensor(aligned_faces[1], 512))
    assert out.shape == (1, 3, 512, 512)
    assert len(net.apff) == 7 and net.stylegan.num_latent == 16
    with torch.device("meta"):  # the paper-size network: built without memory, counted, not run
        full = MPCNet(out_size=512)
    assert n_params(full) > n_params(full.stylegan) + n_params(full.parsenet)  # README's count: test_readme_numbers


def test_wrong_input_size_is_one_clear_error():
    net = MPCNet(out_size=64, **SMALL)
    with pytest.raises(ValueError, match="needs 64×64 input"):
        net(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError, match="power of two"):
        MPCNet(out_size=100, **SMALL)


def test_noise_free_model_is_deterministic(aligned_faces):
    """GFPGAN/GPEN inject random StyleGAN noise at inference; MPCNet's prior has none."""
    torch.manual_seed(0)
    net = MPCNet(out_size=64, **SMALL).eval()
    x = face_tensor(aligned_faces[2], 64)
    with torch.inference_mode():
        assert torch.equal(net(x), net(x))


def test_stylegan_matches_gfpgan_clean_without_noise():
    """The prior loads GFPGAN's StyleGAN2GeneratorClean state dict strictly and, with GFPGAN's
    noise zeroed, gives the same image (up to float rounding: ours modulates the activations, GFPGAN
    the weights) and the same per-resolution features."""
    from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean

    torch.manual_seed(0)
    kw = dict(num_style_feat=64, num_mlp=2, channel_multiplier=1, narrow=0.125)
    ref = StyleGAN2GeneratorClean(64, **kw).eval()
    for conv in [ref.style_conv1, *ref.style_convs]:
        conv.weight.data.fill_(0.5)  # non-zero noise strengths, so ignoring them is tested
    ours = StyleGAN2GeneratorNoNoise(64, **kw).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)

    z = torch.randn(2, 64)
    # float32 rounding differs with the CPU's kernels: 1e-5 relative (one element in 24,576 was 1.05e-5
    # off on a value of 2.1 on one machine); any real difference in the layers is orders larger

    zeros = [torch.zeros(1)] * ref.num_layers
    with torch.inference_mode():
        expected, _ = ref([z], noise=zeros)
        got, _ = ours([z])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        # W+ latents, per-layer different, as MPCNet feeds them
        latent = torch.randn(2, ours.num_latent, 64)
        expected, _ = ref([latent], input_is_latent=True, noise=zeros)
        got, _ = ours([latent], input_is_latent=True)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        feats = ours.features(latent)
    assert {s: tuple(f.shape) for s, f in feats.items()} == {
        s: (2, ours.channels[s], s, s) for s in (8, 16, 32, 64)}
    # GFPGAN with its (random) noise on differs: the comparison above can fail
    with torch.inference_mode():
        assert not torch.allclose(ref([z])[0], ours([z])[0])


def test_parsenet_features_and_facexlib_layout():
    from facexlib.parsing.parsenet import ParseNet

    torch.manual_seed(0)
    paper = MPCParseNet(in_size=128, out_size=128, base_ch=16, ch_range=(16, 32), res_depth=10).eval()
    assert len(paper.encoder) - 1 == 5 and len(paper.body) == 10 and len(paper.decoder) == 5  # 128 → 4 → 128
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        feats = paper.features(x)
        mask, _ = paper(x)
    assert {s: f.shape[1] for s, f in feats.items()} == paper.feature_channels()
    assert sorted(feats) == [4, 8, 16, 32, 64, 128]
    assert torch.equal(paper.out_mask_conv(feats[128]), mask) and mask.shape[1] == 19
    # facexlib's init_parsing_model('parsenet') builds ParseNet(in_size=512, out_size=512, parsing_ch=19)
    public = ParseNet(in_size=512, out_size=512, parsing_ch=19)
    ours = MPCParseNet(in_size=512, out_size=512, min_feat_size=32)
    ours.load_state_dict(public.state_dict(), strict=True)
    assert sorted(ours.feature_channels()) == [32, 64, 128, 256, 512]


def test_mpcnet_with_a_shallower_parser_pools_its_smallest_map(aligned_faces):
    """With facexlib's shallower parser (smallest map 32×32 at 512, here 16×16 at 128) the APFF
    blocks under that size get the smallest map average-pooled."""
    torch.manual_seed(0)
    net = MPCNet(out_size=128, **(SMALL | dict(parse_min_feat_size=16))).eval()
    assert len(net.parsenet.decoder) == 3
    x = face_tensor(aligned_faces[6], 128)
    with torch.inference_mode():
        f_parse = net.parse_features(x)
        smallest = net.parsenet.features(x)[16]
        out = net(x)
    assert sorted(f_parse) == net.scales == [8, 16, 32, 64, 128]
    torch.testing.assert_close(f_parse[8], torch.nn.functional.avg_pool2d(smallest, 2))
    assert net.apff[0].sft.alpha[0].in_channels == smallest.shape[1]
    assert out.shape == x.shape
