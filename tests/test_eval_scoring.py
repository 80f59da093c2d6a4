"""score() beyond pairing (test_eval_pairing.py): progress per scored image, the errors that stop a run
(each saying why), pairs of different sizes listed, not scored, and FID's protocol line — on real faces."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mpcnet.eval_scoring import load_bgr8, score
from mpcnet.evaluate import EvalError
from mpcnet.metrics.fid import FeatureExtractor, FIDStats, frechet_distance
from mpcnet.metrics.niqe import niqe
from tests.conftest import eval_folders

SIZE = 64


@pytest.fixture
def folders(tmp_path, aligned_faces):
    return eval_folders(tmp_path, aligned_faces[:4], SIZE)


@pytest.fixture(scope="module")
def extractor():
    """A small fixed conv network in place of Inception: 16 features per image."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)).eval()
    return FeatureExtractor("random-conv", net)


def test_progress_names_each_scored_image_in_order(folders):
    seen = []
    result = score(folders / "restored", folders / "gt", metrics=("psnr",), progress=seen.append)
    assert seen == ["000", "001", "002", "003"] == list(result.per_image)
    assert (result.lq, result.dataset, result.restore) == (None, None, None)


def test_runs_that_cannot_be_scored_say_why(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalError, match="no images in"):
        score(tmp_path / "empty", None, metrics=("niqe",))
    with pytest.raises(EvalError, match="has a counterpart in .*files pair by relative name"):
        score(folders / "lq", tmp_path / "empty", metrics=("psnr",))
    small = tmp_path / "small"
    small.mkdir()
    for name in ("000", "001", "002", "003"):
        face = cv2.imread(str(folders / "restored" / f"{name}.png"))
        cv2.imwrite(str(small / f"{name}.png"), cv2.resize(face, (32, 48), interpolation=cv2.INTER_AREA))
    with pytest.raises(EvalError, match=r"no pair could be scored: 000 \(32×48 vs 64×64\); 001 \(32×48 vs 64×64\); "
                                        r"002 \(32×48 vs 64×64\)$"):  # the first three
        score(small, folders / "gt", metrics=("psnr",))


def test_pairs_of_different_sizes_are_listed_and_left_out_of_the_means(folders):
    face = cv2.imread(str(folders / "restored" / "002.png"))
    cv2.imwrite(str(folders / "restored" / "002.png"), cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA))
    result = score(folders / "restored", folders / "gt", metrics=("psnr", "ssim"))
    assert list(result.per_image) == ["000", "001", "003"]
    assert result.unpaired == {"restored_only": ["unpaired"], "size_mismatch": ["002 (48×48 vs 64×64)"]}
    assert result.metrics["psnr"] == pytest.approx(np.mean([row["psnr"] for row in result.per_image.values()]))


def test_fid_is_the_frechet_distance_of_the_features_and_names_its_protocol(folders, extractor, tmp_path):
    def features(folder, names):
        return extractor.features(cv2.imread(str(folder / f"{n}.png")) for n in names)

    names = ["000", "001", "002", "003"]
    result = score(folders / "lq", folders / "gt", metrics=("fid", "psnr"), fid_extractor=extractor)
    expected = frechet_distance(FIDStats.of(features(folders / "lq", names)), FIDStats.of(features(folders / "gt", names)))
    assert result.metrics["fid"] == pytest.approx(expected, rel=1e-6) and list(result.metrics) == ["psnr", "fid"]
    assert result.fid_protocol == (f"4 restored images vs the ground-truth set {folders / 'gt'} (4 images; "
                                   "features: random-conv; reference statistics computed)")
    again = score(folders / "restored", folders / "gt", metrics=("fid",), fid_extractor=extractor, fid_ref=folders / "gt")
    assert again.fid_protocol.startswith(f"4 restored images vs a reference folder {folders / 'gt'} (4 images;")
    assert again.fid_protocol.endswith("reference statistics from cache)")
    alone = score(folders / "lq", None, metrics=("fid", "niqe"), fid_extractor=extractor)
    assert "fid" not in alone.metrics and "--fid-ref" in alone.skipped["fid"] and alone.fid_protocol is None


def test_niqe_without_ground_truth_is_the_mean_of_each_image(tmp_path, aligned_faces):
    faces = [cv2.resize(cv2.imread(str(p)), (192, 192), interpolation=cv2.INTER_AREA) for p in aligned_faces[:2]]
    for i, face in enumerate(faces):
        cv2.imwrite(str(tmp_path / f"{i}.png"), face)
    result = score(tmp_path, None, metrics=("niqe",))
    assert result.per_image == {str(i): {"niqe": pytest.approx(niqe(face))} for i, face in enumerate(faces)}
    assert result.metrics == {"niqe": pytest.approx(np.mean([niqe(face) for face in faces]))}


def test_network_metrics_are_scored_per_pair_with_dlibs_note(folders):
    """dlib's identity angle and landmark distance through score(): 0 for the GT against itself, each
    row is that pair's own comparison (restored, GT), and a pair whose GT has no face (a flat gray
    image) says it used the fixed FFHQ box."""
    from mpcnet.metrics import dlib_face  # dlib: the 'identity' extra, which make test installs

    names = ("deg_dlib", "lmd_dlib68")
    same = score(folders / "gt", folders / "gt", metrics=names)
    assert same.metrics["deg_dlib"] == pytest.approx(0, abs=1e-3) and same.metrics["lmd_dlib68"] == pytest.approx(0, abs=1e-6)
    for name in ("gt", "restored"):
        cv2.imwrite(str(folders / name / "zz_blank.png"), np.full((SIZE, SIZE, 3), 128, np.uint8))
    result = score(folders / "restored", folders / "gt", metrics=names)
    assert len(result.per_image) == 5 and result.metrics["deg_dlib"] > 0 and not result.skipped
    for (key, row), gt in zip(result.per_image.items(), sorted((folders / "gt").glob("*.png")), strict=True):
        pair = dlib_face.compare(load_bgr8(folders / "restored" / gt.name), load_bgr8(gt))
        assert row == pytest.approx({m: pair.values()[m] for m in names})
        assert ("fixed FFHQ box" in result.notes.get(key, "")) == (not pair.face_found)
    assert list(result.notes) == ["zz_blank"]
    report = result.to_json()  # eval --json and report.json: the run's inputs, notes and protocol by name
    assert report["notes"] == result.notes and report["restored"] == str(folders / "restored")
    assert report["gt"] == str(folders / "gt") and report["fid_protocol"] is None
    assert {"dataset", "restore"} <= set(report) and report["metrics"] == result.metrics
