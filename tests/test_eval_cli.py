"""`mpcnet eval` on folders built from the real shared faces: pairing, skipped metrics, the report files."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest
import torch
from typer.testing import CliRunner

from mpcnet.eval_scoring import score
from mpcnet.evaluate import EvalError, resolve_dataset
from mpcnet.metrics import METRICS
from mpcnet.metrics.fid import FeatureExtractor
from mpcnet_cli.main import app
from tests.conftest import eval_folders

SIZE = 256


def run(*args):
    """The real CLI in-process (tests/test_cli.py covers the installed script)."""
    result = CliRunner().invoke(app, ["eval", *map(str, args)])
    result.returncode = result.exit_code
    return result


@pytest.fixture(scope="module")
def folders(hq_faces, tmp_path_factory):
    """gt/ (clean CelebA-HQ faces), restored/ (mild blur, plus one unpaired file), lq/ (strong blur, JPEG)."""
    return eval_folders(tmp_path_factory.mktemp("evalset"), hq_faces[:6], SIZE, "jpg")


def test_eval_cli_writes_a_report_listing_every_metric(folders, tmp_path):
    out = run("--restored", folders / "restored", "--gt", folders / "gt", "--lq", folders / "lq",
              "-o", tmp_path / "rep", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["images"] == 6 and data["unpaired"] == {"restored_only": ["unpaired"]}
    assert set(data["metrics"]) | set(data["skipped"]) == set(METRICS)
    assert {"psnr", "ssim", "niqe"} <= set(data["metrics"])
    assert 25 < data["metrics"]["psnr"] < 45 and 0.8 < data["metrics"]["ssim"] < 1
    assert all(reason for reason in data["skipped"].values())
    report = (tmp_path / "rep" / "report.md").read_text()
    for metric in METRICS:
        assert metric.upper() in report
    for metric, reason in data["skipped"].items():
        assert reason.split(";")[0][:40] in report
    assert "Table 3" in report and "29.26" in report and "FID protocol" in report
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["metrics"] == data["metrics"]
    grid = cv2.imread(str(tmp_path / "rep" / "grid.png"))
    assert grid.shape[1] == 3 * 256 + 2 * 4 and grid.shape[0] == 4 * 256 + 3 * 4  # LQ | restored | GT × 4
    again = run("--restored", folders / "restored", "--gt", folders / "gt", "-o", tmp_path / "rep")
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_identical_sets_give_inf_psnr_as_a_string_and_unit_ssim(folders, tmp_path):
    out = run("--restored", folders / "gt", "--gt", folders / "gt", "--metrics", "psnr,ssim", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["metrics"]["psnr"] == "inf" and data["metrics"]["ssim"] == pytest.approx(1.0)
    assert all(row["psnr"] == "inf" for row in data["per_image"].values())


def test_named_dataset_layout_is_explained_when_missing(folders, tmp_path):
    out = run("--dataset", "celeba-test", "--data-root", tmp_path)
    assert out.returncode == 2 and "celeba-test/{lq,gt}" in out.stderr
    (tmp_path / "celeba-test").mkdir()
    shutil.copytree(folders / "lq", tmp_path / "celeba-test" / "lq")
    shutil.copytree(folders / "gt", tmp_path / "celeba-test" / "gt")
    assert resolve_dataset("celeba-test", tmp_path) == (tmp_path / "celeba-test" / "lq",
                                                        tmp_path / "celeba-test" / "gt")
    with pytest.raises(EvalError, match="real-test/{lq}"):
        resolve_dataset("real-test", tmp_path)


def test_no_reference_scoring_and_size_mismatch(folders, tmp_path):
    nr = score(folders / "lq", metrics=("psnr", "niqe", "fid"))
    assert set(nr.metrics) == {"niqe"} and nr.skipped["psnr"] == "needs ground truth (--gt)"
    assert "--fid-ref" in nr.skipped["fid"]
    small = tmp_path / "small"
    small.mkdir()
    cv2.imwrite(str(small / "000.png"), cv2.resize(cv2.imread(str(folders / "gt" / "000.png")), (128, 128)))
    shutil.copy(folders / "restored" / "001.png", small / "001.png")
    res = score(small, folders / "gt", metrics=("psnr",))
    assert list(res.per_image) == ["001"] and res.unpaired["size_mismatch"][0].startswith("000 (128×128")


def test_fid_through_the_driver_names_its_protocol_and_uses_the_cache(folders):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)).eval()
    ext = FeatureExtractor("random-conv-eval", net)
    same = score(folders / "gt", folders / "gt", metrics=("fid",), fid_extractor=ext)
    worse = score(folders / "lq", folders / "gt", metrics=("fid",), fid_extractor=ext)
    assert worse.metrics["fid"] > 1e-6 and same.metrics["fid"] < 1e-3 * worse.metrics["fid"]
    assert "computed" in same.fid_protocol and "from cache" in worse.fid_protocol
    assert "ground-truth set" in worse.fid_protocol and "6 images" in worse.fid_protocol


def test_eval_restores_the_lq_folder_with_the_chosen_weights(aligned_faces, tmp_path):
    from mpcnet.bench.network import NetConfig, build
    from mpcnet.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build("mpcnet", NetConfig(64, 0.125, 1, 64, (("parse_base_ch", 16), ("parse_max_ch", 32))))
    ckpt = tmp_path / "tiny.pth"
    save_checkpoint({"params": net.state_dict(), "arch": dict(net.arch_config)}, ckpt)
    gt, lq = tmp_path / "gt", tmp_path / "lq"
    gt.mkdir(), lq.mkdir()
    for path in aligned_faces[:3]:
        shutil.copy(path, gt / path.name)
        cv2.imwrite(str(lq / f"{path.stem}.jpg"), cv2.GaussianBlur(cv2.imread(str(path)), (0, 0), 2.0))
    out = run("--lq", lq, "--gt", gt, "--weights", ckpt, "--metrics", "psnr,ssim", "-o", tmp_path / "rep", "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    assert data["restore"]["restored"] == 3 and data["restore"]["failures"] == []
    assert data["images"] == 3 and not data["unpaired"]
    restored = sorted((tmp_path / "rep" / "restored_imgs").glob("*.png"))
    assert [p.stem for p in restored] == [p.stem for p in aligned_faces[:3]]
    assert cv2.imread(str(restored[0])).shape == (512, 512, 3)
    assert 0 < data["metrics"]["psnr"] < 60
    bad = run("--lq", lq, "--weights", tmp_path / "missing.pth")
    assert bad.returncode == 2 and "missing.pth" in bad.output


def test_dlib_identity_and_landmarks_beside_arcface_under_its_own_name(folders, tmp_path, monkeypatch):
    """dlib's metrics on every pair, ArcFace (random weights of its real arch, pinned) under its own names,
    a note for the pair whose GT has no upright face, and published columns that never take a dlib value."""
    import math

    from gfpgan.archs.arcface_arch import ResNetArcFace

    from mpcnet.metrics.dlib_face import NAMES as DLIB
    from mpcnet.weights import pin

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(ResNetArcFace(block="IRBlock", layers=(2, 2, 2, 2), use_se=False).state_dict(),
               weights / "arcface_resnet18.pth")
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(weights))
    pin("arcface")
    gt, restored = tmp_path / "gt", tmp_path / "restored"
    shutil.copytree(folders / "gt", gt)
    shutil.copytree(folders / "restored", restored)
    (restored / "unpaired.png").unlink()
    turned = cv2.rotate(cv2.imread(str(gt / "000.png")), cv2.ROTATE_90_CLOCKWISE)
    cv2.imwrite(str(gt / "turned.png"), turned)
    cv2.imwrite(str(restored / "turned.png"), cv2.GaussianBlur(turned, (0, 0), 1.0))
    out = run("--restored", restored, "--gt", gt, "--metrics", "psnr,deg_arcface,cos_arcface," + ",".join(DLIB),
              "-o", tmp_path / "rep", "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    assert set(data["metrics"]) == {"psnr", "deg_arcface", "cos_arcface", *DLIB} and not data["skipped"]
    for row in data["per_image"].values():
        assert row["deg_arcface"] == pytest.approx(math.degrees(math.acos(row["cos_arcface"])))
        assert row["deg_dlib"] != row["deg_arcface"] and 0 < row["deg_dlib"] < 15 and row["lmd_dlib68"] < 5
    assert list(data["notes"]) == ["turned"] and "fixed FFHQ box" in data["notes"]["turned"]
    assert "not comparable with ArcFace" in data["descriptions"]["deg_dlib"]
    published = data["published"]
    assert [t["title"].split(" paper")[0] for t in published] == ["MPCNet", "OSDFace", "PMRF"]
    assert "Table 3" in published[0]["source"] and all(t["protocol"] and not t["same_data"] for t in published)
    assert {c["ours"] for t in published for c in t["columns"]}.isdisjoint({*DLIB, "deg_arcface", "cos_arcface"})
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "Fallbacks (1 of 7 images)" in report and "turned: dlib's HOG detector found no face" in report
    assert "| DEG_DLIB |" in report and "| DEG_ARCFACE |" in report and "*Source:* Teng, Yu & Wu" in report


def test_named_celeba_test_run_reports_identity_and_landmarks_beside_its_own_table(folders, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(folders / "lq", root / "celeba-test" / "lq")
    shutil.copytree(folders / "gt", root / "celeba-test" / "gt")
    out = run("--dataset", "celeba-test", "--data-root", root, "--metrics", "psnr,deg_dlib,lmd_dlib68",
              "-o", tmp_path / "rep", "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    assert data["dataset"] == "celeba-test" and data["restore"]["method"] == "mpcnet" and data["images"] == 6
    assert set(data["metrics"]) == {"psnr", "deg_dlib", "lmd_dlib68"}
    assert len(data["published"]) == 3 and all(t["same_data"] for t in data["published"])
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "## MPCNet paper, Table 3 (CelebA-Test, blind face restoration)\n" in report  # no "not the same data"
    assert "| **this run (mpcnet, mpcnet-s256)** | not computed | not computed |" in report
    assert "## OSDFace paper, Table 1 (CelebA-Test)\n" in report and "## PMRF paper, CelebA-Test table" in report
