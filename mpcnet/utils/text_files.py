"""The small text and YAML files the user names (eq. 1 ranges, manifests, option files), read
with one-line errors."""
from __future__ import annotations

import os
from pathlib import Path


def read_text(path: str | os.PathLike, what: str) -> str:
    """The text of a small UTF-8 file the user names (``what``: "--ranges", "manifest", …);
    :class:`ValueError` with one line for a missing, unreadable or binary file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not a text file (not UTF-8)") from None
    except OSError as exc:
        raise ValueError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def load_yaml(path: str | os.PathLike, what: str):
    """A YAML (or JSON) file the user names, parsed safely; :class:`ValueError` with the line of the
    first syntax error."""
    import yaml

    try:
        return yaml.safe_load(read_text(path, what))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{what} {path} is not valid YAML: {problem}{where}") from None
