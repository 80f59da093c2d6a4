"""Importing this package registers every `*_dataset.py` module in it with BasicSR's registry."""
import importlib
from pathlib import Path

_modules = [importlib.import_module(f"mpcnet.data.{p.stem}") for p in sorted(Path(__file__).parent.glob("*_dataset.py"))]
