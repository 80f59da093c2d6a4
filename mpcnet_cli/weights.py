"""`mpcnet weights`: list, fetch, pin and locate the model files in weights.yaml (each checked by its sha256)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from mpcnet import weights as weights_registry
from mpcnet_cli.common import console, emit_json, fail

app = typer.Typer(help="The model files the toolkit can use (weights.yaml): list, fetch, pin, path; every file checked by its sha256.",
                  no_args_is_help=True)


@app.command("list")
def list_weights(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show every registered model file and whether a verified copy is present locally."""
    rows = []
    for entry in weights_registry.load_weights_registry().values():
        path = weights_registry.locate(entry)
        if path is None:
            status = "missing"
        elif entry.pinned_sha256 == weights_registry.UNKNOWN:
            status = "present, unpinned"
        else:
            status = "ok" if weights_registry.sha256_of(path) == entry.pinned_sha256 else "sha256 MISMATCH"
        rows.append({"name": entry.name, "file": entry.file, "status": status,
                     "path": str(path) if path else None, "licence": entry.licence,
                     "purpose": entry.purpose})
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"weights (searched: {', '.join(map(str, weights_registry.search_dirs()))})")
    for col in ("name", "status", "licence", "purpose"):
        table.add_column(col, overflow="fold")
    for r in rows:
        colour = {"ok": "green", "missing": "dim"}.get(r["status"], "yellow")
        table.add_row(r["name"], f"[{colour}]{r['status']}[/]", r["licence"], r["purpose"])
    console.print(table)


@app.command()
def fetch(name: str = typer.Argument(..., help="A name from 'mpcnet weights list'.")) -> None:
    """Download a model file into $MPCNET_CACHE_DIR/weights (default ~/.cache/mpcnet/weights), verify its sha256, write it atomically."""
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(name, total=None)
        try:
            path = weights_registry.fetch(name, lambda done, total: progress.update(task, completed=done,
                                                                                     total=total or None))
        except weights_registry.WeightsError as exc:
            fail(str(exc))
    console.print(f"{name}: {path}")
    if weights_registry.get_entry(name).pinned_sha256 == weights_registry.UNKNOWN:
        console.print(f"[yellow]not pinned[/]: sha256 {weights_registry.sha256_of(path)}; check it, then "
                      f"'mpcnet weights pin {name}'")


@app.command()
def pin(name: str = typer.Argument(..., help="An entry whose sha256 is 'unknown' in weights.yaml."),
        sha256: Optional[str] = typer.Option(None, help="The hash to pin; default: hash the local copy.")) -> None:
    """Pin the sha256 of a model file the registry has no hash for (stored in $MPCNET_CACHE_DIR/pins.yaml, default ~/.cache/mpcnet/pins.yaml)."""
    try:
        console.print(f"{name}: pinned {weights_registry.pin(name, sha256)}")
    except weights_registry.WeightsError as exc:
        fail(str(exc))


@app.command()
def path(name: Optional[str] = typer.Argument(None, help="A name from 'mpcnet weights list'; "
                                              "without it, where this install keeps model files."),
         as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Print the verified local path of a model file (for scripts); fails if absent or unverified.

    Without NAME: where this install (source checkout or pip install) keeps
    model files: the registry weights.yaml, the folders searched in order
    ($MPCNET_WEIGHTS_DIR, the user cache), the bundled models' folder
    (searched last) and the pins file."""
    if name is None:
        where = weights_registry.locations()
        if as_json:
            emit_json(where)
            return
        console.print(f"registry: {where['registry']}\nsearched: {', '.join(where['search'])}\n"
                      f"bundled:  {where['bundled']}\npins:     {where['pins']}", markup=False, highlight=False)
        return
    try:
        weights_registry.get_entry(name)  # an unknown name is refused with the known ones
        found = weights_registry.resolve(name)
    except weights_registry.WeightsError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"name": name, "path": found})
    else:
        typer.echo(found)
