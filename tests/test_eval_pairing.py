"""Eval pairs restored and ground-truth files by relative path without extension: the same name in
two subfolders stays two pairs, extensions may differ, the rest is listed as unpaired — and the
scores follow the right partner."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mpcnet.eval_scoring import index_folder, pair_folders, score


def write(folder, rel, img):
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def folders(tmp_path, aligned_faces):
    """a/001 and b/001 are different real faces; the restored side is the GT itself (a/001, and
    b/sub/002 under another lossless extension) or a blurred copy (b/001)."""
    faces = [cv2.resize(cv2.imread(str(p)), (64, 64), interpolation=cv2.INTER_AREA) for p in aligned_faces[:3]]
    restored, gt = tmp_path / "restored", tmp_path / "gt"
    write(gt, "a/001.png", faces[0])
    write(gt, "b/001.png", faces[1])
    write(gt, "b/sub/002.bmp", faces[2])
    write(gt, "only_gt.png", faces[2])
    write(restored, "a/001.png", faces[0])
    write(restored, "b/001.png", cv2.GaussianBlur(faces[1], (0, 0), 1.5))
    write(restored, "b/sub/002.png", faces[2])  # another extension, same relative name
    write(restored, "only_restored.png", faces[0])
    write(restored, "001.png", faces[1])  # same stem at the top: not a partner of a/001 or b/001
    return restored, gt


def test_pairs_by_relative_path(folders):
    restored, gt = folders
    assert sorted(index_folder(gt)) == ["a/001", "b/001", "b/sub/002", "only_gt"]
    pairing = pair_folders(restored, gt)
    assert [(k, r.relative_to(restored).as_posix(), g.relative_to(gt).as_posix()) for k, r, g in pairing.pairs] == [
        ("a/001", "a/001.png", "a/001.png"), ("b/001", "b/001.png", "b/001.png"),
        ("b/sub/002", "b/sub/002.png", "b/sub/002.bmp")]
    assert pairing.only_restored == ["001", "only_restored"] and pairing.only_gt == ["only_gt"]


def test_scores_follow_the_right_partner(folders):
    restored, gt = folders
    result = score(restored, gt, metrics=["psnr", "ssim"])
    per = result.per_image
    assert set(per) == {"a/001", "b/001", "b/sub/002"}
    assert per["a/001"]["psnr"] == float("inf") and per["b/sub/002"]["psnr"] == float("inf")
    assert 20 < per["b/001"]["psnr"] < 40 and per["b/001"]["ssim"] < 1  # blurred copy of the same face
    assert result.unpaired == {"restored_only": ["001", "only_restored"], "gt_only": ["only_gt"]}
    assert result.metrics["ssim"] == pytest.approx(np.mean([row["ssim"] for row in per.values()]))


def test_sixteen_bit_files_score_as_their_8_bit_values(tmp_path, aligned_faces):
    face = cv2.resize(cv2.imread(str(aligned_faces[0])), (64, 64), interpolation=cv2.INTER_AREA)
    write(tmp_path / "gt", "f.png", face.astype(np.uint16) * 257)  # the same picture in 16 bits
    write(tmp_path / "restored", "f.png", face)
    result = score(tmp_path / "restored", tmp_path / "gt", metrics=["psnr"])
    assert result.per_image["f"]["psnr"] == float("inf")


def test_without_ground_truth_every_file_is_scored_alone(folders):
    restored, _ = folders
    result = score(restored, None, metrics=["psnr", "grad_ratio"])
    assert (result.restored, result.gt) == (restored, None)
    assert set(result.per_image) == set(index_folder(restored)) and not any(result.per_image.values())
    assert result.skipped == {"psnr": "needs ground truth (--gt)", "grad_ratio": "needs ground truth (--gt)"}
