"""Training (issue 5): each stage lowers its loss on real faces, resume is exact, checkpoints survive
kill -9, DDP runs with gloo on CPU, the AMP path works. Small nets at 32–64 px on 1 thread."""
from __future__ import annotations

import copy
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import torch
import yaml

from mpcnet.archs import network_from_checkpoint
from mpcnet.checkpoint import load_checkpoint
from tests.conftest import DATA, REPO

SIZE = 64
NET_G = {"type": "MPCNet", "out_size": SIZE, "num_style_feat": 32, "channel_multiplier": 1, "narrow": 0.0625,
         "num_mlp": 1, "num_rcab": 1, "use_parse_prior": True, "use_sft": True, "parse_base_ch": 8,
         "parse_res_depth": 1, "parse_max_ch": 16, "parse_min_feat_size": 8}
NET_D = {"type": "MPCDiscriminator", "out_size": SIZE, "narrow": 0.0625}
ADAM = {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99], "eps": 1e-8}


@pytest.fixture(scope="module")
def faces64(tmp_path_factory) -> Path:
    """16 real clean CelebA-HQ faces downscaled to 64 px (the HQ side)."""
    out = tmp_path_factory.mktemp("faces64")
    for src in sorted((DATA / "celeba-hq-clean" / "sean-1024" / "style_imgs_test").glob("*.jpg"))[:16]:
        img = cv2.resize(cv2.imread(str(src)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"{src.stem}.png"), img)
    return out


def face_set(root: Path, **extra) -> dict:
    return {"name": "faces", "type": "FaceDegradedDataset", "dataroot_gt": str(root), "io_backend": {"type": "disk"},
            "gt_size": SIZE, "batch_size_per_gpu": 4, "num_worker_per_gpu": 0, **extra}


def mpcnet_options(root: Path, exp: Path, name: str, total_iter: int, gan: bool = True, **train) -> dict:
    opt = {"name": name, "model_type": "MPCNetModel", "num_gpu": 0, "manual_seed": 7, "cpu_threads": 1,
           "datasets": {"train": face_set(root)},
           "network_g": dict(NET_G),
           "train": {"total_iter": total_iter, "optim_g": ADAM, "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
                     **train},
           "logger": {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False},
           "path": {"experiments_root": str(exp)}}
    if gan:
        opt["network_d"] = dict(NET_D)
        opt["train"].update(optim_d=ADAM, gan_opt={"type": "GANLoss", "gan_type": "hinge", "loss_weight": 0.1})
    return opt


def write(opt: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(opt))
    return path


def run_stage(opt: dict, tmp: Path, resume: bool = False) -> dict:
    from mpcnet.train import train_pipeline

    return train_pipeline(write(opt, tmp / f"{opt['name']}.yml"), resume=resume)


def fixed_batch(root: Path, n: int = 8) -> dict:
    """A fixed set of (LQ, GT) pairs: the dataset's epoch-0 draws, no flip."""
    from mpcnet.data.face_degraded_dataset import FaceDegradedDataset

    ds = FaceDegradedDataset({**face_set(root), "use_hflip": False, "seed": 123})
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "gt")}


def l1_of(net: torch.nn.Module, batch: dict) -> float:
    with torch.no_grad():
        return torch.nn.functional.l1_loss(net.eval()(batch["lq"]), batch["gt"]).item()


def test_mpcnet_stage_lowers_reconstruction_loss_and_saves_contract_checkpoint(faces64, tmp_path):
    torch.manual_seed(7)
    # with every loss the shipped stage-3 option file uses (L1, gradient, patch spectrum, hinge GAN)
    opt = mpcnet_options(faces64, tmp_path / "exp", "mpc", total_iter=8,
                         gradient_opt={"type": "GradientL1Loss", "loss_weight": 1.0},
                         frequency_opt={"type": "PatchFrequencyLoss", "loss_weight": 1.0, "patch": 16})
    batch = fixed_batch(faces64)
    from basicsr.utils.registry import ARCH_REGISTRY

    import mpcnet.archs  # noqa: F401
    torch.manual_seed(7)
    before = l1_of(ARCH_REGISTRY.get("MPCNet")(**{k: v for k, v in NET_G.items() if k != "type"}), batch)
    summary = run_stage(opt, tmp_path)
    assert summary["iter"] == 8 and summary["it_per_s"] > 0
    ckpt = load_checkpoint(summary["latest"])
    assert ckpt["arch"]["type"] == "MPCNet" and ckpt["meta"]["iter"] == 8
    after = l1_of(network_from_checkpoint(ckpt), batch)  # what `mpcnet restore --weights` does
    assert after < before * 0.9, (before, after)
    models = Path(summary["experiments_root"]) / "models"
    assert {p.name for p in models.iterdir()} >= {"net_g_2.pth", "net_g_8.pth", "net_d_8.pth", "net_g_latest.pth"}


def test_a_run_can_start_from_a_shipped_checkpoint(faces64, tmp_path):
    """path.pretrain_network_g: a later sitting on a machine without training states continues from
    the shipped weights (their batch L1 is where the first run ended, not where a fresh network starts);
    path.pretrain_network_d brings that run's discriminator along."""
    first = run_stage(mpcnet_options(faces64, tmp_path / "exp", "first", total_iter=8), tmp_path)
    batch = fixed_batch(faces64)
    trained = l1_of(network_from_checkpoint(load_checkpoint(first["latest"])), batch)
    opt = mpcnet_options(faces64, tmp_path / "exp", "again", total_iter=1)
    first_d = Path(first["experiments_root"]) / "models" / "net_d_8.pth"
    opt["path"].update(pretrain_network_g=first["latest"], pretrain_network_d=str(first_d))
    opt["train"]["optim_g"] = opt["train"]["optim_d"] = {**ADAM, "lr": 1e-12}  # one step that changes nothing measurable
    summary = run_stage(opt, tmp_path)
    again = l1_of(network_from_checkpoint(load_checkpoint(summary["latest"])), batch)
    again_d = load_checkpoint(Path(summary["experiments_root"]) / "models" / "net_d_1.pth")["params"]
    for name, value in load_checkpoint(first_d)["params"].items():
        if not name.endswith(("_u", "_v")):  # spectral norm's power-iteration vectors move at any lr
            torch.testing.assert_close(again_d[name], value, rtol=1e-5, atol=1e-6)
    from mpcnet.archs.mpcnet_arch import MPCNet

    torch.manual_seed(7)
    fresh = l1_of(MPCNet(**{k: v for k, v in NET_G.items() if k != "type"}), batch)
    assert abs(again - trained) < 1e-4 * trained and fresh > trained * 1.1, (trained, again, fresh)


@pytest.mark.parametrize("stage", ["mpcnet", "stylegan2"])
def test_resume_equals_uninterrupted_run(faces64, tmp_path, stage):
    """Both stages that draw random numbers every iteration (eq. 1 degradations and flips; the
    StyleGAN2 latents and lazy R1) resume exactly where an uninterrupted run would be."""
    make = {"mpcnet": mpcnet_options, "stylegan2": stylegan_options}[stage]

    def options(*args, **kwargs):  # stage 3 with its optional EMA of net_g, so that resumes too
        opt = make(*args, **kwargs)
        if stage == "mpcnet":
            opt["train"]["ema_decay"] = 0.5
        return opt
    straight = run_stage(options(faces64, tmp_path / "a", "run", total_iter=6), tmp_path)
    first = options(faces64, tmp_path / "b", "run", total_iter=4)
    run_stage(first, tmp_path)
    second = copy.deepcopy(first)
    second["train"]["total_iter"] = 6
    resumed = run_stage(second, tmp_path, resume=True)
    assert resumed["iter"] == 6
    for label, params in (("net_g", "params"), ("net_g", "params_ema"), ("net_d", "params")):
        a = load_checkpoint(Path(straight["experiments_root"]) / "models" / f"{label}_latest.pth")[params]
        b = load_checkpoint(Path(resumed["experiments_root"]) / "models" / f"{label}_latest.pth")[params]
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{label}.{params}.{key} differs")
    # and the resumed run really continued: its parameters moved after iteration 4
    at4 = load_checkpoint(Path(resumed["experiments_root"]) / "models" / "net_g_4.pth")["params"]
    b = load_checkpoint(Path(resumed["experiments_root"]) / "models" / "net_g_latest.pth")["params"]
    assert any(not torch.equal(at4[k], b[k]) for k in b)


def test_resume_without_state_is_one_clear_error(faces64, tmp_path):
    from mpcnet.train import TrainError

    with pytest.raises(TrainError, match="no training state"):
        run_stage(mpcnet_options(faces64, tmp_path / "none", "nothing", total_iter=2), tmp_path, resume=True)


KILL_SCRIPT = """
import os, sys, time, torch
from mpcnet.checkpoint import save_checkpoint
path, stall = sys.argv[1], sys.argv[2] == 'stall'
save_checkpoint({'params': {'w': torch.zeros(4)}, 'meta': {'n': 0}}, path)
print('ready', flush=True)
if stall:  # hold the next save between writing its bytes and renaming them into place
    def slow_fsync(fd):
        print('writing', flush=True)
        time.sleep(60)
    os.fsync = slow_fsync
n = 0
while True:
    n += 1
    save_checkpoint({'params': {'w': torch.full((2_000_000,), float(n))}, 'meta': {'n': n}}, path)
"""


def read_line(proc: subprocess.Popen, expected: bytes, seconds: float = 60) -> None:
    """The child's next line is ``expected``, within ``seconds``; otherwise fail at once, saying so
    (a bare ``readline`` would block until the suite's timeout when the child stalls)."""
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    if not ready:
        proc.kill()
        pytest.fail(f"the checkpoint writer printed nothing for {seconds:.0f} s (expected {expected!r})")
    line = proc.stdout.readline().strip()
    assert line == expected, f"the checkpoint writer said {line!r}, expected {expected!r} (exit code {proc.poll()})"


def start_saver(target: Path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(target), mode], stdout=subprocess.PIPE, cwd=REPO)
    read_line(proc, b"ready")
    return proc


def assert_whole(target: Path) -> int:
    ckpt = load_checkpoint(target)
    n = ckpt["meta"]["n"]
    assert torch.equal(ckpt["params"]["w"], torch.full_like(ckpt["params"]["w"], float(n)))
    return n


@pytest.mark.timeout(180)
def test_checkpoint_killed_mid_write_leaves_previous_loadable(tmp_path):
    target = tmp_path / "net_g_latest.pth"
    proc = start_saver(target, "stall")
    read_line(proc, b"writing")  # new bytes on disk, not yet renamed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert list(tmp_path.glob(".net_g_latest.pth.*.part")), "the interrupted write leaves only a temp file"
    assert assert_whole(target) == 0  # the previous checkpoint, intact
    for delay in (0.4,):  # and killed at an arbitrary moment of a save loop
        proc = start_saver(target, "loop")
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert_whole(target)


def test_ddp_gloo_two_processes(faces64, tmp_path):
    opt = mpcnet_options(faces64, tmp_path / "ddp", "ddp", total_iter=2)
    opt["datasets"]["train"]["batch_size_per_gpu"] = 2
    path = write(opt, tmp_path / "ddp.yml")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29517", "-m", "mpcnet_cli.main",
                          "train", "-opt", str(path), "--launcher", "pytorch"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=200)
    assert res.returncode == 0, res.stderr[-3000:]
    log = next((tmp_path / "ddp" / "ddp").glob("train_ddp_*.log")).read_text()
    assert "world_size: 2" in log and "End of training: 2 iterations" in log
    network_from_checkpoint(load_checkpoint(tmp_path / "ddp" / "ddp" / "models" / "net_g_latest.pth"))
    # two stages in one command under torchrun: the process group is joined once and reused
    opt2 = mpcnet_options(faces64, tmp_path / "ddp", "ddp2", total_iter=2)
    opt2["datasets"]["train"]["batch_size_per_gpu"] = 2
    res = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29518", "-m", "mpcnet_cli.main",
                          "train", "-opt", str(path), "-opt", str(write(opt2, tmp_path / "ddp2.yml")),
                          "--launcher", "pytorch"], cwd=REPO, env=env, capture_output=True, text=True, timeout=200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "End of training: 2 iterations" in next((tmp_path / "ddp" / "ddp2").glob("train_ddp2_*.log")).read_text()


def test_one_command_runs_several_stages_in_order(faces64, tmp_path):
    """`mpcnet train -opt A -opt B` runs both stages to their end, in the order given."""
    first = mpcnet_options(faces64, tmp_path, "first", total_iter=2, gan=False)
    second = mpcnet_options(faces64, tmp_path, "second", total_iter=2, gan=False)
    res = subprocess.run([str(Path(sys.executable).with_name("mpcnet")), "train", "-opt", str(write(first, tmp_path / "a.yml")),
                          "-opt", str(write(second, tmp_path / "b.yml"))],
                         cwd=REPO, capture_output=True, text=True, timeout=200)
    assert res.returncode == 0, res.stderr[-3000:]
    summaries = yaml.safe_load(res.stdout)
    assert [s["name"] for s in summaries] == ["first", "second"] and all(s["iter"] == 2 for s in summaries)
    for name in ("first", "second"):  # each stage logs into its own file
        log = next((tmp_path / name).glob(f"train_{name}_*.log")).read_text()
        assert f"name: {name}" in log and "End of training: 2 iterations" in log


def test_amp_bf16_path_on_cpu(faces64, tmp_path):
    from basicsr.models import build_model

    import mpcnet.models  # noqa: F401
    from mpcnet.train import load_options

    opt = mpcnet_options(faces64, tmp_path / "amp", "amp", total_iter=1, amp="bf16", amp_on_cpu=True)
    model = build_model(load_options(write(opt, tmp_path / "amp.yml")))
    assert model.amp_dtype == torch.bfloat16 and not model.use_scaler
    model.feed_data(fixed_batch(faces64, 4))
    with model.autocast():
        assert model.net_g(model.lq).dtype == torch.bfloat16  # convolutions really ran in bf16
    model.optimize_parameters(1)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in model.get_current_log().values())
    # without amp_on_cpu the CPU run stays fp32, as documented
    opt["train"].pop("amp_on_cpu")
    assert build_model(load_options(write(opt, tmp_path / "amp2.yml"))).amp_dtype is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA fp16 + GradScaler needs a GPU; none on this machine")
def test_amp_fp16_with_grad_scaler_on_cuda(faces64, tmp_path):
    opt = mpcnet_options(faces64, tmp_path / "fp16", "fp16", total_iter=4, amp="fp16")
    opt["num_gpu"] = 1
    opt["channels_last"] = True
    summary = run_stage(opt, tmp_path)
    assert summary["iter"] == 4
    state = load_checkpoint(Path(summary["experiments_root"]) / "training_states" / "4.state")
    assert set(state["scalers"]) == {"g", "d"}


def celebamask_set(faces64: Path, tmp: Path) -> dict:
    """A folder laid out like CelebAMask-HQ: real CelebA-HQ faces as images and the real CelebAMask-HQ
    colour maps (as cached label maps, colours numbered in order) as labels; its stage-1 dataset options."""
    root, cache = tmp / "CelebAMask-HQ", tmp / "labels"
    (root / "CelebA-HQ-img").mkdir(parents=True)
    cache.mkdir()
    for i, face in enumerate(sorted(faces64.glob("*.png"))[:8]):
        index = 28000 + i
        cv2.imwrite(str(root / "CelebA-HQ-img" / f"{index}.jpg"), cv2.imread(str(face)))
        seg = cv2.imread(str(DATA / "gpen-examples" / "segs" / f"{index}.png"))
        _, inverse = torch.unique(torch.from_numpy(seg.reshape(-1, 3)), dim=0, return_inverse=True)
        cv2.imwrite(str(cache / f"{index}.png"), inverse.reshape(seg.shape[:2]).clamp(max=18).numpy().astype("uint8"))
    return {"name": "parse", "type": "CelebAMaskHQParsingDataset", "dataroot": str(root), "label_cache": str(cache),
            "gt_size": SIZE, "batch_size_per_gpu": 4, "num_worker_per_gpu": 0}


def parsenet_options(data: dict, exp: Path, name: str, total_iter: int, save_every: int = 5) -> dict:
    net = {"type": "MPCParseNet", "in_size": SIZE, "out_size": SIZE, "min_feat_size": 8, "base_ch": 8,
           "res_depth": 1, "ch_range": [8, 16]}
    return {"name": name, "model_type": "MPCParseNetModel", "num_gpu": 0, "manual_seed": 3, "cpu_threads": 1,
            "datasets": {"train": data}, "network_g": net,
            "train": {"total_iter": total_iter, "optim_g": {**ADAM, "lr": 2e-3}},
            "logger": {"print_freq": 5, "save_checkpoint_freq": save_every, "use_tb_logger": False},
            "path": {"experiments_root": str(exp)}}


def test_parsenet_stage_lowers_cross_entropy(faces64, tmp_path):
    """Stage 1 on a folder laid out like CelebAMask-HQ (:func:`celebamask_set`). The pairs do not belong
    together (no CelebAMask-HQ images here): this checks the optimisation."""
    from mpcnet.data.celebamask_parsing_dataset import CelebAMaskHQParsingDataset
    from mpcnet.models.parsenet_model import parse_logits

    data = celebamask_set(faces64, tmp_path)
    summary = run_stage(parsenet_options(data, tmp_path / "exp", "parse", total_iter=10), tmp_path)
    ds = CelebAMaskHQParsingDataset({**data, "use_hflip": False, "seed": 99})
    lq = torch.stack([ds[i]["lq"] for i in range(len(ds))])
    labels = torch.stack([ds[i]["label"] for i in range(len(ds))])
    models = Path(summary["experiments_root"]) / "models"

    def ce(ckpt_name):
        with torch.no_grad():
            net = network_from_checkpoint(load_checkpoint(models / ckpt_name))
            return torch.nn.functional.cross_entropy(parse_logits(net(lq)), labels).item()
    assert ce("net_g_latest.pth") < ce("net_g_5.pth")


def test_parsenet_resume_equals_uninterrupted_run(faces64, tmp_path):
    """Stage 1 draws random numbers every iteration too (eq. 1 degradations of the parser's input, flips
    that swap left/right labels): 3 iterations (mid-epoch: 8 faces, batches of 4), stop, resume to 6 gives
    the weights of 6 in one go."""
    data = celebamask_set(faces64, tmp_path)
    straight = run_stage(parsenet_options(data, tmp_path / "a", "run", total_iter=6, save_every=2), tmp_path)
    first = parsenet_options(data, tmp_path / "b", "run", total_iter=3, save_every=2)
    run_stage(first, tmp_path)
    resumed = run_stage({**first, "train": {**first["train"], "total_iter": 6}}, tmp_path, resume=True)
    assert resumed["iter"] == 6
    a = load_checkpoint(Path(straight["experiments_root"]) / "models" / "net_g_latest.pth")["params"]
    b = load_checkpoint(Path(resumed["experiments_root"]) / "models" / "net_g_latest.pth")["params"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"net_g.{key} differs")
    at3 = load_checkpoint(Path(resumed["experiments_root"]) / "models" / "net_g_3.pth")["params"]  # it trained on
    assert any(not torch.equal(at3[k], b[k]) for k in b)


def stylegan_options(root: Path, exp: Path, name: str, total_iter: int) -> dict:
    net_g = {"type": "StyleGAN2GeneratorNoNoise", "out_size": SIZE, "num_style_feat": 32, "num_mlp": 1,
             "channel_multiplier": 1, "narrow": 0.0625}
    return {"name": name, "model_type": "NoiseFreeStyleGAN2Model", "num_gpu": 0, "manual_seed": 5, "cpu_threads": 1,
            "datasets": {"train": face_set(root, synthesize_lq=False)}, "network_g": net_g,
            "network_d": dict(NET_D),
            "train": {"total_iter": total_iter, "optim_g": {**ADAM, "lr": 2e-3, "betas": [0.0, 0.99]},
                      "optim_d": {**ADAM, "lr": 2e-3, "betas": [0.0, 0.99]}, "net_d_reg_every": 4,
                      "r1_reg_weight": 1.0},
            "logger": {"print_freq": 4, "save_checkpoint_freq": 2, "use_tb_logger": False},
            "path": {"experiments_root": str(exp)}}


def test_stylegan2_stage_trains_discriminator_and_feeds_mpcnet(faces64, tmp_path):
    """Stage 2: the noise-free StyleGAN2 trains (its discriminator separates real faces from the
    generator's samples better than at the start) and its checkpoint loads into MPCNet as the prior."""
    summary = run_stage(stylegan_options(faces64, tmp_path / "exp", "sg", total_iter=8), tmp_path)
    models = Path(summary["experiments_root"]) / "models"
    torch.manual_seed(0)
    with torch.no_grad():
        early_g = {k: v for k, v in load_checkpoint(models / "net_g_2.pth").items() if k != "params_ema"}
        fake = network_from_checkpoint(early_g)([torch.randn(8, 32)])[0]
        real = fixed_batch(faces64)["gt"]

        def d_loss(name):
            d = network_from_checkpoint(load_checkpoint(models / name))
            return (torch.nn.functional.softplus(-d(real)).mean() + torch.nn.functional.softplus(d(fake)).mean()).item()
        assert d_loss("net_d_8.pth") < d_loss("net_d_2.pth")
    ckpt = load_checkpoint(models / "net_g_latest.pth")
    assert "params_ema" in ckpt and ckpt["arch"]["type"] == "StyleGAN2GeneratorNoNoise"
    from basicsr.utils.registry import ARCH_REGISTRY

    mpc = ARCH_REGISTRY.get("MPCNet")(**{k: v for k, v in NET_G.items() if k != "type"},
                                      gan_prior_path=str(models / "net_g_latest.pth"))
    for key, value in ckpt["params_ema"].items():
        torch.testing.assert_close(mpc.stylegan.state_dict()[key], value)


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO) for p in (REPO / "options").rglob("*.yml")
                                         if "model_type" in p.read_text()), ids=str)
def test_option_files_name_registered_parts(path):
    """Every shipped option file parses and names a registered model, networks, datasets and losses."""
    import basicsr.archs  # noqa: F401 - BasicSR's own networks register on import
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

    from mpcnet.train import load_options

    opt = load_options(REPO / path)  # Registry.get raises KeyError for an unknown name
    MODEL_REGISTRY.get(opt["model_type"])
    for key in ("network_g", "network_d"):
        if key in opt:
            ARCH_REGISTRY.get(opt[key]["type"])
    for dataset in opt["datasets"].values():
        DATASET_REGISTRY.get(dataset["type"])
    for name, value in opt["train"].items():
        if name.endswith("_opt"):
            LOSS_REGISTRY.get(value["type"])
    assert opt["train"]["optim_g"]["betas"] and opt["train"]["total_iter"] > 0


def test_face_dataset_folder_and_lmdb_give_the_same_reproducible_pairs(faces64, tmp_path):
    """The FFHQ-style dataset reads a folder or an lmdb (BasicSR's layout) alike; a sample's
    degradation and flip depend only on (seed, epoch, index)."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    from mpcnet.data.face_degraded_dataset import FaceDegradedDataset

    names = sorted(p.name for p in faces64.glob("*.png"))[:4]
    make_lmdb_from_imgs(str(faces64), str(tmp_path / "faces.lmdb"), names, [n[:-4] for n in names])
    folder = FaceDegradedDataset({**face_set(faces64), "seed": 1})
    lmdb = FaceDegradedDataset({**face_set(tmp_path / "faces.lmdb"), "io_backend": {"type": "lmdb"}, "seed": 1})
    assert len(lmdb) == 4
    for i in range(4):
        a, b = folder[i], lmdb[i]
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"]) and a["degradation"] == b["degradation"]
        assert a["lq"].shape == (3, SIZE, SIZE) and -1 <= a["lq"].min() and a["lq"].max() <= 1
        assert not torch.equal(a["lq"], a["gt"])
    folder.set_epoch(1)
    assert folder[0]["degradation"] != lmdb[0]["degradation"]  # a new epoch draws a new degradation


def test_face_dataset_similarity_jitter_reframes_the_gt_and_keeps_its_detail(faces64):
    """``similarity_jitter`` (the twelfth sitting's run): each sample's GT under its own random scale and
    rotation, reproducible by (seed, epoch, index), as sharp as the plain GT (resampled at twice the
    size), the identity similarity giving the plain GT back; bad settings are refused by name."""
    from mpcnet.data.face_degraded_dataset import FaceDegradedDataset

    grad = lambda t: (t[:, :, 1:] - t[:, :, :-1]).abs().mean().item()  # noqa: E731
    plain = FaceDegradedDataset({**face_set(faces64), "seed": 3, "use_hflip": False})
    jitter = {"scale": [0.85, 1.15], "rotation": 12}
    ds = FaceDegradedDataset({**face_set(faces64), "seed": 3, "use_hflip": False, "similarity_jitter": jitter})
    again = FaceDegradedDataset({**face_set(faces64), "seed": 3, "use_hflip": False, "similarity_jitter": jitter})
    moved = [(ds[i]["gt"] - plain[i]["gt"]).abs().mean().item() for i in range(8)]
    assert min(moved) > 0.01  # every GT is reframed
    assert torch.equal(ds[2]["gt"], again[2]["gt"]) and torch.equal(ds[2]["lq"], again[2]["lq"])
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["gt"], again[2]["gt"])  # a new epoch, a new framing
    ratio = sum(grad(ds[i]["gt"]) for i in range(8)) / sum(grad(plain[i]["gt"]) for i in range(8))
    assert 0.9 < ratio < 1.1
    still = FaceDegradedDataset({**face_set(faces64), "seed": 3, "use_hflip": False,
                                 "similarity_jitter": {"scale": [1.0, 1.0], "rotation": 0}})
    assert (still[4]["gt"] - plain[4]["gt"]).abs().max().item() < 0.05
    for bad in ({"scale": [1.1, 0.9]}, {"scale": [0, 1]}, {"rotation": -5}, {"shift": 3}, {"scale": 1.1}):
        with pytest.raises(ValueError, match="similarity_jitter"):
            FaceDegradedDataset({**face_set(faces64), "similarity_jitter": bad})


def test_face_dataset_draws_each_range_set_of_a_mixture_as_often_as_weighted(faces64):
    """``degradation_mix`` (the eighth sitting's run: the paper's ranges and GFPGAN's milder ones): each
    sample draws one set with probability ∝ weight, reproducibly; a single set keeps the old draws."""
    from mpcnet.data.face_degraded_dataset import FaceDegradedDataset

    paper = {"scale": [4.0, 8.0]}
    mild = {"kernels": "gaussian", "gaussian_sigma": [0.1, 1.0], "scale": [1.0, 2.0], "noise": None}
    ds = FaceDegradedDataset({**face_set(faces64), "seed": 3, "degradation_mix": [
        {"weight": 3, "ranges": paper}, {"weight": 1, "ranges": mild}]})
    draws = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        draws += [json.loads(ds[i]["degradation"]) for i in range(len(ds))]
    mild_draws = [d for d in draws if d["scale"] <= 2.0]
    assert all(d["kernel"] == "gaussian" and d["noise"] == 0 for d in mild_draws)
    assert all(d["scale"] >= 4.0 for d in draws if d not in mild_draws)
    assert 0.15 < len(mild_draws) / len(draws) < 0.35  # 1 in 4 of 128 draws
    assert json.loads(ds[0]["degradation"]) == draws[-len(ds)]  # (seed, epoch, index) fixes the draw
    # the milder set keeps more of the GT than the paper's set (L1 of LQ to GT)
    errs = {True: [], False: []}
    for i in range(len(ds)):
        item = ds[i]
        errs[json.loads(item["degradation"])["scale"] <= 2.0].append((item["lq"] - item["gt"]).abs().mean().item())
    assert errs[True] and errs[False] and max(errs[True]) < min(errs[False])
    single = FaceDegradedDataset({**face_set(faces64), "seed": 3, "degradation": paper})
    alone = FaceDegradedDataset({**face_set(faces64), "seed": 3, "degradation_mix": [{"weight": 1, "ranges": paper}]})
    assert single[5]["degradation"] == alone[5]["degradation"]
    for bad in ({"degradation_mix": [{"weight": 1}]}, {"degradation_mix": [{"weight": -1, "ranges": paper}]},
                {"degradation_mix": [{"weight": 1, "ranges": {"scale": [0, 2]}}]},
                {"degradation": paper, "degradation_mix": [{"weight": 1, "ranges": paper}]}):
        with pytest.raises(ValueError):
            FaceDegradedDataset({**face_set(faces64), **bad})
