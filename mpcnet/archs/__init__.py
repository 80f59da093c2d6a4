"""Importing this package registers every `*_arch.py` module in it with BasicSR's registry."""
import importlib
from pathlib import Path

_modules = [importlib.import_module(f"mpcnet.archs.{p.stem}") for p in sorted(Path(__file__).parent.glob("*_arch.py"))]
