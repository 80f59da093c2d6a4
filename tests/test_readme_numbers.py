"""README's parameter counts and GMAC of the shipped 512 configurations, read from README itself and
recounted (meta device: nothing runs), so the text and the code cannot drift apart."""
from __future__ import annotations

import re

import pytest
import torch

from mpcnet.bench.network import NetConfig, build, gmac_per_image
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def readme_number(pattern: str) -> list[float]:
    match = re.search(pattern, README, flags=re.S)
    assert match, f"README no longer says {pattern!r}; update this test with it"
    return [float(g) for g in match.groups()]


def params_m(model: str, cfg: NetConfig) -> float:
    with torch.device("meta"):
        return sum(p.numel() for p in build(model, cfg).parameters()) / 1e6


NETWORKS_512 = pytest.mark.parametrize("model,pattern", [
    ("mpcnet", r"MPCNet \((\d+\.\d) M parameters, (\d+\.\d) GMAC per image\)"),
    ("gfpgan", r"GFPGANv1Clean's \((\d+\.\d) M,\s+(\d+\.\d) GMAC\)"),
])


@NETWORKS_512
def test_parameters_of_the_512_networks(model, pattern):
    """Fast (nothing runs): in `make mutation`'s selection, where it sees MPCNet's default configuration."""
    if model == "gfpgan":
        pytest.importorskip("gfpgan")
    params, _ = readme_number(pattern)
    assert round(params_m(model, NetConfig()), 1) == params  # 512 px, as released (MPCNet ×1, GFPGAN ×2)


@NETWORKS_512
def test_gmac_of_the_512_networks(model, pattern):
    if model == "gfpgan":
        pytest.importorskip("gfpgan")
    _, gmac = readme_number(pattern)
    assert round(gmac_per_image(model, NetConfig()), 1) == gmac


def test_gmac_of_a_psfrgan_wide_parser():
    wide, default = readme_number(r"--arch parse_base_ch=64`\s+counts (\d+\.\d) instead of (\d+\.\d) GMAC")
    assert round(gmac_per_image("mpcnet", NetConfig(mpcnet_kwargs=(("parse_base_ch", 64),))), 1) == wide
    assert round(gmac_per_image("mpcnet", NetConfig()), 1) == default
