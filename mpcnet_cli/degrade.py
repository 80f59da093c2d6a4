"""`mpcnet degrade`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mpcnet_cli.common import INTERRUPTED, console, emit_json, fail


def _list_presets() -> None:
    from mpcnet.data.eq1_degradation import PRESETS
    from mpcnet.degrade_folder import describe_preset

    for name in PRESETS:
        typer.echo(f"{name:20s} {describe_preset(name)}")


def degrade(
    inputs: Optional[str] = typer.Argument(None, help="An image, a folder (recursive, sorted) or a glob of HQ faces."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output folder (same relative paths as the input)."),
    preset: str = typer.Option("celeba-test", help="Degradation preset: celeba-test (Table 3, random), clean, "
                               "table4-x4…x8, table5-gauss-3|6|9|12, table5-motion-0|45|90|135, "
                               "table6-noise0|5|10|15|20|25, gfpgan-train (GFPGAN's milder training ranges); 'list' prints them. table4|table5|table6: every "
                               "variant of that table, one subfolder of -o each (those with a manifest are kept)."),
    ranges_file: Optional[Path] = typer.Option(None, "--ranges", help="YAML/JSON file of degradation ranges "
                                               "(keys of PAPER_RANGES) instead of a preset."),
    seed: int = typer.Option(0, help="Run seed; each image's seed is derived from it and its relative path."),
    scale: Optional[float] = typer.Option(None, help="Fix the scale r (e.g. 4, 6.5, 7.15)."),
    noise: Optional[float] = typer.Option(None, help="Fix the noise SD δ on the 0–255 scale (e.g. 0, 5, …, 25)."),
    jpeg: Optional[str] = typer.Option(None, help="Fix the JPEG quality (0–100) or 'none'."),
    kernel: Optional[str] = typer.Option(None, help="Fix the blur: gaussian:SIGMA, average:SIZE, median:SIZE, "
                                         "motion:LENGTH[:ANGLE] or none."),
    size: int = typer.Option(512, help="Network size: inputs are resized to size×size first (0 keeps their size)."),
    sample: Optional[int] = typer.Option(None, help="Take only N images, chosen by --seed from the sorted list."),
    from_manifest: Optional[Path] = typer.Option(None, "--from-manifest", help="Re-create the outputs of a "
                                                 "manifest from IN with the recorded parameters."),
    workers: int = typer.Option(1, min=1, help="Worker threads (results do not depend on their number)."),
    overwrite: bool = typer.Option(False, help="Write into a non-empty output folder, replacing files."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Finish an interrupted run: keep the outputs "
                                       "that exist (their manifest rows are re-derived from the same options)."),
    fmt: str = typer.Option("png", "--format", help="Output format: png or jpg (jpg adds its own compression)."),
    manifest: str = typer.Option("csv", help="Manifest format: csv or jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Degrade HQ faces with eq. 1 of the paper (blur, ↓r, noise, JPEG, bicubic back up) to build
    training or test sets; writes a manifest of every image's parameters beside the outputs.
    Exit code 1 if any file failed (the others are still written), 2 for a bad request."""
    # Imported here: mpcnet.data pulls in BasicSR and torch, which `mpcnet --help` should not wait for.
    from mpcnet.degrade_folder import DegradeError, build_ranges, plan, prepare_output, read_manifest, run
    from mpcnet.utils.safe_output import UnsafeOutputError

    if preset == "list":
        _list_presets()
        raise typer.Exit(0)
    if inputs is None or out is None:
        fail("give an input (file, folder or glob) and an output folder: mpcnet degrade IN -o OUT")
    if fmt not in ("png", "jpg") or manifest not in ("csv", "jsonl"):
        fail("--format must be png or jpg, --manifest csv or jsonl")
    if size < 0:
        fail("--size must be ≥ 0")
    if preset in ("table4", "table5", "table6"):
        _table_variants(int(preset[-1]), Path(inputs), out, size, seed, workers, as_json)
        return
    try:
        ranges = build_ranges(preset, ranges_file, scale, noise, jpeg, kernel)
        rows = read_manifest(from_manifest) if from_manifest else None
        root, jobs = plan(inputs, fmt, sample, seed, rows)
        if not jobs:
            fail(f"no images found in {inputs}")
        prepare_output(inputs, out, overwrite, skip_existing)
    except (DegradeError, UnsafeOutputError, FileNotFoundError, OSError) as e:
        fail(str(e))
    show = not quiet and console.is_terminal
    with Progress(TextColumn("degrade"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=not show, transient=True) as progress:
        task = progress.add_task("degrade", total=len(jobs))

        def on_done(job, error):
            if error:
                console.print(f"[red]failed[/] {job.rel}: {error}")
            progress.advance(task)

        summary = run(jobs, out, ranges, seed, size, workers, overwrite, manifest, on_done, skip_existing)
    if as_json:
        emit_json(summary.to_json())
    elif not quiet:
        written = f"; manifest: {summary.manifest}" if summary.manifest else ""
        skipped = f" ({summary.skipped} existed, kept)" if summary.skipped else ""
        console.print(f"{len(summary.rows)} degraded into {out}{skipped} in {summary.seconds:.1f}s, "
                      f"{len(summary.failed)} failed{written}")
    if summary.interrupted:
        console.print(f"[red]interrupted[/] after {len(summary.rows) + len(summary.failed)} of {len(jobs)} images; "
                      "finished outputs are kept, none is partial: rerun with --skip-existing to do the rest")
        raise typer.Exit(INTERRUPTED)
    if summary.failed:
        raise typer.Exit(1)


def _table_variants(table: int, hq: Path, out: Path, size: int, seed: int, workers: int, as_json: bool) -> None:
    """`--preset tableN`: the test sets of Table N as `mpcnet eval --table N` builds them."""
    from mpcnet.evaluate import EvalError
    from mpcnet.paper_tables import build_variants
    from mpcnet.utils.safe_output import UnsafeOutputError, check_output_location

    if not hq.is_dir():
        fail(f"--preset table{table} degrades a folder of HQ faces; {hq} is not one")
    try:
        check_output_location(hq, out)
        with console.status(f"table{table}") as status:
            folders = build_variants(table, hq, out, size, seed, workers, progress=status.update)
    except (EvalError, UnsafeOutputError, OSError) as e:
        fail(str(e))
    if as_json:
        emit_json({name: str(folder) for name, folder in folders.items()})
    console.print(f"Table {table}: {len(folders)} sets in {out} ({', '.join(folders)})")
