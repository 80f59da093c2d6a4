"""Losses of section 3.4 (eq. 8–10) and the parsing CE, and the CelebAMask-HQ label assembly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import mpcnet.losses  # noqa: F401 - registers the losses
from mpcnet.losses.perceptual_style_loss import style_distance
from tests.conftest import DATA


def face_tensor(path, size=64) -> torch.Tensor:
    img = cv2.resize(cv2.imread(str(path))[:, :, ::-1], (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img.copy()).permute(2, 0, 1).float().div(127.5).sub(1).unsqueeze(0)


def test_gram_style_distance_is_eq10():
    torch.manual_seed(0)
    a, b = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 5, 6)
    expected = 0.0
    for i in range(2):  # ||φ^Tφ − φ̂^Tφ̂||² / (C·H·W), written out per image, then averaged
        fa, fb = a[i].reshape(8, -1), b[i].reshape(8, -1)
        expected += ((fa @ fa.T - fb @ fb.T) ** 2).sum() / (8 * 5 * 6)
    torch.testing.assert_close(style_distance(a, b), expected / 2)
    assert style_distance(a, a).item() == 0


def test_hinge_gan_loss_is_eq9():
    from basicsr.utils.registry import LOSS_REGISTRY

    hinge = LOSS_REGISTRY.get("GANLoss")(gan_type="hinge", loss_weight=1.0)
    torch.manual_seed(0)
    real, fake = torch.randn(16), torch.randn(16)
    d_loss = hinge(real, True, is_disc=True) + hinge(fake, False, is_disc=True)
    torch.testing.assert_close(d_loss, F.relu(1 - real).mean() + F.relu(1 + fake).mean())
    torch.testing.assert_close(hinge(fake, True, is_disc=False), -fake.mean())


def test_parse_ce_loss_matches_cross_entropy_ignores_and_resizes():
    from basicsr.utils.registry import LOSS_REGISTRY

    ce = LOSS_REGISTRY.get("ParseCELoss")(loss_weight=2.0)
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 19, 8, 8), torch.randint(0, 19, (2, 8, 8))
    torch.testing.assert_close(ce(logits, labels), 2 * F.cross_entropy(logits, labels))
    masked = labels.clone()
    masked[:, :4] = 255
    torch.testing.assert_close(ce(logits, masked), 2 * F.cross_entropy(logits[:, :, 4:].permute(0, 2, 3, 1).reshape(-1, 19),
                                                                       labels[:, 4:].reshape(-1)))
    assert ce(logits, torch.randint(0, 19, (2, 16, 16))).shape == ()  # logits upsampled to the labels


def test_perceptual_style_loss_on_real_faces():
    """With a VGG of random weights (no pretrained VGG here): zero for identical faces, larger for a
    different face than for a slightly blurred one, and differentiable in the prediction."""
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY

    import mpcnet.archs  # noqa: F401
    if "MPCVGGFeatureExtractor" not in ARCH_REGISTRY:
        pytest.skip("MPCVGGFeatureExtractor (mpcnet/archs/vgg_arch.py) has not landed yet")
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random weights"):
        loss = LOSS_REGISTRY.get("MPCPerceptualStyleLoss")(
            vgg={"type": "MPCVGGFeatureExtractor", "random_init": True, "vgg_type": "vgg19"},
            perceptual_weight=1.0, style_weight=1.0)
    faces = sorted((DATA / "celeba-hq-clean" / "sean-1024" / "style_imgs_test").glob("*.jpg"))
    a, other = face_tensor(faces[0]), face_tensor(faces[1])
    blurred = torch.from_numpy(cv2.GaussianBlur(a[0].permute(1, 2, 0).numpy(), (5, 5), 1.0)).permute(2, 0, 1)[None]
    p0, s0 = loss(a, a)
    assert p0.item() == 0 and s0.item() == 0
    p_blur, s_blur = loss(blurred, a)
    p_other, s_other = loss(other, a)
    assert 0 < p_blur.item() < p_other.item() and 0 < s_blur.item()
    pred = blurred.clone().requires_grad_(True)
    sum(loss(pred, a)).backward()
    assert pred.grad.abs().sum() > 0


def test_celebamask_label_assembly_and_flip(tmp_path):
    """A folder laid out like CelebAMask-HQ, built from the real colour-coded parsing maps: each
    colour becomes one part's mask PNG; the assembled map gives every colour its part's label."""
    from mpcnet.data.celebamask_parsing_dataset import CelebAMaskHQParsingDataset, assemble_label_map
    from mpcnet.parsing_classes import CELEBAMASK_PARTS, FLIP_LABELS

    seg = cv2.imread(str(DATA / "gpen-examples" / "segs" / "28000.png"))
    colours = [c for c in np.unique(seg.reshape(-1, 3), axis=0) if c.any() and (seg == c).all(-1).sum() > 50]
    anno = tmp_path / "CelebAMask-HQ-mask-anno" / "14"
    anno.mkdir(parents=True)
    expected = np.zeros(seg.shape[:2], np.uint8)
    for part_index, colour in enumerate(colours):
        mask = (seg == colour).all(-1)
        cv2.imwrite(str(anno / f"28000_{CELEBAMASK_PARTS[part_index]}.png"), mask.astype(np.uint8) * 255)
        expected[mask] = part_index + 1
    label = assemble_label_map(tmp_path, 28000, size=512)
    np.testing.assert_array_equal(label, expected)
    assert FLIP_LABELS[CELEBAMASK_PARTS.index("l_eye") + 1] == CELEBAMASK_PARTS.index("r_eye") + 1

    img_dir = tmp_path / "CelebA-HQ-img"
    img_dir.mkdir()
    face = sorted((DATA / "celeba-hq-clean" / "sean-1024" / "style_imgs_test").glob("*.jpg"))[0]
    cv2.imwrite(str(img_dir / "28000.jpg"), cv2.imread(str(face)))
    ds = CelebAMaskHQParsingDataset({"dataroot": str(tmp_path), "gt_size": 64, "use_hflip": False})
    item = ds[0]
    assert item["lq"].shape == (3, 64, 64) and item["label"].shape == (64, 64)
    small = cv2.resize(expected, (64, 64), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(item["label"].numpy(), small)


def test_gradient_l1_loss_is_the_mean_edge_difference(hq_faces):
    from basicsr.utils.registry import LOSS_REGISTRY

    loss = LOSS_REGISTRY.get("GradientL1Loss")(loss_weight=2.0)
    a = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    b = torch.zeros_like(a)
    # |∂x a| = 1, 2, 0, 0 (mean 0.75); |∂y a| = 2, 1, 1 (mean 4/3); weight 2 → (0.75 + 4/3) / 2 · 2
    torch.testing.assert_close(loss(a, b), torch.tensor(0.75 + 4 / 3))
    face = face_tensor(hq_faces[0], 128)
    assert loss(face, face).item() == 0 and loss(face + 0.3, face).item() < 1e-6  # an offset has no edges
    blurred = torch.from_numpy(cv2.GaussianBlur(face[0].permute(1, 2, 0).numpy(), (9, 9), 3)).permute(2, 0, 1)[None]
    # L1 ranks a colour offset worse than blur; the edge loss ranks blur worse: it sees lost detail
    assert F.l1_loss(face + 0.3, face) > F.l1_loss(blurred, face)
    assert loss(blurred, face).item() > 0.02 > loss(face + 0.3, face).item()


def test_patch_frequency_loss_prefers_displaced_detail_to_blur(hq_faces):
    from basicsr.utils.registry import LOSS_REGISTRY

    loss = LOSS_REGISTRY.get("PatchFrequencyLoss")(loss_weight=1.0, patch=16)
    # one 16×16 tile holding a constant 0.5: its orthonormal DFT has a single coefficient, 0.5·16 = 8,
    # so against a black tile the amplitude L1 is 8 / (16·9 coefficients of the half spectrum)
    grey = torch.full((1, 1, 16, 16), 0.5)
    torch.testing.assert_close(loss(grey, torch.zeros_like(grey)), torch.tensor(8 / (16 * 9)))
    whole = face_tensor(hq_faces[0], 130)
    face, shifted = whole[..., :128, :128], whole[..., 1:129, 1:129]  # the same detail, one pixel off
    assert loss(face, face).item() < 1e-5
    blurred = torch.from_numpy(cv2.GaussianBlur(face[0].permute(1, 2, 0).numpy(), (9, 9), 3)).permute(2, 0, 1)[None]
    # L1 on pixels prefers the blur (the average of plausible positions); the spectrum loss prefers
    # the displaced but sharp face: that is what keeps an uncertain output from blurring
    assert F.l1_loss(blurred, face) < F.l1_loss(shifted, face)
    assert loss(shifted, face) < loss(blurred, face)
