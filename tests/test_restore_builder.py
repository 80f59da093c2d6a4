"""The one pipeline builder behind restore, benchmark and eval: its rules (device, detector default,
paste mask, fixed batch under a launcher), a bad request refused before any model file is read, and
the pipelines it builds restoring real faces."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from mpcnet.archs.mpcnet_arch import MPCNet
from mpcnet.checkpoint import save_checkpoint
from mpcnet.compat import leave_dist
from mpcnet.restoration.builder import build_pipeline
from mpcnet.restoration.options import RestoreOptions
from tests.conftest import DATA, REPO

FACES = sorted((DATA / "codeformer-inputs" / "cropped_faces").glob("*.png"))[:2]
PHOTO = DATA / "codeformer-inputs" / "whole_imgs" / "00.jpg"


def test_aligned_faces_get_no_detector_no_mask_and_fixed_batch_only_when_asked(tiny_weights, tmp_path):
    built = build_pipeline(tiny_weights, "cpu", options=RestoreOptions(aligned=True), batch_size=2)
    pipeline = built.pipeline
    assert pipeline.detector is None and pipeline.parsenet is None and not pipeline.restorer.fixed_batch
    assert built.setup["detector"] == built.setup["mask"] == built.setup["background"] == "none (--aligned)"
    assert built.setup["device"] == "cpu" and built.setup["network_size"] == 64 and built.launch.world_size == 1
    summary = pipeline.run(FACES, FACES[0].parent, tmp_path)
    assert [r.status for r in summary.results] == ["restored", "restored"]
    fixed = build_pipeline(tiny_weights, "cpu", options=RestoreOptions(aligned=True), fixed_batch=True)
    assert fixed.pipeline.restorer.fixed_batch and fixed.setup["fixed_batch"]


def test_photos_get_the_default_detector_and_the_mask_of_the_network(tiny_weights, tmp_path):
    built = build_pipeline(tiny_weights, "cpu", options=RestoreOptions(upscale=1))
    assert built.setup["detector"] == "retinaface (retinaface-mobile)"  # its verified file is in shared/weights
    assert built.setup["mask"] == "face parsing (the network's parsing prior)" and built.pipeline.parsenet is None
    assert built.pipeline.run([PHOTO], PHOTO.parent, tmp_path).results[0].faces >= 1
    torch.manual_seed(0)
    plain = MPCNet(out_size=64, num_style_feat=32, narrow=0.0625, num_mlp=2, use_parse_prior=False, use_sft=False)
    save_checkpoint({"params": plain.state_dict(), "arch": plain.arch_config}, tmp_path / "plain.pth")
    built = build_pipeline(str(tmp_path / "plain.pth"), "cpu", "yunet")
    # no parsing prior and no ParseNet file here: the feathered ellipse
    assert built.setup["mask"] == "feathered ellipse" and built.setup["detector"] == "yunet"


@pytest.mark.parametrize("request_, message", [
    (dict(detector="dlib"), "unknown detector 'dlib'"),
    (dict(backend="tensorflow"), "unknown backend 'tensorflow'"),
    (dict(backend="onnxruntime", amp=True), "autocast (amp) needs the torch backend"),
    (dict(method="gfpgan", backend="onnxruntime"), "gfpgan peer runs on the torch backend only"),
    (dict(device="tpu"), "the device must be one of auto, cpu, cuda, mps"),
])
def test_a_bad_request_is_refused_before_the_model_file_is_read(tmp_path, request_, message):
    absent = tmp_path / "absent.pth"  # reading it would fail with another message
    with pytest.raises(ValueError) as caught:
        build_pipeline(str(absent), **{"device": "cpu", **request_})
    assert message in str(caught.value) and "--" not in str(caught.value)  # names the thing, not a CLI flag


def one_process_group_env() -> dict[str, str]:
    """torchrun's variables for a group of one process, on a free local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port))


def test_a_launched_process_pads_every_batch_by_default(tiny_weights, monkeypatch):
    """Under ``launcher pytorch`` (here one gloo process) fixed batches are on unless turned off."""
    for name, value in {**one_process_group_env(), "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    threads = torch.get_num_threads()
    try:
        launched = build_pipeline(tiny_weights, "cpu", options=RestoreOptions(aligned=True), launcher="pytorch")
        assert launched.pipeline.restorer.fixed_batch and launched.setup["threads_per_process"] == 1
        assert not build_pipeline(tiny_weights, "cpu", options=RestoreOptions(aligned=True), launcher="pytorch",
                                  fixed_batch=False).pipeline.restorer.fixed_batch
    finally:
        leave_dist()
        torch.set_num_threads(threads)


def test_a_joined_process_group_is_destroyed_at_exit_before_the_interpreter_winds_down():
    """A gloo group left to interpreter finalization can abort the process (SIGABRT): ``init_dist``
    destroys it in an exit handler, which runs before handlers registered earlier."""
    script = ("import atexit, torch, torch.distributed as dist\n"
              "atexit.register(lambda: print('group alive at exit:', dist.is_initialized()))\n"
              "from mpcnet.compat import init_dist\n"
              "init_dist('gloo')\n"
              "dist.all_reduce(torch.ones(2))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **one_process_group_env()}, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "group alive at exit: False" in run.stdout
