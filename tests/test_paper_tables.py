"""The researcher's path end to end (issue 21): every shell script in scripts/ run as a user runs it, on a
handful of real faces from ../shared/data at 64 px, then the `mpcnet eval --table N` that reads its output."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import DATA, REPO, SHARED, SHARED_WEIGHTS
from typer.testing import CliRunner

from mpcnet.evaluate import EvalError, resolve_dataset
from mpcnet.paper_tables import INPUT_ROW, build_variants, variants
from mpcnet_cli.main import app

MPCNET = str(Path(sys.executable).with_name("mpcnet"))
SIZE = 64
# the paper's Table 1, read off its text (mpcnet-paper.md): GAN prior, AdaIN, parsing map prior, SFT
TABLE1 = {"w/o GAN prior": "××✓✓", "w/o Parsing map prior": "✓✓××", "w/o AdaIN": "✓×✓✓",
          "w/o SFT": "✓✓✓×", "MPCNet": "✓✓✓✓"}


def script(name, *args, **env):
    """A script of scripts/ as a subprocess, with the venv's mpcnet; fails the test with its stderr."""
    env = {**os.environ, "MPCNET": MPCNET, **{k: str(v) for k, v in env.items()}}
    proc = subprocess.run(["bash", str(REPO / "scripts" / name), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def run(*args):
    result = CliRunner().invoke(app, ["eval", *map(str, args)])
    result.returncode = result.exit_code
    return result


def finite_in(value, lo, hi):
    return isinstance(value, float) and math.isfinite(value) and lo < value < hi


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """DATA_ROOT/celeba-test/{gt,lq} written by prepare_celeba_test.sh from 4 of 8 real CelebA-HQ faces."""
    out = tmp_path_factory.mktemp("data")
    script("prepare_celeba_test.sh", DATA / "faces-aligned" / "resshift-celebahq", out, SIZE=SIZE, COUNT=4)
    return out


def test_prepare_writes_what_eval_dataset_reads_and_peer_names_are_accepted(root, tiny_weights, tmp_path):
    gt, lq = root / "celeba-test" / "gt", root / "celeba-test" / "lq"
    names = sorted(p.name for p in gt.glob("*.png"))
    assert len(names) == 4 and names == sorted(p.name for p in lq.glob("*.png"))
    assert (gt / "manifest.csv").is_file() and (lq / "manifest.csv").is_file()
    assert cv2.imread(str(gt / names[0])).shape == (SIZE, SIZE, 3)
    out = run("--dataset", "celeba-test", "--data-root", root, "--weights", tiny_weights, "--metrics", "psnr,ssim",
              "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    assert data["images"] == 4 and data["gt"] == str(gt) and finite_in(data["metrics"]["psnr"], 5, 60)
    # GFPGAN's / CodeFormer's CelebA-Test layout, and an earlier hq/lq one
    peers = tmp_path / "peers"
    shutil.copytree(gt, peers / "celeba" / "celeba_512_validation")
    shutil.copytree(lq, peers / "celeba" / "celeba_512_validation_lq")
    assert resolve_dataset("celeba-test", peers) == (peers / "celeba" / "celeba_512_validation_lq",
                                                     peers / "celeba" / "celeba_512_validation")
    shutil.copytree(gt, tmp_path / "old" / "celeba-test" / "hq")
    with pytest.raises(EvalError, match=r"celeba-test/lq is missing \(also tried lq, LQ, input"):
        resolve_dataset("celeba-test", tmp_path / "old")


def test_ablation_sequence_trains_scores_and_tabulates_tables_1_and_2(root, tmp_path):
    """scripts/reproduce_ablation.sh at the tiny budget: the five option files trained on real faces (resized by
    scripts/resize_ffhq.sh), scored on the prepared set, each named by the switches its option file sets."""
    faces = tmp_path / "faces"
    script("resize_ffhq.sh", DATA / "faces-aligned" / "ddnm-celebahq", faces, SIZE=SIZE)
    out = tmp_path / "ablation"
    script("reproduce_ablation.sh", root, out, TINY="1", TRAIN_GT=faces, ITERS="4", METRICS="psnr,ssim")
    report = json.loads((out / "table1-2.json").read_text())
    rows = [f"{name} (this run)" for name in TABLE1]
    assert list(report["rows"]) == [INPUT_ROW, *rows]
    for opt in [REPO / "options" / "train_mpcnet_512.yml", *sorted((REPO / "options" / "ablation").glob("*.yml"))]:
        g = yaml.safe_load(opt.read_text())["network_g"]
        gan, parse = g["use_gan_prior"], g["use_parse_prior"]
        expected = [gan, gan and g["use_adain"], parse, parse and g["use_sft"]]
        row = next(r for r, sw in report["switches"].items() if list(sw.values()) == expected)
        assert "".join("✓" if v else "×" for v in expected) == TABLE1[row.removesuffix(" (this run)")]
    for row in report["rows"].values():
        cell = row["CelebA-Test"]
        assert cell["images"] == 4 and set(cell["metrics"]) == {"psnr", "ssim"}
        assert finite_in(cell["metrics"]["psnr"], 5, 60) and finite_in(cell["metrics"]["ssim"], 0, 1.0001)
    assert report["rows"][rows[0]]["CelebA-Test"]["restore"]["weights"].endswith(
        "mpcnet_512_no_gan_prior/models/net_g_latest.pth")
    md = (out / "table1-2.md").read_text()
    assert "Table 1 (model characteristics" in md and "| **w/o AdaIN (this run)** | ✓ | × | ✓ | ✓ |" in md
    assert "| w/o SFT | 37.88 | 0.3838 | 22.64 | 0.6582 |" in md  # the paper's row beside ours
    assert json.loads((out / "train.json").read_text())[0]["iter"] == 4


def test_table_variants_script_then_eval_table_in_the_papers_layout(root, tiny_weights, tmp_path):
    """make_table_variants.sh builds Table 6's sets; eval --table 6 scores them (rows = methods, one column per
    noise level, as the paper prints it; and rows = variants × metrics); eval builds identical sets itself."""
    hq, built = root / "celeba-test" / "gt", tmp_path / "variants"
    script("make_table_variants.sh", hq, built, TABLES="6", SIZE=SIZE)
    assert sorted(p.name for p in built.iterdir()) == sorted(variants(6))
    stamp = {p: p.stat().st_mtime_ns for p in built.rglob("*")}
    out = run("--table", "6", "--hq", hq, "--variants", built, "--weights", tiny_weights, "--metrics", "psnr,ssim",
              "-o", tmp_path / "t6", "--json")
    assert out.returncode == 0, out.output
    assert {p: p.stat().st_mtime_ns for p in built.rglob("*")} == stamp  # read, not rebuilt
    data = json.loads(out.stdout)
    assert [c["name"] for c in data["published"]["columns"]] == variants(6)
    this_run = [r for r in data["rows"] if r.startswith("this run (mpcnet")]
    assert list(data["rows"])[0] == INPUT_ROW and len(this_run) == 1 and len(data["rows"]) == 2
    for row in data["rows"].values():
        assert list(row) == variants(6)
        for cell in row.values():
            assert cell["images"] == 4 and finite_in(cell["metrics"]["psnr"], 5, 60)
            assert finite_in(cell["metrics"]["ssim"], 0, 1.0001)
    # noise is the only factor that changes across the columns: the inputs' PSNR falls from δ 0 to δ 25
    inputs = [data["rows"][INPUT_ROW][v]["metrics"]["psnr"] for v in variants(6)]
    assert inputs[0] > inputs[-1]
    md = (tmp_path / "t6" / "table6.md").read_text()
    assert "| method | δ 0 ↑ | δ 5 ↑ | δ 10 ↑ | δ 15 ↑ | δ 20 ↑ | δ 25 ↑ |" in md
    assert "| MPCNet (paper) | 24.03 | 23.81 | 23.65 | 23.43 | 23.24 | 22.95 |" in md and "*Protocol:*" in md
    assert f"| {INPUT_ROW} | table6-noise25 | {inputs[-1]:.2f} |" in md  # rows = variants, columns = metrics
    # what eval builds where a set is missing (its default --variants OUT/variants) is what the script built
    own = build_variants(6, hq, tmp_path / "own", size=0)
    for v in variants(6):
        pngs = sorted((built / v).glob("*.png"))
        assert len(pngs) == 4
        assert all(np.array_equal(cv2.imread(str(p)), cv2.imread(str(own[v] / p.name))) for p in pngs)


def test_tables_3_and_7_with_the_papers_rows_and_an_input_row(root, tiny_weights, tmp_path):
    out = run("--table", "3", "--data-root", root, "--weights", tiny_weights, "--metrics", "psnr,ssim",
              "-o", tmp_path / "t3", "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    assert data["published"]["title"].startswith("MPCNet paper, Table 3")
    for row in data["rows"].values():
        assert finite_in(row["CelebA-Test"]["metrics"]["psnr"], 5, 60)
    md = (tmp_path / "t3" / "table3.md").read_text()
    assert "| MPCNet (paper) | 29.26 | 0.3097 | 23.82 | 0.6684 |" in md
    assert f"| **{INPUT_ROW}** | not computed | not computed |" in md  # FID/LPIPS were not asked for
    real = tmp_path / "real" / "real-test" / "lq"
    real.mkdir(parents=True)
    for face in sorted((DATA / "codeformer-inputs" / "cropped_faces").glob("*.png"))[:2]:
        shutil.copy(face, real)
    out = run("--table", "7", "--data-root", tmp_path / "real", "--weights", tiny_weights, "-o", tmp_path / "t7",
              "--json")
    assert out.returncode == 0, out.output
    data = json.loads(out.stdout)
    for row in data["rows"].values():
        cell = row["Real-Test"]
        assert cell["images"] == 2 and finite_in(cell["metrics"]["niqe"], 0, 100) and "fid" in cell["skipped"]
    assert "| GPEN | 5.597 | 91.63 |" in (tmp_path / "t7" / "table7.md").read_text()


def test_table_requests_are_refused_before_any_work(root, tmp_path):
    cases = [(("--table", "8", "-o", tmp_path / "a"), "the paper's tables are 1, 2, 3"),
             (("--table", "4", "--data-root", root), "give -o OUT"),
             (("--table", "7", "--gt", root, "-o", tmp_path / "b"), "without ground truth"),
             (("--table", "2", "--data-root", root, "--experiments", tmp_path / "none", "-o", tmp_path / "c"),
              "is not a folder (train the ablation first"),
             (("--table", "5", "--hq", tmp_path / "nothing", "-o", tmp_path / "d"), "--hq"),
             (("--hq", root, "-o", tmp_path / "e"), "--hq and --variants go with --table"),
             (("--table", "3", "--hq", root, "-o", tmp_path / "f"), "--hq and --variants go with --table 4|5|6")]
    for args, message in cases:
        out = run(*args)
        assert out.returncode == 2 and message in out.output, (args, out.output)
    assert not any(tmp_path.iterdir())  # no output folder was created
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "table3.md").write_text("mine")
    out = run("--table", "3", "--data-root", root, "-o", tmp_path / "r")
    assert out.returncode == 2 and "--overwrite" in out.output and (tmp_path / "r" / "table3.md").read_text() == "mine"


def test_eval_heldout_script_scores_a_model_on_a_pools_held_out_faces(tiny_weights, tmp_path):
    """scripts/eval_heldout.sh on a pool of 2 held-out real faces, NIQE on one real face of each set."""
    pool, shared = tmp_path / "pool", tmp_path / "shared"
    (pool / "faces").mkdir(parents=True)
    faces = sorted((DATA / "faces-aligned" / "resshift-celebahq").glob("*.png"))[:3]
    with open(pool / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "split", "native_size"])
        writer.writeheader()
        for i, face in enumerate(faces):  # the pool keeps its faces at 512 px
            cv2.imwrite(str(pool / "faces" / face.name), cv2.resize(cv2.imread(str(face)), (512, 512)))
            writer.writerow({"file": f"faces/{face.name}", "split": "train" if i == 2 else "heldout",
                             "native_size": 512})
    for name in ("cropped_faces", "gray_faces"):
        (shared / "data" / "codeformer-inputs" / name).mkdir(parents=True)
        for face in sorted((DATA / "codeformer-inputs" / name).glob("*.png"))[:1]:
            shutil.copy(face, shared / "data" / "codeformer-inputs" / name)
    proc = script("eval_heldout.sh", pool, tmp_path / "out", tiny_weights, SHARED=shared)
    assert sorted(p.name for p in (tmp_path / "out" / "gt").iterdir()) == sorted(f.name for f in faces[:2])
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    assert model["images"] == 2 and finite_in(model["metrics"]["psnr"], 5, 60)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["PSNR", "SSIM", "detail", "deg_dlib", "LMD"] and lines[1].startswith("input")
    per = {name: json.loads((tmp_path / "out" / name / "metrics.json").read_text())["per_image"]
           for name in ("model", "input")}
    worse = sum(per["model"][f]["psnr"] < per["input"][f]["psnr"] for f in per["model"])
    assert lines[3].startswith(f"faces worse than their input: PSNR {worse}/2, identity ")
    change = sum(per["model"][f]["psnr"] - per["input"][f]["psnr"] for f in per["model"]) / 2  # both are the best
    assert lines[4].startswith(f"the 2 best inputs, model minus input: PSNR {change:+.2f} dB, identity ")
    assert lines[5].startswith("NIQE cropped_faces: input ") and lines[6].startswith("NIQE gray_faces: input ")


def test_every_shell_script_is_run_here():
    """A new script in scripts/ needs an end-to-end test; setup.sh is what `make test` itself runs first."""
    source = Path(__file__).read_text()
    for sh in sorted((REPO / "scripts").glob("*.sh")):
        assert sh.name == "setup.sh" or f'"{sh.name}"' in source, f"{sh.name} is run by no test"


def test_gpu_session_pack_gathers_what_the_gpu_machine_lacks(tmp_path):
    """`scripts/gpu_session.sh pack` (its `run` needs a CUDA machine): basicsr/facexlib/gfpgan, restore's
    detector file, the demo photos, and the face pool as JPEG with its lists and pseudo labels renamed to
    match; a bad verb exits 2 and writes nothing."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "gpu_session.sh", repo / "scripts")
    (tmp_path / "shared").symlink_to(SHARED)  # the script reads ../shared, as beside a checkout
    pool, src = repo / "pool", DATA / "codeformer-inputs" / "cropped_faces"
    (pool / "faces").mkdir(parents=True)
    (pool / "labels").mkdir()
    for name in ("0143.png", "0240.png", "0342.png"):
        shutil.copy(src / name, pool / "faces" / name)
    (pool / "train.txt").write_text("faces/0143.png\nfaces/0240.png\n")
    (pool / "val.txt").write_text("faces/0342.png\n")
    cv2.imwrite(str(pool / "labels" / "0240.png"), np.full((64, 64), 3, np.uint8))
    (pool / "labels" / "labels.csv").write_text("face,method,ok\nfaces/0240.png,hog,1\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO),
           "POOL": "pool"}
    bad = subprocess.run(["bash", "scripts/gpu_session.sh", "fly"], cwd=repo, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr and not (repo / ".gpu").exists()
    out = subprocess.run(["bash", "scripts/gpu_session.sh", "pack"], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    gpu = repo / ".gpu"
    assert all((gpu / "site" / p / "__init__.py").is_file() for p in ("basicsr", "facexlib", "gfpgan"))
    detector = "retinaface_mobilenet0.25_Final.pth"
    assert (gpu / "weights" / detector).read_bytes() == (SHARED_WEIGHTS / detector).read_bytes()
    photos = DATA / "codeformer-inputs" / "whole_imgs"
    assert sorted(p.name for p in (gpu / "photos").iterdir()) == sorted(p.name for p in photos.iterdir())
    assert (gpu / "pool" / "train.txt").read_text().split() == ["faces/0143.jpg", "faces/0240.jpg"]
    assert (gpu / "pool" / "val.txt").read_text().split() == ["faces/0342.jpg"]
    for name in ("0143", "0240", "0342"):
        jpg, png = cv2.imread(str(gpu / "pool" / "faces" / f"{name}.jpg")), cv2.imread(str(src / f"{name}.png"))
        assert jpg.shape == png.shape and cv2.PSNR(jpg, png) > 35
    with open(gpu / "pool" / "labels" / "labels.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [{"face": "faces/0240.jpg", "method": "hog", "ok": "1"}]
    assert (gpu / "pool" / "labels" / "0240.png").read_bytes() == (pool / "labels" / "0240.png").read_bytes()


def test_train_tiny_and_set_are_checked_before_any_stage(tmp_path):
    """`--set` needs KEY=VALUE; overrides are checked like the file (key named); --tiny alone still needs a
    training folder that exists (the 512 files point at FFHQ's lmdb)."""
    opt = str(REPO / "options" / "train_mpcnet_512.yml")
    cases = [(("--set", "train.total_iter"), "expected KEY=VALUE"),
             (("--set", "train.total_iter=0"), "train.total_iter must be an integer ≥ 1, not 0"),
             (("--tiny",), "datasets.train.dataroot_gt 'datasets/ffhq/ffhq_512.lmdb' does not exist"),
             (("--set", "train.optim_g.lr.x=1"), "--set train.optim_g.lr.x: 'lr' is not a mapping")]
    for args, message in cases:
        out = CliRunner().invoke(app, ["train", "-opt", opt, *args, "--set", f"path.experiments_root={tmp_path}"])
        assert out.exit_code == 2 and message in out.output, (args, out.output)
    assert not any(tmp_path.iterdir())
