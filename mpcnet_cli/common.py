"""Small helpers shared by the subcommands: console output and plain errors."""
from __future__ import annotations

import json
import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear error line and exit with ``code``."""
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def emit_json(obj) -> None:
    """Machine-readable summary on stdout (human output goes to stderr)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
