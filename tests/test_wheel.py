"""The package as a wheel: built from a clean copy of the checkout, installed into a fresh venv
outside it, it restores a real photo with the default (bundled) model from anywhere."""
import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import cv2
import pytest
import yaml

from tests.conftest import REPO, SHARED_WEIGHTS, shared_file

pytestmark = pytest.mark.slow
PHOTO = ("data", "codeformer-inputs", "whole_imgs", "04.jpg")


def _clean_copy(dest: Path) -> Path:
    """The checkout as a fresh clone would have it: tracked and not-ignored files only."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = _clean_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, capture_output=True)
    return next(out.glob("mpcnet-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with only the wheel; torch & co. are reached through a .pth to the site-packages
    that hold them (no network, no copy)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    import basicsr
    import facexlib
    import torch
    import typer
    deps = sorted({str(Path(m.__file__).parents[1]) for m in (torch, basicsr, facexlib, cv2, typer, yaml)})
    (site / "zz_mpcnet_deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)
    return env_dir


def test_wheel_holds_the_package_and_its_data_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.split("/")[0] in ("mpcnet", "mpcnet_cli") or n.split("/")[0].endswith(".dist-info")
               for n in names), sorted({n.split("/")[0] for n in names})
    assert "mpcnet/__init__.py" in names and "mpcnet_cli/__init__.py" in names
    assert {"mpcnet/bundled/weights.yaml", "mpcnet/published_tables.yaml"} <= set(names)
    registry = yaml.safe_load(zipfile.ZipFile(wheel).read("mpcnet/bundled/weights.yaml"))["weights"]
    bundled = [e for e in registry if e.get("bundled")]
    assert {e["name"] for e in bundled} >= {"mpcnet-s256", "mpcnet-tiny"}
    for entry in bundled:
        info = zipfile.ZipFile(wheel).getinfo(f"mpcnet/bundled/{entry['file']}")
        assert info.file_size == entry["size"], entry["name"]
    code = sum(i.file_size for i in zipfile.ZipFile(wheel).infolist()) - sum(e["size"] for e in bundled)
    assert code < 3 * 2**20, code  # sources and YAML; no tests, data, experiments or images


def test_installed_wheel_restores_a_real_photo_with_the_bundled_model(installed, tmp_path, monkeypatch):
    photo = shared_file(*PHOTO)
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    monkeypatch.delenv("MPCNET_WEIGHTS_YAML", raising=False)
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(SHARED_WEIGHTS))  # the detector; no MPCNet file there
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    mpcnet = installed / "bin" / "mpcnet"
    where = subprocess.run([mpcnet, "weights", "path", "--json"], capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    where = json.loads(where.stdout)
    assert Path(where["registry"]).is_relative_to(installed) and Path(where["bundled"]).is_relative_to(installed)
    assert where["search"][0] == str(SHARED_WEIGHTS)
    model = subprocess.run([mpcnet, "weights", "path", "mpcnet-s256"], capture_output=True, text=True)
    assert model.returncode == 0, model.stderr
    assert Path(model.stdout.strip()) == Path(where["bundled"]) / "mpcnet_s256.pth"

    run = subprocess.run([mpcnet, "restore", photo, "-o", "out", "--upscale", "1", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["weights"] == "mpcnet-s256" and report["faces"] >= 1
    outputs = list((tmp_path / "out" / "restored_imgs").iterdir())
    assert [p.stem for p in outputs] == ["04"]
    restored, original = cv2.imread(str(outputs[0])), cv2.imread(str(photo))
    assert restored.shape == original.shape and not (restored == original).all()
