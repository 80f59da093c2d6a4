"""The weights registry: lookup order, sha256 verification, pins, offline fetch via file:// URLs."""
import hashlib

import pytest
import torch
import yaml

from mpcnet import weights
from mpcnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tests.conftest import REPO, SHARED_WEIGHTS, shared_file


def _registry(tmp_path, monkeypatch, **entry):
    base = dict(name="toy", file="toy.bin", url="", sha256="unknown", size=None, licence="MIT", purpose="t")
    path = tmp_path / "weights.yaml"
    path.write_text(yaml.safe_dump({"weights": [base | entry]}))
    monkeypatch.setenv("MPCNET_WEIGHTS_YAML", str(path))


def test_every_entry_is_complete():
    for entry in weights.load_weights_registry().values():
        assert (entry.url or "").startswith("https://") or entry.bundled, entry.name
        assert entry.licence and entry.purpose
        assert entry.sha256 == weights.UNKNOWN or len(entry.sha256) == 64


def test_shared_yunet_resolves_and_verifies():
    shared_file("weights", "face_detection_yunet.onnx")
    assert weights.resolve("yunet") == SHARED_WEIGHTS / "face_detection_yunet.onnx"


def test_bundled_model_resolves_from_the_package_and_is_not_fetched(monkeypatch, tmp_path):
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path))
    path = weights.resolve("mpcnet-tiny")
    assert path == REPO / "weights" / "mpcnet_tiny128.pth"
    assert path.stat().st_size <= 20 * 2**20
    with pytest.raises(weights.WeightsError, match="ships with mpcnet"):
        weights.fetch("mpcnet-tiny")


def test_missing_file_names_the_fetch_command(monkeypatch, tmp_path):
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(weights.WeightsError, match="mpcnet weights fetch arcface"):
        weights.resolve("arcface")


def test_unknown_hash_is_refused_until_pinned(tmp_path, monkeypatch):
    _registry(tmp_path, monkeypatch)
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "toy.bin").write_bytes(b"abc")
    with pytest.raises(weights.WeightsError, match="pin"):
        weights.resolve("toy")
    assert weights.pin("toy") == hashlib.sha256(b"abc").hexdigest()
    assert weights.resolve("toy") == tmp_path / "toy.bin"
    (tmp_path / "toy.bin").write_bytes(b"abd")
    with pytest.raises(weights.WeightsError, match="does not match"):
        weights.resolve("toy")


def test_fetch_verifies_and_writes_atomically(tmp_path, monkeypatch):
    src = tmp_path / "remote.bin"
    src.write_bytes(b"x" * 5000)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    _registry(tmp_path, monkeypatch, url=src.as_uri(), sha256="0" * 64)
    with pytest.raises(weights.WeightsError, match="nothing was kept"):
        weights.fetch("toy")
    assert not list((weights.cache_dir() / "weights").iterdir())
    _registry(tmp_path, monkeypatch, url=src.as_uri(), sha256=good)
    seen = []
    path = weights.fetch("toy", lambda done, total: seen.append(done))
    assert path.read_bytes() == src.read_bytes() and seen[-1] == 5000
    assert weights.resolve("toy") == path


class Evil:
    """Stands for any object whose unpickling could run code."""


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    torch.save({"obj": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pth")
    (tmp_path / "torn.pth").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "torn.pth")


def test_checkpoint_roundtrip(tmp_path):
    state = {"params": {"w": torch.arange(4.0)}, "iter": 3}
    save_checkpoint(state, tmp_path / "c.pth")
    loaded = load_checkpoint(tmp_path / "c.pth")
    assert loaded["iter"] == 3 and torch.equal(loaded["params"]["w"], state["params"]["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth"]
