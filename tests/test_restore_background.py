"""`restore --bg-upsampler realesrgan`: the photo behind the faces goes through Real-ESRGAN's RRDBNet
(the realesrgan package's tiling), with the weights resolved and hash-checked like every model file.
A small RRDBNet with seeded weights stands in for RealESRGAN_x2plus.pth, which is not on this machine."""
import sys

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from typer.testing import CliRunner

from mpcnet.restoration.background import BackgroundUpsamplerError, RealESRGANBackground, rrdbnet_config
from mpcnet.restoration.detectors import detect_faces
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.restoration.scheduler import RestorePipeline
from mpcnet.weights import pin
from mpcnet_cli.main import app
from tests.conftest import Negative
from tests.test_restore_pipeline import WHOLE

pytest.importorskip("realesrgan", reason="the optional realesrgan package is not installed (setup.sh test installs it)")


def small_rrdbnet(scale=2):
    torch.manual_seed(0)
    return RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4, scale=scale).eval()


@pytest.fixture
def x2_weights(tmp_path, monkeypatch):
    """The stand-in saved as RealESRGAN_x2plus.pth in the weights folder, and pinned as the user would."""
    folder = tmp_path / "weights"
    folder.mkdir()
    net = small_rrdbnet()
    torch.save({"params_ema": net.state_dict()}, folder / "RealESRGAN_x2plus.pth")
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(folder))
    pin("realesrgan-x2plus")
    return net


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_config_is_read_off_the_checkpoint(scale):
    net = small_rrdbnet(scale)
    config = rrdbnet_config(net.state_dict())
    assert config == {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "num_grow_ch": 4,
                      "scale": scale}


def test_background_is_real_esrgan_and_faces_are_pasted_on_it(x2_weights, yunet, tmp_path):
    photo = cv2.resize(cv2.imread(str(WHOLE / "00.jpg")), (300, 180), interpolation=cv2.INTER_AREA)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "group.png"), photo)
    pipe = RestorePipeline(FaceRestorer(Negative(), size=64), yunet, RestoreOptions(upscale=2, bg_upsampler="realesrgan"))
    summary = pipe.run([src / "group.png"], src, tmp_path / "out")
    result = summary.results[0]
    assert (result.status, result.faces) == ("restored", 4), result.message
    out = cv2.imread(result.output).astype(int)
    assert out.shape == (360, 600, 3)
    with torch.inference_mode():  # the whole photo (one tile) through the same network, by hand
        rgb = torch.from_numpy(photo[..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)[None]
        expected = x2_weights(rgb)[0].clamp(0, 1).permute(1, 2, 0).numpy()[..., ::-1]
    expected = np.rint(expected * 255).astype(int)
    diff = np.abs(out - expected).mean(axis=2)
    lanczos = cv2.resize(photo, (600, 360), interpolation=cv2.INTER_LANCZOS4).astype(int)
    assert diff[-40:].max() <= 1 and diff[:, :30].max() <= 1  # far from the faces: Real-ESRGAN's pixels
    assert np.abs(out[-40:] - lanczos[-40:]).mean() > 5  # …which are not what Lanczos gives
    for face in detect_faces(yunet, photo):
        cx, cy = (face.landmarks[2] * 2).astype(int)
        assert diff[cy - 3:cy + 3, cx - 3:cx + 3].mean() > 40  # the (negated) face is pasted over it
    assert summary.timer.seconds["background"] > 0


def test_sixteen_bit_photo_keeps_sixteen_bits_at_any_upscale(x2_weights, yunet, tmp_path):
    """×3 from a ×2 network: Real-ESRGAN's output is resized to the asked size."""
    photo = cv2.resize(cv2.imread(str(WHOLE / "03.jpg")), (160, 200), interpolation=cv2.INTER_AREA)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "deep.png"), photo.astype(np.uint16) * 256 + 100)
    pipe = RestorePipeline(FaceRestorer(Negative(), size=64), yunet, RestoreOptions(upscale=3, bg_upsampler="realesrgan"))
    out = cv2.imread(pipe.run([src / "deep.png"], src, tmp_path / "out").results[0].output, cv2.IMREAD_UNCHANGED)
    assert out.shape == (600, 480, 3) and out.dtype == np.uint16
    assert (out[-20:] % 257 != 0).any()  # values between the 8-bit steps: not squeezed through 8 bits


def test_missing_package_or_unpinned_weights_are_clear_errors(monkeypatch, tmp_path):
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "realesrgan", None)  # as if not installed
        with pytest.raises(BackgroundUpsamplerError, match="needs the realesrgan package"):
            RealESRGANBackground()
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({"params_ema": small_rrdbnet().state_dict()}, folder / "RealESRGAN_x2plus.pth")
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(folder))
    with pytest.raises(BackgroundUpsamplerError, match="mpcnet weights pin realesrgan-x2plus"):
        RealESRGANBackground()


def test_cli_says_what_to_fetch_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["restore", str(WHOLE / "04.jpg"), "-o", str(tmp_path / "out"),
                                      "--detector", "mtcnn", "--bg-upsampler", "realesrgan"])
    assert result.exit_code == 2
    assert "mpcnet weights fetch realesrgan-x2plus" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
