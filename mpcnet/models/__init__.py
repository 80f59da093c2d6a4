"""Importing this package registers every `*_model.py` module in it with BasicSR's registry."""
import importlib
from pathlib import Path

_modules = [importlib.import_module(f"mpcnet.models.{p.stem}") for p in sorted(Path(__file__).parent.glob("*_model.py"))]
