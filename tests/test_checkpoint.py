"""Loading model files: which weights a checkpoint yields, the network it rebuilds, and the one-line
reason for each kind of bad file; the registry verifies sha256 byte for byte."""
from __future__ import annotations

import hashlib
import pickle
import re

import pytest
import torch
import yaml

from mpcnet.archs import network_from_checkpoint
from mpcnet.archs.mpcnet_arch import MPCNet
from mpcnet.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_error_detail,
    load_model_file,
    release_checkpoint,
    save_checkpoint,
    state_dict_of,
)
from mpcnet.weights import WeightEntry, WeightsError, fetch, sha256_of, verify

SMALL64 = dict(out_size=64, num_style_feat=32, narrow=0.0625, parse_base_ch=16, parse_max_ch=32, parse_res_depth=1)


def test_state_dict_prefers_ema_then_params_then_a_bare_dict():
    ema, params = {"w": torch.ones(1)}, {"w": torch.zeros(1)}
    assert state_dict_of({"params": params, "params_ema": ema}) is ema
    assert state_dict_of({"params": params, "iter": 3}) is params
    bare = {"a": torch.ones(2), "b": torch.zeros(2)}
    assert state_dict_of(bare) is bare
    with pytest.raises(CheckpointError, match=r"no network weights in checkpoint \(keys: \['iter', 'net'\]\)"):
        state_dict_of({"net": {}, "iter": 1})


def test_network_from_checkpoint_rebuilds_the_recorded_architecture(tmp_path):
    torch.manual_seed(0)
    net = MPCNet(**SMALL64).eval()
    save_checkpoint({"params": net.state_dict(), "arch": net.arch_config}, tmp_path / "n.pth")
    ckpt = load_checkpoint(tmp_path / "n.pth")
    rebuilt = network_from_checkpoint(ckpt)
    assert isinstance(rebuilt, MPCNet) and not rebuilt.training
    assert ckpt["arch"]["type"] == "MPCNet"  # the checkpoint is not consumed
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))
    with pytest.raises(CheckpointError, match="does not record its architecture"):
        network_from_checkpoint({"params": net.state_dict()})
    with pytest.raises(CheckpointError, match="does not fit this MPCNet .*Missing key"):  # strict: every weight
        network_from_checkpoint({"params": {}, "arch": net.arch_config})
    with pytest.raises(CheckpointError, match="records a MPCNet this version of mpcnet cannot build"):
        network_from_checkpoint({"params": net.state_dict(), "arch": {**net.arch_config, "use_quantum_prior": True}})


def test_release_checkpoint_ships_the_ema_weights_in_fp16_with_arch_and_meta(tmp_path):
    torch.manual_seed(0)
    net, ema = MPCNet(**SMALL64).eval(), MPCNet(**SMALL64).eval()
    save_checkpoint({"params": net.state_dict(), "params_ema": ema.state_dict(), "arch": net.arch_config},
                    tmp_path / "net_g_800.pth")
    values = release_checkpoint(tmp_path / "net_g_800.pth", tmp_path / "ship.pth", {"name": "m", "iter": 800})
    shipped = load_checkpoint(tmp_path / "ship.pth")
    assert set(shipped) == {"params", "arch", "meta"} and shipped["meta"]["iter"] == 800
    assert values == sum(v.numel() for v in ema.state_dict().values())
    assert {v.dtype for v in shipped["params"].values() if v.is_floating_point()} == {torch.float16}
    rebuilt = network_from_checkpoint(shipped)  # fp16 values load into the fp32 network: the EMA's outputs
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out, out_ema, out_raw = rebuilt(x), ema(x), net(x)
    assert (out - out_ema).abs().max() < 0.02 < (out - out_raw).abs().max()
    assert (tmp_path / "ship.pth").stat().st_size < 0.6 * (tmp_path / "net_g_800.pth").stat().st_size / 2
    save_checkpoint({"params": net.state_dict()}, tmp_path / "bare.pth")
    with pytest.raises(CheckpointError, match="does not record its architecture"):
        release_checkpoint(tmp_path / "bare.pth", tmp_path / "no.pth", {})
    assert not (tmp_path / "no.pth").exists()


def test_load_model_file_by_name_or_path_and_into_a_module(tmp_path):
    by_name = load_model_file("mpcnet-tiny")  # bundled, sha256-verified
    assert by_name.path.name == "mpcnet_tiny128.pth" and by_name.checkpoint["arch"]["type"] == "MPCNet"
    assert by_name.state is by_name.checkpoint["params"]
    by_path = load_model_file(str(by_name.path))
    assert by_path.path == by_name.path and by_path.state.keys() == by_name.state.keys()
    torch.manual_seed(0)
    net = MPCNet(**SMALL64)
    save_checkpoint({"params_ema": net.state_dict()}, tmp_path / "n.pth")
    other = MPCNet(**SMALL64)
    load_model_file(tmp_path / "n.pth", into=other)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), net.state_dict().values()))
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path / 'n.pth'} does not fit this Linear (")):
        load_model_file(tmp_path / "n.pth", into=torch.nn.Linear(2, 2))
    with pytest.raises(WeightsError, match="'nothing-here' is neither a file nor a name"):
        load_model_file("nothing-here")
    torch.save({"iter": 3, "optimizers": []}, tmp_path / "state.pth")
    with pytest.raises(WeightsError, match=re.escape(f"{tmp_path / 'state.pth'}: no network weights")):
        load_model_file(tmp_path / "state.pth")


class Gadget:
    """Any object whose unpickling would import and run Python code."""


def test_each_kind_of_bad_file_has_its_reason(tmp_path):
    cases = {
        "global.pth": (lambda p: torch.save({"x": Gadget()}, p), "could run code; refused"),
        "pickle.pth": (lambda p: p.write_bytes(pickle.dumps({"a": 1})), "not a readable PyTorch checkpoint"),
        "random.pth": (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a readable PyTorch checkpoint"),
        "text.pth": (lambda p: p.write_text("weights go here\n"), "not a readable PyTorch checkpoint"),
    }
    for name, (make, reason) in cases.items():
        make(tmp_path / name)
        with pytest.raises(CheckpointError, match=reason):
            load_checkpoint(tmp_path / name)
    whole = tmp_path / "whole.pth"
    save_checkpoint({"params": {"w": torch.arange(1000.0)}}, whole)
    (tmp_path / "cut.pth").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="cannot be read: No such file"):
        load_checkpoint(tmp_path / "absent.pth")


def test_load_error_detail_takes_the_informative_line():
    exc = RuntimeError("Error(s) in loading state_dict for MPCNet:\n\tMissing key(s): \"a.weight\"\n\tmore")
    assert load_error_detail(exc) == 'Missing key(s): "a.weight"'
    two = RuntimeError("Error(s) in loading state_dict for MPCNet:\n\tUnexpected key(s): \"b\"")
    assert load_error_detail(two) == 'Unexpected key(s): "b"'
    assert load_error_detail(RuntimeError("Error(s) in loading state_dict for X")) == "Error(s) in loading state_dict for X"
    assert load_error_detail(ValueError("one line only")) == "one line only"
    assert load_error_detail(ValueError("")) == ""
    assert load_error_detail(ValueError("x" * 500)) == "x" * 300


def test_sha256_is_checked_byte_for_byte(tmp_path):
    path = tmp_path / "m.pth"
    data = bytearray(torch.randint(0, 256, (3 * 2**20 + 5,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())  # over several read blocks
    path.write_bytes(bytes(data))
    good = hashlib.sha256(bytes(data)).hexdigest()
    assert sha256_of(path) == good
    entry = WeightEntry(name="m", file="m.pth", url=None, sha256=good, size=len(data), licence="", purpose="")
    verify(entry, path)
    data[-1] ^= 1  # one bit of the last, partial block
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the sha256"):
        verify(entry, path)


def toy_registry(tmp_path, monkeypatch, url: str, sha256: str) -> None:
    path = tmp_path / "weights.yaml"
    path.write_text(yaml.safe_dump({"weights": [dict(name="toy", file="toy.bin", url=url, sha256=sha256, size=None,
                                                     licence="MIT", purpose="test")]}))
    monkeypatch.setenv("MPCNET_WEIGHTS_YAML", str(path))


def test_fetch_keeps_a_verified_copy_and_replaces_a_wrong_one(tmp_path, monkeypatch):
    remote = tmp_path / "remote.bin"
    remote.write_bytes(b"model bytes" * 1000)
    good = hashlib.sha256(remote.read_bytes()).hexdigest()
    monkeypatch.setenv("MPCNET_CACHE_DIR", str(tmp_path / "deep" / "cache"))  # parents created on demand
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path / "shared"))
    (tmp_path / "shared").mkdir()
    toy_registry(tmp_path, monkeypatch, (tmp_path / "absent.bin").as_uri(), good)
    (tmp_path / "shared" / "toy.bin").write_bytes(remote.read_bytes())
    assert fetch("toy") == tmp_path / "shared" / "toy.bin"  # verified local copy: no download tried
    (tmp_path / "shared" / "toy.bin").write_bytes(b"stale")
    with pytest.raises(WeightsError, match="could not download 'toy'"):  # a wrong copy is not used
        fetch("toy")
    toy_registry(tmp_path, monkeypatch, remote.as_uri(), good)
    got = fetch("toy")
    assert got == tmp_path / "deep" / "cache" / "weights" / "toy.bin" and got.read_bytes() == remote.read_bytes()
    assert sorted(p.name for p in got.parent.iterdir()) == ["toy.bin"]  # no .part left


def test_registry_lookup_places_and_messages(tmp_path, monkeypatch):
    from mpcnet import weights

    monkeypatch.delenv("MPCNET_CACHE_DIR")
    monkeypatch.delenv("MPCNET_WEIGHTS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "mpcnet"
    assert weights.search_dirs() == [tmp_path / "home" / ".cache" / "mpcnet" / "weights"]
    assert weights.pins_file() == tmp_path / "home" / ".cache" / "mpcnet" / "pins.yaml"
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path / "w"))
    path = tmp_path / "weights.yaml"
    entries = [dict(name=n, file=f"{n}.bin", url="https://example.org/x", sha256=s, size=None, licence="MIT",
                    purpose="t") for n, s in (("zeta", "unknown"), ("alpha", "ab" * 32))]
    path.write_text(yaml.safe_dump({"weights": entries}))
    monkeypatch.setenv("MPCNET_WEIGHTS_YAML", str(path))
    with pytest.raises(WeightsError, match=r"^unknown weights 'nope'; known: alpha, zeta$"):
        weights.get_entry("nope")
    where = f"{tmp_path / 'w'} or {tmp_path / 'home' / '.cache' / 'mpcnet' / 'weights'}"
    with pytest.raises(WeightsError, match=re.escape(f"'alpha' (alpha.bin) is not in {where}. Download it with")):
        weights.resolve("alpha")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "alpha.bin").write_bytes(b"other")
    actual = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(WeightsError, match=re.escape(f"(expected {'ab' * 8}…, got {actual[:16]}…)")):
        weights.resolve("alpha")
    with pytest.raises(WeightsError, match=r"^'alpha' is already pinned by weights.yaml$"):
        weights.pin("alpha")
    with pytest.raises(WeightsError, match=r"^no local copy of 'zeta' to pin; give --sha256$"):
        weights.pin("zeta")
