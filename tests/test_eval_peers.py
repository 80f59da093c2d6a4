"""`mpcnet eval --method`: peers from the gfpgan package, with random weights of their real architectures
saved as the registry's files and pinned, restore real faces through our aligned pipeline."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest
import torch
from typer.testing import CliRunner

from mpcnet.restoration.peers import PeerError, gfpgan_config, restoreformer_config
from mpcnet.weights import pin
from mpcnet_cli.main import app

gfpgan_arch = pytest.importorskip("gfpgan.archs.gfpganv1_clean_arch", reason="the gfpgan package is not installed")
from gfpgan.archs.restoreformer_arch import RestoreFormer  # noqa: E402

GFPGAN_FIXED = dict(decoder_load_path=None, fix_decoder=False, input_is_latent=True, different_w=True)
SMALL_GFPGAN = dict(out_size=128, num_style_feat=64, channel_multiplier=1, narrow=0.25, num_mlp=2, sft_half=True)
# six levels as released, so that attention runs at 16² (at 512 px input), but 32 channels throughout
SMALL_RESTOREFORMER = dict(ch=32, ch_mult=(1, 1, 1, 1, 1, 1), num_res_blocks=1, n_embed=64, embed_dim=32,
                           z_channels=32, attn_resolutions=(16,), resolution=512)


def run(*args):
    result = CliRunner().invoke(app, ["eval", *map(str, args)])
    result.returncode = result.exit_code
    return result


@pytest.mark.parametrize("config", [
    dict(out_size=512, num_style_feat=512, channel_multiplier=2, narrow=1, num_mlp=8, sft_half=True),  # v1.3/v1.4
    SMALL_GFPGAN,
    dict(out_size=64, num_style_feat=32, channel_multiplier=2, narrow=0.5, num_mlp=8, sft_half=False),
])
def test_gfpgan_layout_is_read_off_the_shapes(config):
    with torch.device("meta"):
        state = gfpgan_arch.GFPGANv1Clean(**GFPGAN_FIXED, **config).state_dict()
    assert gfpgan_config(state) == {**GFPGAN_FIXED, **config}


def test_restoreformer_layout_is_read_off_the_shapes():
    with torch.device("meta"):
        released = RestoreFormer().state_dict()
        small = RestoreFormer(**SMALL_RESTOREFORMER).state_dict()
    assert restoreformer_config(released) == dict(n_embed=1024, embed_dim=256, ch=64, ch_mult=(1, 2, 2, 4, 4, 8),
                                                  num_res_blocks=2, attn_resolutions=(16,), resolution=512,
                                                  z_channels=256)
    assert restoreformer_config(small) == SMALL_RESTOREFORMER
    with pytest.raises(PeerError, match="not GFPGANv1Clean"):
        gfpgan_config(small)


@pytest.fixture
def peer_weights(tmp_path, monkeypatch):
    """A weights folder holding random GFPGANv1Clean and RestoreFormer files under the registry's names,
    saved as GFPGAN's releases are ({'params_ema': ...}); pinned by the test that uses them."""
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.manual_seed(0)
    torch.save({"params_ema": gfpgan_arch.GFPGANv1Clean(**GFPGAN_FIXED, **SMALL_GFPGAN).state_dict()},
               folder / "GFPGANv1.4.pth")
    torch.save({"params_ema": RestoreFormer(**SMALL_RESTOREFORMER).state_dict()}, folder / "RestoreFormer.pth")
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture
def lq_gt(aligned_faces, hq_faces, tmp_path):
    """gt/: two clean CelebA-HQ faces at 512; lq/: the same blurred, named alike."""
    gt, lq = tmp_path / "gt", tmp_path / "lq"
    gt.mkdir(), lq.mkdir()
    for i, path in enumerate(hq_faces[:2]):
        face = cv2.resize(cv2.imread(str(path)), (512, 512), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(gt / f"{i}.png"), face)
        cv2.imwrite(str(lq / f"{i}.png"), cv2.GaussianBlur(face, (0, 0), 3.0))
    return lq, gt


def test_gfpgan_runs_through_our_pipeline_reproducibly_once_pinned(peer_weights, lq_gt, tmp_path):
    lq, gt = lq_gt
    refused = run("--lq", lq, "--gt", gt, "--method", "gfpgan", "--metrics", "psnr")
    assert refused.returncode == 2 and "mpcnet weights pin gfpgan-v1.4" in refused.output
    pin("gfpgan-v1.4")
    out = run("--lq", lq, "--gt", gt, "--method", "gfpgan", "--metrics", "psnr,deg_dlib,lmd_dlib68",
              "-o", tmp_path / "a", "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    assert data["restore"]["method"] == "gfpgan" and data["restore"]["weights"] == "gfpgan-v1.4"
    assert data["restore"]["restored"] == 2 and data["images"] == 2
    assert set(data["metrics"]) == {"psnr", "deg_dlib", "lmd_dlib68"}
    restored = sorted((tmp_path / "a" / "restored_imgs").glob("*.png"))
    assert [cv2.imread(str(p)).shape for p in restored] == [(512, 512, 3)] * 2
    assert not (cv2.imread(str(restored[0])) == cv2.imread(str(lq / "0.png"))).all()
    report = (tmp_path / "a" / "report.md").read_text()
    assert "| **this run (gfpgan, gfpgan-v1.4)** |" in report
    again = run("--lq", lq, "--gt", gt, "--method", "gfpgan", "--metrics", "psnr", "-o", tmp_path / "b")
    assert again.returncode == 0, again.output
    for first in restored:  # the file's stored StyleGAN noise, not fresh noise: the same bytes twice
        assert first.read_bytes() == (tmp_path / "b" / "restored_imgs" / first.name).read_bytes()


def test_restoreformer_runs_through_our_pipeline(peer_weights, lq_gt, tmp_path):
    lq, gt = lq_gt
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(lq / "0.png", one / "0.png")
    pin("restoreformer")
    out = run("--lq", one, "--gt", gt, "--method", "restoreformer", "--metrics", "psnr,ssim", "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)  # RestoreFormer's constructor chatter stays off stdout
    assert data["restore"]["method"] == "restoreformer" and data["images"] == 1
    assert 0 < data["metrics"]["psnr"] < 40


def test_a_file_of_another_network_and_bad_requests_are_refused(peer_weights, lq_gt, tmp_path):
    lq, gt = lq_gt
    torch.save({"params_ema": {"conv.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    wrong = run("--lq", lq, "--method", "gfpgan", "--weights", tmp_path / "other.pth")
    assert wrong.returncode == 2 and "not GFPGANv1Clean's" in wrong.output
    assert run("--lq", lq, "--method", "codeformer").returncode == 2
    both = run("--restored", gt, "--gt", gt, "--method", "gfpgan")
    assert both.returncode == 2 and "nothing to restore" in both.output
