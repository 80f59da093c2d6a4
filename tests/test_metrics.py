"""Section 4.2's metrics on the real shared faces: agreement with BasicSR/independent formulas and known orderings."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_psnr, calculate_ssim
from skimage.metrics import structural_similarity

from mpcnet.metrics import MetricUnavailable
from mpcnet.metrics.fid import FeatureExtractor, FIDStats, frechet_distance, inception_extractor, reference_stats
from mpcnet.metrics.identity import IdentitySimilarity
from mpcnet.metrics.lpips_metric import LPIPS
from mpcnet.metrics.niqe import niqe
from mpcnet.metrics.pixel import psnr, ssim

BLURS = (1.5, 3.0)


def load(path, size=512):
    return cv2.resize(cv2.imread(str(path)), (size, size), interpolation=cv2.INTER_AREA)


def blur(img, sigma):
    return cv2.GaussianBlur(img, (0, 0), sigma)


@pytest.fixture(scope="module")
def faces512(hq_faces):
    return [load(p) for p in hq_faces[:4]]


def test_psnr_ssim_match_basicsr_and_the_formulas_on_rgb(faces512):
    gt = faces512[0]
    out = blur(gt, 1.5)
    rgb_out, rgb_gt = out[..., ::-1], gt[..., ::-1]
    assert psnr(out, gt) == calculate_psnr(rgb_out, rgb_gt, crop_border=0)
    assert ssim(out, gt) == calculate_ssim(rgb_out, rgb_gt, crop_border=0)
    mse = np.mean((out.astype(np.float64) - gt.astype(np.float64)) ** 2)
    assert psnr(out, gt) == pytest.approx(10 * math.log10(255.0 ** 2 / mse), abs=1e-9)
    independent = structural_similarity(rgb_out, rgb_gt, channel_axis=2, data_range=255, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False, K1=0.01, K2=0.03)
    assert ssim(out, gt) == pytest.approx(independent, abs=2e-3)
    # float [0,1] input is quantised to the same 8-bit image
    assert psnr(out.astype(np.float32) / 255, gt) == psnr(out, gt)


def test_identical_images_give_inf_psnr_and_unit_ssim(faces512):
    assert psnr(faces512[1], faces512[1].copy()) == math.inf
    assert ssim(faces512[1], faces512[1].copy()) == pytest.approx(1.0, abs=1e-12)


def test_more_blur_lower_psnr_ssim_higher_niqe(faces512):
    for gt in faces512:
        versions = [gt] + [blur(gt, s) for s in BLURS]
        p = [psnr(v, gt) for v in versions[1:]]
        s = [ssim(v, gt) for v in versions[1:]]
        n = [niqe(v) for v in versions]
        assert p[0] > p[1] and s[0] > s[1], (p, s)
        assert n[0] < n[1] < n[2], n


def test_niqe_refuses_images_too_small_for_its_blocks(faces512):
    with pytest.raises(ValueError, match="96"):
        niqe(cv2.resize(faces512[0], (128, 128)))


def random_conv_extractor() -> FeatureExtractor:
    """A fixed (seeded) random conv net: any fixed extractor gives a valid Fréchet distance."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 5, 2), torch.nn.ReLU(), torch.nn.Conv2d(24, 24, 3, 2),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)).eval()
    return FeatureExtractor("random-conv-seed0", net)


def test_fid_is_zero_against_itself_and_grows_with_blur(hq_faces):
    ext = random_conv_extractor()
    clean = [load(p, 128) for p in hq_faces]
    ref = FIDStats.of(ext.features(clean))
    assert ref.count == len(hq_faces) >= 40
    assert frechet_distance(ref, FIDStats.of(ext.features(clean))) == pytest.approx(0.0, abs=1e-6)
    fids = [frechet_distance(ref, FIDStats.of(ext.features(blur(c, s) for c in clean))) for s in (0.8, 1.5, 3.0)]
    assert 0 < fids[0] < fids[1] < fids[2], fids


def test_fid_reference_statistics_are_cached_by_file_list(hq_faces, tmp_path):
    ext = random_conv_extractor()
    files = list(hq_faces[:12])
    root = files[0].parent
    first, cached = reference_stats(root, files, lambda p: load(p, 64), ext, cache=tmp_path)
    assert not cached and len(list(tmp_path.glob("*.npz"))) == 1
    again, cached = reference_stats(root, files, lambda p: load(p, 64), ext, cache=tmp_path)
    assert cached and np.array_equal(first.mu, again.mu) and np.array_equal(first.sigma, again.sigma)
    fewer, cached = reference_stats(root, files[:-1], lambda p: load(p, 64), ext, cache=tmp_path)
    assert not cached and fewer.count == 11 and len(list(tmp_path.glob("*.npz"))) == 2
    with pytest.raises(MetricUnavailable, match="at least 2"):
        FIDStats.of(np.zeros((1, 8)))


def test_lpips_zero_on_identical_images_and_positive_on_distortion(faces512, tmp_path):
    import torchvision
    torch.manual_seed(0)  # a seeded AlexNet in torchvision's file layout stands in for the ImageNet file
    backbone = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), backbone)
    metric = LPIPS(backbone=backbone)
    small = cv2.resize(faces512[0], (128, 128), interpolation=cv2.INTER_AREA)
    assert metric(small, small.copy()) == 0.0
    assert metric(blur(small, 2.0), small) > 0.0
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(MetricUnavailable, match="AlexNet"):
        LPIPS(backbone=tmp_path / "other.pth")


def test_identity_similarity_is_one_for_the_same_face(faces512):
    from gfpgan.archs.arcface_arch import ResNetArcFace
    torch.manual_seed(0)
    metric = IdentitySimilarity(ResNetArcFace(block="IRBlock", layers=(2, 2, 2, 2), use_se=False).state_dict())
    assert metric(faces512[0], faces512[0].copy()) == pytest.approx(1.0, abs=1e-5)
    assert metric(faces512[0], faces512[1]) < 0.9999


@pytest.mark.parametrize("build, name", [(LPIPS, "lpips-alex"), (inception_extractor, "inception-fid"),
                                         (IdentitySimilarity, "arcface")])
def test_network_metrics_without_weights_are_skipped_with_the_reason(build, name):
    from mpcnet.weights import WeightsError, resolve
    try:
        resolve(name)
        pytest.skip(f"'{name}' is present here; the absent-weights path cannot be exercised")
    except WeightsError:
        pass
    with pytest.raises(MetricUnavailable, match=name):
        build()


def test_grad_ratio_is_the_sobel_energy_ratio_and_falls_with_blur(hq_faces):
    from mpcnet.metrics.pixel import grad_ratio, gradient_magnitude

    ramp = np.tile(np.arange(0, 128, 2, dtype=np.uint8), (64, 1))  # +2 grey levels per pixel along x
    # Sobel's x kernel gives 8 × 2 inside; the two border columns (reflected) give 0: 16 · 62 / 64
    assert gradient_magnitude(np.dstack([ramp] * 3)) == pytest.approx(15.5)
    face = cv2.resize(cv2.imread(str(hq_faces[1])), (512, 512), interpolation=cv2.INTER_AREA)
    assert grad_ratio(face, face) == 1.0
    ratios = [grad_ratio(cv2.GaussianBlur(face, (0, 0), s), face) for s in (0.7, 1.5, 3.0)]
    assert 1 > ratios[0] > ratios[1] > ratios[2] > 0.1
    noisy = np.clip(face + np.random.default_rng(0).normal(0, 12, face.shape), 0, 255).astype(np.uint8)
    assert grad_ratio(noisy, face) > 1.2  # noise reads as (false) detail: the target band is 0.75–1.25
