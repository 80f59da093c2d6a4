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


@pytest.mark.parametrize("model,pattern", [
    ("mpcnet", r"MPCNet \((\d+\.\d) M parameters, (\d+\.\d) GMAC per image\)"),
    ("gfpgan", r"GFPGANv1Clean's \((\d+\.\d) M,\s+(\d+\.\d) GMAC\)"),
])
def test_parameters_and_gmac_of_the_512_networks(model, pattern):
    if model == "gfpgan":
        pytest.importorskip("gfpgan")
    params, gmac = readme_number(pattern)
    cfg = NetConfig()  # 512 px, each network as released (MPCNet ×1, GFPGAN ×2)
    assert round(params_m(model, cfg), 1) == params
    assert round(gmac_per_image(model, cfg), 1) == gmac


def test_gmac_of_a_psfrgan_wide_parser():
    wide, default = readme_number(r"--arch parse_base_ch=64`\s+counts (\d+\.\d) instead of (\d+\.\d) GMAC")
    assert round(gmac_per_image("mpcnet", NetConfig(mpcnet_kwargs=(("parse_base_ch", 64),))), 1) == wide
    assert round(gmac_per_image("mpcnet", NetConfig()), 1) == default
