"""Dataflow of MPCNet (Fig. 2): a change to one encoder skip, one F_GAN^j or one F_parse^j reaches the
output at every decoder scale, and a local change of the input stays local (the full-resolution
skip carries it, not only the 4×4 bottleneck)."""
from __future__ import annotations

import pytest
import torch

from mpcnet.archs.mpcnet_arch import MPCNet
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
