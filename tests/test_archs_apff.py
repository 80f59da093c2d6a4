"""APFF block, eq. 4–7: AdaIN statistics, SFT, the pairwise-softmax gate and the fusion formula."""
from __future__ import annotations

import torch

from mpcnet.archs.apff_arch import APFF, AdaIN, pairwise_softmax_gate


def test_adain_takes_the_spatial_features_statistics():
    torch.manual_seed(0)
    f_gan = torch.randn(2, 8, 16, 16) * 3 + 5
    f_spatial = torch.randn(2, 8, 16, 16) * torch.rand(1, 8, 1, 1) * 4 - torch.rand(1, 8, 1, 1)
    out = AdaIN()(f_gan, f_spatial)
    torch.testing.assert_close(out.mean(dim=(2, 3)), f_spatial.mean(dim=(2, 3)), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3), correction=0), f_spatial.std(dim=(2, 3), correction=0),
                               atol=1e-3, rtol=1e-3)
    # the content (normalised F_GAN) is kept: per-channel correlation with F_GAN is 1
    centred = lambda t: t - t.mean(dim=(2, 3), keepdim=True)  # noqa: E731
    corr = (centred(out) * centred(f_gan)).sum(dim=(2, 3)) / (
        centred(out).norm(dim=(2, 3)) * centred(f_gan).norm(dim=(2, 3)))
    torch.testing.assert_close(corr, torch.ones_like(corr))


def test_gate_is_the_pairwise_softmax_and_in_0_1():
    torch.manual_seed(0)
    guide = torch.randn(2, 12, 8, 8) * 3
    w = pairwise_softmax_gate(guide)
    expected = torch.softmax(torch.stack(guide.chunk(2, dim=1)), dim=0)[0]
    torch.testing.assert_close(w, expected)
    assert w.shape == (2, 6, 8, 8)
    assert (w > 0).all() and (w < 1).all()


def test_apff_output_is_eq7_on_a_hand_built_input():
    """Run each stage by hand (eq. 4, 5, 6, 7) and compare with the block's forward."""
    torch.manual_seed(0)
    c, cp = 8, 5
    block = APFF(c, cp, num_rcab=2).eval()
    f_sp, f_gan, f_parse = torch.randn(1, c, 16, 16), torch.randn(1, c, 16, 16) * 2, torch.randn(1, cp, 16, 16)
    with torch.no_grad():
        out = block(f_sp, f_gan, f_parse)
        a = AdaIN()(f_gan, f_sp)                                              # eq. 4
        r = block.rcabs(f_sp)
        f_g1, f_g2, f_s1, f_s2 = block.conv_g1(a), block.conv_g2(a), block.conv_s1(r), block.conv_s2(r)
        alpha, beta = block.sft.alpha(f_parse), block.sft.beta(f_parse)        # eq. 5
        f_guide = alpha * torch.cat([f_g1, f_s1], 1) + beta                  # eq. 6
        e = f_guide.exp()
        w = e[:, :c] / (e[:, :c] + e[:, c:])                                 # softmax over the pair
        expected = (f_g2 - f_s2) * w + f_s2                                  # eq. 7
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert alpha.shape[1] == beta.shape[1] == 2 * c


def test_apff_blends_between_gan_and_spatial_features():
    """F_out is a per-pixel convex blend of F_g2 and F_s2: it lies between them everywhere."""
    torch.manual_seed(1)
    block = APFF(8, 4, num_rcab=1).eval()
    f_sp, f_gan, f_parse = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8), torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        out = block(f_sp, f_gan, f_parse)
        f_g2, f_s2 = block.conv_g2(block.adain(f_gan, f_sp)), block.conv_s2(block.rcabs(f_sp))
    lo, hi = torch.minimum(f_g2, f_s2), torch.maximum(f_g2, f_s2)
    assert ((out >= lo - 1e-5) & (out <= hi + 1e-5)).all()
    assert not torch.allclose(out, f_s2) and not torch.allclose(out, f_g2)
