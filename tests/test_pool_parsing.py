"""Stage 1 on the face pool's pseudo labels (issue 12): (face, label) pairs with eq. 1 LQ and a
left/right-swapping flip, only trusted faces of the requested split, the option file's dataset, and
a short training run that validates with mIoU. A tiny pool of real faces labelled by dlib."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from tests.conftest import DATA, REPO

pytest.importorskip("dlib", reason="the 'identity' extra (dlib-bin) is not installed")

from mpcnet.data.pool_labels import PoolLabelRun  # noqa: E402
from mpcnet.data.pool_parsing_dataset import FacePoolParsingDataset  # noqa: E402
from mpcnet.data.pseudo_parsing import LABEL, LANDMARK_PARTS  # noqa: E402
from mpcnet.parsing_classes import FLIP_LABELS  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """8 real clean faces at 256 px, 6 train / 2 val, labelled; one train face's row marked untrusted."""
    root = tmp_path_factory.mktemp("pool")
    (root / "faces").mkdir()
    sources = sorted((DATA / "celeba-hq-clean" / "sean-1024" / "style_imgs_test").glob("*.jpg"))[:8]
    names = []
    for src in sources:
        names.append(f"faces/{src.stem}.png")
        cv2.imwrite(str(root / names[-1]), cv2.resize(cv2.imread(str(src)), (256, 256), interpolation=cv2.INTER_AREA))
    (root / "train.txt").write_text("\n".join(names[:6]) + "\n")
    (root / "val.txt").write_text("\n".join(names[6:]) + "\n")
    results = list(PoolLabelRun(root))
    assert [r.status for r in results] == ["written"] * 8
    table = (root / "labels" / "labels.csv").read_text().replace(f"{names[0]},hog,1", f"{names[0]},hog,0")
    (root / "labels" / "labels.csv").write_text(table)
    return root


def dataset(pool: Path, **opt) -> FacePoolParsingDataset:
    return FacePoolParsingDataset({"dataroot": str(pool), "gt_size": SIZE, "seed": 5, **opt})


def test_pairs_of_the_split_with_trusted_labels(pool):
    train, val = dataset(pool, split="train"), dataset(pool, split="val")
    assert len(train) == 5 and len(val) == 2  # the untrusted face is left out
    assert not set(train.items) & set(val.items)
    item = train[0]
    assert item["lq"].shape == item["gt"].shape == (3, SIZE, SIZE) and item["label"].shape == (SIZE, SIZE)
    assert -1 <= float(item["gt"].min()) and float(item["gt"].max()) <= 1
    assert set(item["label"].unique().tolist()) <= {0} | {LABEL[p] for p in LANDMARK_PARTS}
    assert (item["lq"] - item["gt"]).abs().mean() > 0.02  # eq. 1 degraded
    label = cv2.imread(str(pool / "labels" / Path(train.items[0]).name), cv2.IMREAD_GRAYSCALE)
    assert label.shape == (256, 256)


def test_flip_mirrors_face_and_swaps_left_and_right(pool):
    """Same seed with and without the flip: the GT is mirrored and the label mirrored with l_/r_
    classes swapped on the items the flip drew, unchanged on the others."""
    flipping, plain = dataset(pool, split="train"), dataset(pool, split="train", use_hflip=False)
    flipped = 0
    for i in range(len(plain)):
        a, b = flipping[i], plain[i]
        if torch.equal(a["gt"], b["gt"]):
            assert torch.equal(a["label"], b["label"])
            continue
        flipped += 1
        torch.testing.assert_close(a["gt"], b["gt"].flip(-1))
        assert np.array_equal(a["label"].numpy(), FLIP_LABELS[b["label"].numpy()[:, ::-1]])
        left_eye = a["label"] == LABEL["l_eye"]
        assert left_eye.nonzero()[:, 1].float().mean() > SIZE / 2  # still the image's right half
    assert 0 < flipped < len(plain)


def test_option_file_builds_its_datasets(pool):
    opt = yaml.safe_load((REPO / "options" / "train_parsenet_pool256.yml").read_text())
    for phase, split in (("train", 5), ("val", 2)):
        ds = FacePoolParsingDataset({**opt["datasets"][phase], "dataroot": str(pool)})
        assert len(ds) == split and ds[0]["label"].shape == (256, 256)
    assert opt["cpu_threads"] == 1 and opt["logger"]["save_checkpoint_freq"] <= 100
    assert opt["datasets"]["val"]["split"] == "val"


def test_stage1_trains_on_pool_labels_and_validates_miou(pool, tmp_path):
    from mpcnet.archs import network_from_checkpoint
    from mpcnet.checkpoint import load_checkpoint
    from mpcnet.train import train_pipeline

    data = {"type": "FacePoolParsingDataset", "dataroot": str(pool), "gt_size": SIZE}
    opt = {"name": "parse_pool", "model_type": "MPCParseNetModel", "num_gpu": 0, "manual_seed": 3, "cpu_threads": 1,
           "datasets": {"train": {**data, "name": "train", "split": "train", "batch_size_per_gpu": 4,
                                  "num_worker_per_gpu": 0},
                        "val": {**data, "name": "val", "split": "val", "use_hflip": False}},
           "network_g": {"type": "MPCParseNet", "in_size": SIZE, "out_size": SIZE, "min_feat_size": 8, "base_ch": 8,
                         "res_depth": 1, "ch_range": [8, 16]},
           "train": {"total_iter": 4, "optim_g": {"type": "Adam", "lr": 2e-3, "betas": [0.9, 0.99]}},
           "val": {"val_freq": 4},
           "logger": {"print_freq": 2, "save_checkpoint_freq": 2, "use_tb_logger": False},
           "path": {"experiments_root": str(tmp_path / "exp")}}
    (tmp_path / "opt.yml").write_text(yaml.safe_dump(opt))
    summary = train_pipeline(tmp_path / "opt.yml")
    assert summary["iter"] == 4 and 0 <= summary["metrics"]["miou"] <= 1
    assert 0 <= summary["metrics"]["pixel_acc"] <= 1
    parser = network_from_checkpoint(load_checkpoint(Path(summary["experiments_root"]) / "models" / "net_g_2.pth"))
    logits = parser(torch.zeros(1, 3, SIZE, SIZE))[0]
    assert logits.shape == (1, 19, SIZE, SIZE)
