"""restore and eval across processes with torchrun (gloo, 2 processes of one thread each) on real
photos: outputs byte-identical to one process, identical eval numbers (FID included), and a kill -9
of one rank mid-run, then --skip-existing, ending with the same outputs."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from mpcnet.utils.dist import split
from mpcnet.utils.image_io import pixel_count
from mpcnet_cli.main import app
from tests.conftest import DATA, REPO, SHARED_WEIGHTS

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def mpcnet(*args, nproc: int = 1) -> subprocess.CompletedProcess:
    """``mpcnet ARGS`` in one process, or under torchrun with --launcher pytorch; one thread each."""
    cmd = TORCHRUN if nproc == 2 else [sys.executable]
    launcher = ["--launcher", "pytorch"] if nproc == 2 else []
    return subprocess.run([*cmd, "-m", "mpcnet_cli.main", *map(str, args), *launcher], capture_output=True,
                          text=True, cwd=REPO, env=_env(), timeout=300)


def _env() -> dict:
    """One thread per process; a rank that crashes prints its Python stacks (faulthandler)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPCNET_WEIGHTS_DIR": str(SHARED_WEIGHTS),
            "PYTHONFAULTHANDLER": "1"}


def tree_hashes(folder: Path) -> dict:
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """The 7 real whole photos (17 faces), and again in a subfolder: 14 inputs, 34 faces."""
    src = tmp_path_factory.mktemp("photos")
    for path in sorted(WHOLE.iterdir()):
        shutil.copy(path, src / path.name)
        (src / "again").mkdir(exist_ok=True)
        shutil.copy(path, src / "again" / path.name)
    return src


RESTORE = ("--detector", "yunet", "--batch-size", "2", "--json")  # --fixed-batch: on under the launcher


@pytest.fixture(scope="module")
def reference(photos, tiny_weights, tmp_path_factory) -> Path:
    """One process's outputs."""
    out = tmp_path_factory.mktemp("one") / "out"
    run = mpcnet("restore", photos, "-o", out, "--weights", tiny_weights, *RESTORE, "--fixed-batch")
    assert run.returncode == 0, run.stderr
    return out


def test_split_balances_pixels_keeps_groups_together_and_is_deterministic(photos):
    files = sorted(photos.rglob("*.*"))
    weights = [pixel_count(f) for f in files]
    assert all(w > 0 for w in weights)
    ranks = split(weights, [f.name for f in files], 2)  # a photo and its copy share an output name here
    assert ranks == split(weights, [f.name for f in files], 2)
    assert all(r == ranks[files.index(f.parent.parent / f.name)] for f, r in zip(files, ranks) if f.parent.name == "again")
    loads = [sum(w for w, r in zip(weights, ranks) if r == k) for k in (0, 1)]
    assert min(loads) > 0 and abs(loads[0] - loads[1]) <= 2 * max(weights)  # groups are two photos
    solo = split(weights, files, 2)
    loads = [sum(w for w, r in zip(weights, solo) if r == k) for k in (0, 1)]
    assert abs(loads[0] - loads[1]) <= max(weights)  # greedy, heaviest first: within one photo


def test_restore_on_two_processes_is_byte_identical_to_one(photos, reference, tiny_weights, tmp_path):
    out = tmp_path / "out"
    run = mpcnet("restore", photos, "-o", out, "--weights", tiny_weights, *RESTORE, nproc=2)
    assert run.returncode == 0, run.stderr[:4000]
    report = json.loads(run.stdout)  # one JSON document: rank 0's merged summary
    assert report["processes"] == 2 and report["threads_per_process"] == 1 and report["fixed_batch"]
    assert (report["files"], report["restored"], report["faces"], report["failed"]) == (14, 14, 34, 0)
    assert [r["source"] for r in report["results"]] == [str(f) for f in sorted(photos.rglob("*.*"))]
    assert tree_hashes(out) == tree_hashes(reference)


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker of ``rank`` (a child of ``parent``)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent \
                    and f"RANK={rank}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except OSError:
            continue
    return None


def test_kill_one_rank_mid_run_then_skip_existing_completes_identically(photos, reference, tiny_weights, tmp_path):
    out = tmp_path / "out"
    args = ["-m", "mpcnet_cli.main", "restore", str(photos), "-o", str(out), "--weights", tiny_weights, *RESTORE,
            "--launcher", "pytorch"]
    run = subprocess.Popen([*TORCHRUN, *args], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    def finished():
        return [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]

    deadline = time.monotonic() + 240
    while not finished():
        assert run.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.02)
    os.kill(_rank_pid(run.pid, 1), signal.SIGKILL)
    run.communicate(timeout=120)
    assert run.returncode != 0
    done, expected = finished(), tree_hashes(reference)
    assert 0 < len(done) < 14, "the kill did not come mid-run"
    assert all(tree_hashes(out)[p.relative_to(out)] == expected[p.relative_to(out)] for p in done)  # each is whole

    again = mpcnet("restore", photos, "-o", out, "--weights", tiny_weights, *RESTORE, "--skip-existing", nproc=2)
    assert again.returncode == 0, again.stderr[:4000]
    report = json.loads(again.stdout)
    assert (report["skipped"], report["restored"], report["failed"]) == (len(done), 14 - len(done), 0)
    assert not list(out.rglob("*.part"))  # a write the kill cut short leaves nothing behind
    assert tree_hashes(out) == tree_hashes(reference)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """gt/: 6 real aligned faces at 192 px; lq/: the same blurred."""
    root = tmp_path_factory.mktemp("faces")
    for name in ("gt", "lq"):
        (root / name).mkdir()
    for path in sorted((DATA / "codeformer-inputs" / "cropped_faces").glob("*.png"))[:6]:
        face = cv2.resize(cv2.imread(str(path)), (192, 192), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / "gt" / path.name), face)
        cv2.imwrite(str(root / "lq" / path.name), cv2.GaussianBlur(face, (0, 0), 2.0))
    return root


def test_eval_restoring_with_a_model_on_two_processes_equals_one(faces, tiny_weights, tmp_path):
    args = ("eval", "--lq", faces / "lq", "--gt", faces / "gt", "--weights", tiny_weights, "--json",
            "--metrics", "psnr,ssim,niqe,deg_dlib")
    one, two = mpcnet(*args, "-o", tmp_path / "one"), mpcnet(*args, "-o", tmp_path / "two", nproc=2)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr[-1000:], two.stderr[-1000:])
    one, two = json.loads(one.stdout), json.loads(two.stdout)
    assert set(one["metrics"]) == {"psnr", "ssim", "niqe", "deg_dlib"}
    assert two["images"] == 6 and two["metrics"] == one["metrics"] and two["per_image"] == one["per_image"]
    assert two["restore"]["restored"] == 6
    assert tree_hashes(tmp_path / "two" / "restored_imgs") == tree_hashes(tmp_path / "one" / "restored_imgs")


SCORE = """
import json, os, sys
from pathlib import Path
import torch
from mpcnet.eval_scoring import score
from mpcnet.metrics.fid import FeatureExtractor
from mpcnet.utils.dist import launch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)).eval()
result = score(Path(sys.argv[1]), Path(sys.argv[2]), metrics=("psnr", "niqe", "fid"),
               fid_extractor=FeatureExtractor("random-conv", net),
               launch=launch("pytorch" if "RANK" in os.environ else "none", "cpu"))
if result is not None:
    Path(sys.argv[3]).write_text(json.dumps(result.to_json()))
"""


def test_eval_scores_and_fid_on_two_processes_equal_one(faces, tmp_path):
    """The per-image scores and FID of --restored: the features of both processes are gathered and
    the statistics fitted to all of them (a mean of per-process FIDs would differ)."""
    script = tmp_path / "score.py"
    script.write_text(SCORE)
    lq, gt = faces / "lq", faces / "gt"
    runs = {n: subprocess.run([*(TORCHRUN if n == 2 else [sys.executable]), str(script), lq, gt, tmp_path / f"{n}.json"],
                              capture_output=True, text=True, cwd=REPO, env=_env(), timeout=300) for n in (1, 2)}
    assert all(r.returncode == 0 for r in runs.values()), runs[2].stderr[:4000]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in (1, 2))
    assert one["metrics"]["fid"] > 0 and set(one["metrics"]) == {"psnr", "niqe", "fid"}
    assert two["metrics"] == one["metrics"] and two["per_image"] == one["per_image"]
    assert "6 restored images" in two["fid_protocol"]


def test_launcher_outside_torchrun_is_a_bad_request(photos, tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, ["restore", str(photos), "-o", str(tmp_path / "out"), "--launcher", "pytorch"])
    assert result.exit_code == 2 and "torchrun" in result.stderr and not (tmp_path / "out").exists()
    result = CliRunner().invoke(app, ["eval", "--lq", str(photos), "--launcher", "pytorch"])
    assert result.exit_code == 2 and "give -o" in result.stderr


def test_benchmark_reports_the_scaling_of_two_processes_over_one(faces, tiny_weights):
    run = mpcnet("benchmark", "restore", faces / "gt", "--aligned", "--nproc", "2", "--weights", tiny_weights,
                 "--batch-size", "2", "--json")
    assert run.returncode == 0, run.stderr[:4000]
    result = json.loads(run.stdout)
    assert (result["one"]["processes"], result["many"]["processes"]) == (1, 2)
    assert result["one"]["faces"] == result["many"]["faces"] == 6 and result["identical_outputs"]
    assert result["scaling"] == pytest.approx(result["many"]["faces_per_s"] / result["one"]["faces_per_s"], rel=1e-2)
    assert "2 processes ÷ 1" in run.stderr
