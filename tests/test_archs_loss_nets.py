"""The discriminator (spectral norm everywhere) and the VGG / VGGFace feature extractor."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torchvision.models import vgg16, vgg19

from mpcnet.archs.discriminator_arch import MPCDiscriminator, MPCPatchDiscriminator
from mpcnet.archs.vgg_arch import MPCVGGFeatureExtractor
from mpcnet.checkpoint import save_checkpoint
from mpcnet.weights import WeightsError, get_entry, locate
from tests.test_archs import face_tensor


@pytest.mark.parametrize("size", [64, 128])
def test_discriminator_scores_and_spectral_norm_on_every_layer(size, aligned_faces):
    torch.manual_seed(0)
    net = MPCDiscriminator(out_size=size, narrow=0.125).train()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 2 * (size.bit_length() - 3) + 4
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    x = face_tensor(aligned_faces[0], size, batch=2)
    for _ in range(3):  # one power iteration per training-mode forward (15 at creation)
        out = net(x)
    assert out.shape == (2, 1)
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1) < 0.05, (m, sigma)
    # hinge loss gradients reach every layer
    torch.relu(1 - out).mean().backward()
    assert all(m.parametrizations.weight.original.grad.abs().sum() > 0 for m in layers)


def test_patch_discriminator_learns_to_tell_sharp_faces_from_blurred(hq_faces):
    """The patch discriminator (spectral norm on every conv) scores each ~46 px patch and, trained with
    eq. 9's hinge loss on real CelebA-HQ faces against blurred copies (what an L1-trained restorer
    gives), separates them within 40 Adam steps: its loss leaves chance (2.0) and real patches score
    above blurred ones on faces it did not train on."""
    torch.manual_seed(0)
    net = MPCPatchDiscriminator().train()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(parametrize.is_parametrized(m, "weight") for m in convs)

    def pair(paths):
        sharp = torch.cat([face_tensor(p, 128) for p in paths])
        blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in sharp.numpy().transpose(0, 2, 3, 1)])
        blurred = torch.from_numpy(blurred.transpose(0, 3, 1, 2).copy())
        return sharp, blurred
    sharp, blurred = pair(hq_faces[:4])
    assert net(sharp).shape == (4, 1, 16, 16)
    optim = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.9, 0.99))
    for _ in range(40):
        loss = torch.relu(1 - net(sharp)).mean() + torch.relu(1 + net(blurred)).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert loss.item() < 1.5, loss.item()
    held_sharp, held_blurred = pair(hq_faces[4:7])
    with torch.no_grad():
        assert net(held_sharp).mean() > net(held_blurred).mean()


def _write_torchvision(tmp_path, arch):
    torch.manual_seed(0)
    net = arch(weights=None)
    save_checkpoint({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, tmp_path / "vgg.pth")
    return net, tmp_path / "vgg.pth"


def test_vgg19_torchvision_layout_from_a_file(tmp_path, aligned_faces):
    ref, path = _write_torchvision(tmp_path, vgg19)
    ext = MPCVGGFeatureExtractor(["conv1_1", "relu2_1", "relu5_1"], weights=str(path))
    assert ext.vgg_type == "vgg19" and not any(p.requires_grad for p in ext.parameters())
    x = (face_tensor(aligned_faces[0], 64) + 1) / 2
    with torch.no_grad():
        feats = ext(x)
        normed = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
            [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        expected_relu5_1 = ref.features[:30](normed)  # relu5_1 is torchvision's features[29]
        expected_conv1_1 = ref.features[0](normed)
    torch.testing.assert_close(feats["relu5_1"], expected_relu5_1)
    torch.testing.assert_close(feats["conv1_1"], expected_conv1_1)  # not overwritten by an in-place ReLU
    assert feats["relu2_1"].shape == (1, 128, 32, 32)
    ext.train()
    assert not ext.training


def test_vggface_layout_loads_as_vgg16(tmp_path, aligned_faces):
    """A VGGFace checkpoint (vgg_face_dag layout: conv1_1.weight …, fc6 …) maps onto torchvision's VGG16."""
    torch.manual_seed(0)
    ref = vgg16(weights=None)
    convs = [m for m in ref.features if isinstance(m, nn.Conv2d)]
    names = [f"conv{b}_{i}" for b, n in enumerate([2, 2, 3, 3, 3], 1) for i in range(1, n + 1)]
    state = {f"{name}.{k}": getattr(conv, k).detach() for name, conv in zip(names, convs) for k in ("weight", "bias")}
    state |= {"fc6.weight": torch.zeros(8, 8), "fc6.bias": torch.zeros(8)}
    save_checkpoint(state, tmp_path / "vgg_face_dag.pth")
    ext = MPCVGGFeatureExtractor(["relu1_1", "relu4_1"], weights=str(tmp_path / "vgg_face_dag.pth"))
    assert ext.vgg_type == "vgg16"
    x = (face_tensor(aligned_faces[1], 64) + 1) / 2
    mean = torch.tensor([129.186279296875, 104.76238250732422, 93.59396362304688]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref.features[:19](x * 255 - mean)  # relu4_1 is VGG16's features[18]
        got = ext(x)["relu4_1"]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


def test_vgg_weights_are_never_invented():
    if locate(get_entry("vgg19")) is not None:
        pytest.skip("vgg19 weights are present here")
    with pytest.raises(WeightsError, match="vgg19"):
        MPCVGGFeatureExtractor(weights="vgg19")  # absent here: one clear error, no download
    with pytest.warns(UserWarning, match="random weights"):
        ext = MPCVGGFeatureExtractor(["relu3_1"], random_init=True)
    assert len(ext.vgg_net) == 12
    with pytest.raises(ValueError, match="no layer relu6_1"), pytest.warns(UserWarning):
        MPCVGGFeatureExtractor(["relu6_1"], random_init=True)
