"""The command line as a user meets it (run as a real subprocess of the installed script)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

MPCNET = str(Path(sys.executable).with_name("mpcnet"))
COMMANDS = ["degrade", "train", "restore", "eval", "benchmark", "weights"]


def run(*args, **kw):
    return subprocess.run([MPCNET, *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert command in out.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_real_help(command):
    out = run(command, "--help")
    assert out.returncode == 0 and "Usage" in out.stdout and len(out.stdout) > 200


def test_version():
    from mpcnet.version import __version__
    assert run("--version").stdout.strip() == f"mpcnet {__version__}"


def test_weights_list_json_reports_shared_files():
    out = run("weights", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["yunet"]["status"] == "ok"
    assert rows["arcface"]["status"] == "missing"


def test_weights_path_fails_cleanly_for_missing_file():
    out = run("weights", "path", "arcface")
    assert out.returncode == 2 and "mpcnet weights fetch arcface" in out.stderr
