"""`mpcnet eval`."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mpcnet.metrics import DESCRIPTIONS, METRICS, arrow
from mpcnet.restoration import METHODS, PEER_METHODS
from mpcnet.utils.image_io import ImageReadError
from mpcnet.utils.safe_output import UnsafeOutputError, check_output_location
from mpcnet_cli.common import console, emit_json, fail


def evaluate(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Named test set under the data root: "
                                          "celeba-test (lq/ + gt/) or real-test (lq/ only)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder holding the named datasets "
                                             "[default: $MPCNET_DATA]."),
    lq: Optional[Path] = typer.Option(None, "--lq", help="Folder of low-quality inputs (aligned 512 faces)."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Folder of ground truth, paired with the restored "
                                      "images by relative name (extension ignored)."),
    restored: Optional[Path] = typer.Option(None, "--restored", help="Score these existing restorations "
                                            "instead of restoring --lq."),
    method: str = typer.Option("mpcnet", "--method", help="Network that restores --lq: mpcnet, or a peer run "
                               "through the same aligned pipeline and protocol: "
                               + ", ".join(f"{m} (default weights {w})" for m, w in PEER_METHODS.items()) + "."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Registry name or checkpoint path used to "
                                          "restore --lq [default: restore's default, or the peer's]."),
    fid_ref: Optional[Path] = typer.Option(None, "--fid-ref", help="Reference folder for FID [default: the "
                                           "GT folder]; the paper used 3,000 CelebA-HQ images."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated subset of "
                                          f"{', '.join(METRICS)} (default: all; with --table, the table's own)."),
    table: Optional[int] = typer.Option(None, "--table", help="Reproduce the paper's Table N (1–7) into "
                                        "-o OUT/tableN.md|json, its published rows beside ours and an Input row: "
                                        "3 CelebA-Test, 7 a real set (--lq or real-test), 4|5|6 the HQ faces "
                                        "degraded per column (built where missing), 1|2 the ablation runs."),
    hq: Optional[Path] = typer.Option(None, "--hq", help="Tables 4–6: HQ faces to degrade (default: --gt, else "
                                      "celeba-test's gt under the data root)."),
    variants: Optional[Path] = typer.Option(None, "--variants", help="Tables 4–6: folder of the degraded sets, "
                                            "one subfolder per preset (scripts/make_table_variants.sh) "
                                            "(default: OUT/variants); missing ones are built there."),
    experiments: Path = typer.Option(Path("experiments"), "--experiments", help="Tables 1–2: folder of the "
                                     "ablation runs (EXP/*/models/net_g_latest.pth), each named by its switches."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda, for the networks (restore, LPIPS, FID, "
                               "ArcFace; dlib always runs on the CPU)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write report.md, metrics.json and "
                                          "grid.png (LQ | restored | GT) here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    launcher: str = typer.Option("none", "--launcher", help="none, or pytorch under torchrun: each process "
                                 "restores and scores its share of the images; rank 0 gathers every per-image "
                                 "value and FID feature and writes the report (the numbers equal one process's). "
                                 "Restoring --lq this way needs -o (one folder all processes write to)."),
) -> None:
    """Score restorations with section 4.2's metrics (PSNR, SSIM, LPIPS, FID, NIQE), identity and landmarks.

    Identity and landmark distance always run offline with dlib (deg_dlib, cos_dlib, l2_dlib,
    lmd_dlib68; the 'identity' extra); ArcFace's deg_arcface/cos_arcface, the papers' Deg/IDS, run when
    the 'arcface' file is pinned. The two are different networks: never compare one with the other.
    Metrics whose network weights are absent are skipped with the reason; the report puts the published
    tables (for CelebA-Test the paper's Table 3, OSDFace's Table 1 and PMRF's table; Table 7 for
    Real-Test), each in its own block with its source and protocol, beside this run's values, which
    appear only in the columns computed the same way.
    """
    # The metrics pull in torch and BasicSR; imported here so that `mpcnet --help` starts fast.
    from mpcnet.eval_report import check_report_free, write_report
    from mpcnet.eval_scoring import PAIRED, check_sizes_before_restoring, score
    from mpcnet.evaluate import EvalError, resolve_dataset, restore_folder
    from mpcnet.utils.dist import DistError, launch as join

    chosen = tuple(m.strip().lower() for m in (metrics or ",".join(METRICS)).split(",") if m.strip())
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        fail(f"unknown metric '{unknown[0]}'; choose from {', '.join(METRICS)}")
    if method not in METHODS:
        fail(f"unknown method '{method}'; choose from {', '.join(METHODS)}")
    if table is not None:
        _paper_table(table, dataset, data_root, lq, gt, hq, variants, experiments, restored, method, weights,
                     fid_ref, chosen if metrics else None, device, output, overwrite, as_json)
        return
    if hq or variants:
        fail("--hq and --variants go with --table 4|5|6")
    if method != "mpcnet" and restored is not None:
        fail("--method restores --lq; with --restored there is nothing to restore")
    try:
        if dataset:
            if lq or gt:
                fail("give either --dataset or --lq/--gt, not both")
            lq, gt = resolve_dataset(dataset, data_root)
        for name, folder in (("--lq", lq), ("--gt", gt), ("--restored", restored), ("--fid-ref", fid_ref)):
            if folder is not None and not folder.is_dir():
                fail(f"{name} {folder} is not a folder")
        if restored is None and lq is None:
            fail("nothing to score: give --dataset, --lq (to restore it) or --restored")
        if gt is None and all(m in PAIRED or (m == "fid" and fid_ref is None) for m in chosen):
            fail(f"--metrics {','.join(chosen)} compare with ground truth: give --gt (for fid, --gt or --fid-ref)")
        if output is not None:  # the report must not land where the images are read from, nor on a file
            check_output_location([f for f in (restored or lq, gt, fid_ref) if f is not None], output)
            check_report_free(output, overwrite)
        if restored is None and gt is not None:
            check_sizes_before_restoring(lq, gt)
        if launcher == "pytorch" and restored is None and output is None:
            fail("--launcher pytorch restores --lq into -o, one folder all processes write to: give -o")
        launch = join(launcher, device)
        with tempfile.TemporaryDirectory(prefix="mpcnet-eval-") as tmp:
            summary = only = None  # only: the faces this run restored (not what else lies in -o)
            if restored is None:
                with console.status(f"restoring {lq}…"):
                    restored, summary, only = restore_folder(lq, weights, output or Path(tmp), launch.device,
                                                             overwrite=overwrite, method=method, launch=launch)
                kept = f"into {restored}" if output else "(not kept: give -o to keep them)"
                if launch.main:
                    console.print(f"restored {summary['restored']} of {summary['files']} faces with "
                                  f"{summary['weights']} in {summary['seconds']:.1f} s {kept}")
                    for failure in summary["failures"]:
                        console.print(f"[yellow]restore failed:[/] {failure['source']}: {failure['message']}")
            with console.status("scoring…") as status:
                result = score(restored, gt, lq=lq, fid_ref=fid_ref, metrics=chosen, device=launch.device,
                               progress=lambda key: status.update(f"scoring {key}"), launch=launch,
                               only=only)
            if result is None:  # not rank 0: its share is in rank 0's report
                raise typer.Exit(1 if summary is not None and summary["failures"] else 0)
            result.dataset, result.restore = dataset, summary
            written = write_report(result, output, dataset or restored.name, overwrite) if output else []
    except (EvalError, ImageReadError, UnsafeOutputError, OSError, DistError) as exc:
        fail(str(exc).splitlines()[0])
    _print_table(result)
    for path in written:
        console.print(f"wrote {path}")
    if as_json:
        report = result.to_json()
        if summary is not None and output is None:
            report["restored"] = None  # restored into a temporary folder, deleted by now (give -o to keep it)
        emit_json(report)
    if summary is not None and summary["failures"] or "unreadable" in result.unpaired:
        raise typer.Exit(1)  # scored, but some inputs could not be restored or read


def _print_table(result) -> None:
    from mpcnet.eval_report import format_value

    table = Table(title=f"mpcnet eval: {len(result.per_image)} images")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it is")
    for m, value in result.metrics.items():
        table.add_row(f"{m.upper()} {arrow(m)}", format_value(value, m), DESCRIPTIONS[m])
    for m, reason in result.skipped.items():
        table.add_row(m.upper(), f"skipped: {reason}", DESCRIPTIONS[m])
    console.print(table)
    console.print(f"FID protocol: {result.fid_protocol or 'not computed'}")
    if result.notes:
        console.print(f"[yellow]fallbacks ({len(result.notes)} images):[/] "
                      + "; ".join(f"{k}: {v}" for k, v in list(result.notes.items())[:5]))
    for kind, keys in result.unpaired.items():
        console.print(f"[yellow]not scored ({kind}):[/] {', '.join(keys[:10])}{' …' if len(keys) > 10 else ''}")


def _paper_table(table, dataset, data_root, lq, gt, hq, variants, experiments, restored, method, weights, fid_ref,
                 chosen, device, output, overwrite, as_json) -> None:
    """`eval --table N`: every check before any work or folder (:func:`plan_table`), then build, restore,
    score and report."""
    from mpcnet.evaluate import EvalError
    from mpcnet.paper_tables import plan_table, run_plan, write_table_report

    try:
        plan = plan_table(table, dataset=dataset, data_root=data_root, lq=lq, gt=gt, hq=hq, variants=variants,
                          experiments=experiments, restored=restored, method=method, weights=weights,
                          fid_ref=fid_ref, metrics=chosen, output=output, overwrite=overwrite)
        with console.status(f"Table {table}…") as status:
            run = run_plan(plan, output, device=device, method=method, fid_ref=fid_ref, overwrite=overwrite,
                           progress=status.update)
        written = write_table_report(run, output, overwrite)
    except (EvalError, ImageReadError, UnsafeOutputError, OSError) as exc:
        fail(str(exc).splitlines()[0])
    _print_paper_table(run)
    for path in written:
        console.print(f"wrote {path}")
    if as_json:
        emit_json({**run.to_json(), "report": [str(p) for p in written]})
    if any(r.restore and r.restore["failures"] for by_set in run.results.values() for r in by_set.values()):
        raise typer.Exit(1)  # scored, but some inputs could not be restored


def _print_paper_table(run) -> None:
    from mpcnet.eval_report import format_value
    from mpcnet.paper_tables import published

    paper = published(run.table)
    table = Table(title=paper.title)
    table.add_column("method")
    for column in paper.columns:
        table.add_column(column.label, justify="right")
    for method, values in paper.rows:
        table.add_row(method, *(f"{v:g}" for v in values))
    for row in run.results:
        table.add_row(f"[bold]{row}[/]", *(format_value(run.cell(row, c), c.ours) for c in paper.columns))
    console.print(table)
    console.print(f"Protocol: {paper.protocol}")
