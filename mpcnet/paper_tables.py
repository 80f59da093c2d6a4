"""The paper's tables as commands (``mpcnet eval --table N``): find or build the test sets a table needs,
restore and score them, and write one report in the paper's layout with its published rows beside ours.

* Table 3: CelebA-Test; Table 7: a set of real low-quality faces (no ground truth).
* Tables 4–6: the HQ faces degraded by each variant of the table (one ``mpcnet degrade`` preset per
  column, ``table4-x4`` …), built where missing as ``scripts/make_table_variants.sh`` builds them.
* Tables 1–2: the ablation checkpoints under an experiments folder (``mpcnet train`` of ``options/ablation``);
  each is named by its effective switches (Table 1) and scored on CelebA-Test (Table 2).

Every table gets an ``Input`` row scored on the LQ images themselves, as the paper's tables have one.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mpcnet.eval_report import format_value
from mpcnet.eval_scoring import EvalResult, score
from mpcnet.evaluate import EvalError, restore_folder
from mpcnet.metrics import DESCRIPTIONS, METRICS
from mpcnet.published import PublishedTable, paper_table, table_lines
from mpcnet.utils.safe_output import write_bytes_atomic

TABLES = (1, 2, 3, 4, 5, 6, 7)
VARIANT_TABLES = (4, 5, 6)
INPUT_ROW = "Input (this run's LQ)"
VARIANT_SEED = 2021  # scripts/make_table_variants.sh and prepare_celeba_test.sh use the same default


def published(table: int) -> PublishedTable:
    """The paper's table that ``--table N`` reports against (Tables 1 and 2 share one run)."""
    return paper_table({1: "table2", 3: "celeba-test", 7: "real-test"}.get(table, f"table{table}"))


def report_stem(table: int) -> str:
    return "table1-2" if table in (1, 2) else f"table{table}"


def variants(table: int) -> list[str]:
    """The degradation presets of Table 4, 5 or 6, one per published column."""
    return [c.name for c in published(table).columns]


def build_variants(table: int, hq: Path, variants_dir: Path, size: int = 512, seed: int = VARIANT_SEED,
                   workers: int = 1, progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Each variant's LQ folder ``variants_dir/<preset>``: kept when its manifest exists, else degraded
    from ``hq`` with the preset (finishing an interrupted folder)."""
    from mpcnet.degrade_folder import build_ranges, plan, prepare_output, run

    folders = {}
    for name in variants(table):
        folder = variants_dir / name
        if not (folder / "manifest.csv").is_file():
            if progress:
                progress(f"degrading {hq} with {name}")
            prepare_output(hq, folder, overwrite=False, skip_existing=True)
            summary = run(plan(hq)[1], folder, build_ranges(name), seed, size, workers, skip_existing=True)
            if summary.failed:
                first = summary.failed[0]
                raise EvalError(f"{name}: {len(summary.failed)} image(s) of {hq} could not be degraded "
                                f"(first: {first['input']}: {first['error']})")
        folders[name] = folder
    return folders


def effective_switches(arch: dict) -> tuple[bool, bool, bool, bool]:
    """Table 1's (GAN prior, AdaIN, parsing map prior, SFT) of an MPCNet configuration: AdaIN acts on F_GAN
    and SFT on F_parse, so each is off without its prior."""
    gan, parse = bool(arch.get("use_gan_prior", True)), bool(arch.get("use_parse_prior", True))
    return gan, gan and bool(arch.get("use_adain", True)), parse, parse and bool(arch.get("use_sft", True))


def ablation_checkpoints(experiments: Path) -> dict[str, tuple[Path, tuple[bool, ...]]]:
    """``'<Table 1 variant> (this run)'`` (in Table 1's row order) → (checkpoint, switches) for every
    ``experiments/*/models/net_g_latest.pth`` of an MPCNet run, named by its effective switches."""
    from mpcnet.checkpoint import CheckpointError, load_checkpoint

    rows = paper_table("table1").rows
    by_switches = {tuple(values): method for method, values in rows}
    found: dict[str, tuple[Path, tuple[bool, ...]]] = {}
    for ckpt in sorted(experiments.glob("*/models/net_g_latest.pth")):
        if "_archived_" in ckpt.parents[1].name:  # an earlier run of the same name, renamed by BasicSR
            continue
        try:
            arch = load_checkpoint(ckpt).get("arch") or {}
        except CheckpointError as exc:
            raise EvalError(str(exc)) from exc
        if arch.get("type") != "MPCNet":
            continue
        switches = effective_switches(arch)
        method = by_switches.get(switches)
        if method is None:
            raise EvalError(f"{ckpt} is no Table 1 variant (GAN prior, AdaIN, parsing prior, SFT = {switches})")
        if method in found:
            raise EvalError(f"{found[method][0]} and {ckpt} are both '{method}': keep one run per variant")
        found[method] = (ckpt, switches)
    if not found:
        raise EvalError(f"no MPCNet checkpoint */models/net_g_latest.pth under {experiments} (train the "
                        "option files of options/ablation first, e.g. scripts/reproduce_ablation.sh)")
    return {f"{m.removesuffix(' (paper)')} (this run)": found[m] for m, _ in rows if m in found}


@dataclass
class TableRun:
    table: int
    sets: dict[str, tuple[Path, Path | None]]  # column set name → (LQ folder, GT folder or None)
    results: dict[str, dict[str, EvalResult]] = field(default_factory=dict)  # row → set → result
    switches: dict[str, tuple[bool, ...]] = field(default_factory=dict)  # ablation row → Table 1 switches

    def cell(self, row: str, column) -> float | None:
        """Our value under a published column: the column's own set (Tables 4–6), else the only set."""
        results = self.results[row]
        result = results.get(column.name) or next(iter(results.values()))
        return result.metrics.get(column.ours)

    def to_json(self) -> dict:
        def cell(r: EvalResult) -> dict:
            whole = r.to_json()  # "inf" for an infinite PSNR, as eval's metrics.json
            return {**{k: whole[k] for k in ("images", "metrics", "skipped", "unpaired")},
                    "restore": r.restore and {k: r.restore[k] for k in ("weights", "method", "restored", "seconds")}}
        switch_names = [c.name for c in paper_table("table1").columns]
        return {
            "table": self.table, "published": published(self.table).to_json(),
            "sets": {s: {"lq": str(lq), "gt": gt and str(gt)} for s, (lq, gt) in self.sets.items()},
            "rows": {row: {s: cell(r) for s, r in by_set.items()} for row, by_set in self.results.items()},
            "switches": {row: dict(zip(switch_names, sw)) for row, sw in self.switches.items()},
        }


@dataclass
class TablePlan:
    """What ``eval --table N`` will read and run, checked before any work."""
    table: int
    sets: dict[str, tuple[Path, Path | None]]  # Tables 1–3, 7; Tables 4–6 fill theirs from ``variants``
    models: dict[str | None, str | None]  # row → weights (None row: "this run")
    metrics: tuple[str, ...]
    hq: Path | None = None
    variants: Path | None = None
    switches: dict[str, tuple[bool, ...]] = field(default_factory=dict)


def plan_table(table: int, *, dataset: str | None = None, data_root: Path | None = None, lq: Path | None = None,
               gt: Path | None = None, hq: Path | None = None, variants: Path | None = None,
               experiments: Path = Path("experiments"), restored: Path | None = None, method: str = "mpcnet",
               weights: str | None = None, fid_ref: Path | None = None, metrics: tuple[str, ...] | None = None,
               output: Path | None = None, overwrite: bool = False) -> TablePlan:
    """Check a ``--table N`` request and resolve its folders (:class:`EvalError` says what is wrong): Tables
    1–3 read CelebA-Test (``--lq/--gt`` or the named dataset), Table 7 a real set without GT, Tables 4–6
    the HQ faces (``--hq``, ``--gt`` or CelebA-Test's GT) and their variants folder (default OUT/variants)."""
    from mpcnet.evaluate import resolve_dataset
    from mpcnet.utils.safe_output import check_output_location

    if table not in TABLES:
        raise EvalError(f"--table {table}: the paper's tables are {', '.join(map(str, TABLES))}")
    if output is None:
        raise EvalError("--table writes a report: give -o OUT")
    if restored is not None:
        raise EvalError("--table restores its inputs itself: --restored does not go with it")
    if table == 7 and (gt or hq):
        raise EvalError("Table 7 is scored without ground truth: drop --gt/--hq")
    if table in (1, 2) and (weights or method != "mpcnet"):
        raise EvalError(f"Table {table} restores with the ablation runs under --experiments: drop --weights/--method")
    if table not in VARIANT_TABLES and (hq or variants):
        raise EvalError("--hq and --variants go with --table 4|5|6")
    if dataset and (lq or gt or hq):
        raise EvalError("give either --dataset or folders (--lq/--gt/--hq), not both")
    if table in VARIANT_TABLES:
        hq = hq or gt or resolve_dataset(dataset or "celeba-test", data_root)[1]
        folders = [("--hq", hq)]
    else:
        if not (lq or gt):
            lq, gt = resolve_dataset(dataset or ("real-test" if table == 7 else "celeba-test"), data_root)
        if lq is None or (gt is None and table != 7):
            raise EvalError(f"Table {table} needs --lq and --gt (or --dataset celeba-test)")
        folders = [("--lq", lq), ("--gt", gt)]
    for name, folder in folders + [("--variants", variants), ("--fid-ref", fid_ref)]:
        if folder is not None and not folder.is_dir():
            raise EvalError(f"{name} {folder} is not a folder")
    check_output_location(hq or lq, output)
    sets = {} if table in VARIANT_TABLES else {"Real-Test" if table == 7 else "CelebA-Test": (lq, gt)}
    plan = TablePlan(table, sets, {None: weights},
                     metrics or tuple(dict.fromkeys(c.ours for c in published(table).columns)), hq)
    if table in VARIANT_TABLES:
        plan.variants = variants or output / "variants"
        check_output_location(hq, plan.variants)
    if table in (1, 2):
        if not experiments.is_dir():
            raise EvalError(f"--experiments {experiments} is not a folder (train the ablation first: "
                            "scripts/reproduce_ablation.sh)")
        found = ablation_checkpoints(experiments)
        plan.models = {row: str(ckpt) for row, (ckpt, _) in found.items()}
        plan.switches = {row: switches for row, (_, switches) in found.items()}
    report_paths(table, output, overwrite)
    return plan


def run_plan(plan: TablePlan, output: Path, *, device: str = "cpu", method: str = "mpcnet",
             fid_ref: Path | None = None, overwrite: bool = False,
             progress: Callable[[str], None] | None = None) -> TableRun:
    """Build the missing variants (Tables 4–6; at the HQ faces' own size), then :func:`run_table`."""
    sets = plan.sets
    if plan.variants is not None:
        sets = {name: (folder, plan.hq) for name, folder in
                build_variants(plan.table, plan.hq, plan.variants, size=0, progress=progress).items()}
    run = run_table(plan.table, sets, plan.models, output, plan.metrics, device=device, method=method,
                    fid_ref=fid_ref, overwrite=overwrite, progress=progress)
    run.switches = plan.switches
    return run


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def run_table(table: int, sets: dict[str, tuple[Path, Path | None]], models: dict[str | None, str | None],
              out_dir: Path, metrics: tuple[str, ...], *, device: str = "cpu", method: str = "mpcnet",
              fid_ref: Path | None = None, overwrite: bool = False,
              progress: Callable[[str], None] | None = None) -> TableRun:
    """Score the LQ of every set (the Input row), then restore and score it with each model. ``models`` maps a
    row name to weights; the row name None becomes ``this run (method, weights)``. Restorations are kept
    in ``out_dir/restored/<row>/<set>/restored_imgs``."""
    run = TableRun(table, sets)
    say = progress or (lambda _msg: None)

    def scored(restored: Path, lq: Path, gt: Path | None, what: str, only: set[str] | None = None) -> EvalResult:
        say(f"scoring {what}")
        return score(restored, gt, lq=lq, fid_ref=fid_ref, metrics=metrics, device=device,
                     progress=lambda key: say(f"scoring {what}: {key}"), only=only)

    run.results[INPUT_ROW] = {s: scored(lq, lq, gt, f"{s} input") for s, (lq, gt) in sets.items()}
    for row, weights in models.items():
        by_set = {}
        for s, (lq, gt) in sets.items():
            say(f"restoring {s} with {row or method}")
            folder = out_dir / "restored" / _slug(row or "this-run") / s
            restored, summary, keys = restore_folder(lq, weights, folder, device, overwrite=overwrite, method=method)
            by_set[s] = scored(restored, lq, gt, f"{s} ({row or method})", keys)
            by_set[s].restore = summary
        name = row or f"this run ({method}, {summary['weights']})"
        run.results[name] = by_set
    return run


def markdown(run: TableRun) -> str:
    """The report: what was scored, the paper's table with our rows, every metric of ours per row and set."""
    table = published(run.table)
    lines = [f"# mpcnet eval --table {run.table} — {table.title}", ""]
    lines += [f"* {s}: `{lq}`" + (f" against `{gt}`" if gt else " (no ground truth)")
              + f", {len(run.results[INPUT_ROW][s].per_image)} images" for s, (lq, gt) in run.sets.items()]
    lines += [f"* {row}: restored with `{r.restore['weights']}` ({r.restore['method']})"
              for row, by_set in run.results.items() for r in list(by_set.values())[:1] if r.restore]
    lines.append("")
    if run.switches:
        switches = paper_table("table1")
        lines += table_lines(switches, [(row, ["✓" if v else "×" for v in sw])
                                        for row, sw in run.switches.items()])
    ours = [(row, [format_value(run.cell(row, c), c.ours) if run.cell(row, c) is not None else "not computed"
                   for c in table.columns]) for row in run.results]
    lines += table_lines(table, ours)
    computed = [m for m in METRICS if any(m in r.metrics for by_set in run.results.values() for r in by_set.values())]
    lines += ["## This run, every metric", "", "| row | set | " + " | ".join(m.upper() for m in computed) + " |",
              "|---|---|" + "---|" * len(computed)]
    for row, by_set in run.results.items():
        for s, r in by_set.items():
            lines.append(f"| {row} | {s} | " + " | ".join(format_value(r.metrics.get(m), m) for m in computed) + " |")
    lines.append("")
    lines += [f"* {m.upper()}: {DESCRIPTIONS[m]}" for m in computed]
    skipped = {m: reason for by_set in run.results.values() for r in by_set.values() for m, reason in r.skipped.items()}
    lines += [f"* {m.upper()} skipped: {reason}" for m, reason in skipped.items()]
    protocols = {r.fid_protocol for by_set in run.results.values() for r in by_set.values() if r.fid_protocol}
    lines += [f"* FID protocol: {p}" for p in sorted(protocols)] + [""]
    return "\n".join(lines)


def report_paths(table: int, out_dir: Path, overwrite: bool = False) -> list[Path]:
    """``tableN.md`` and ``tableN.json`` (``table1-2.*`` for the ablation) in ``out_dir``; refused, before
    any work, where they exist and ``overwrite`` is not given."""
    targets = [out_dir / f"{report_stem(table)}.{ext}" for ext in ("md", "json")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise EvalError(f"{existing[0]} exists; give --overwrite to replace the report")
    return targets


def write_table_report(run: TableRun, out_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write the report files of :func:`report_paths`."""
    targets = report_paths(run.table, out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(targets[0], markdown(run).encode())
    write_bytes_atomic(targets[1], json.dumps(run.to_json(), indent=2).encode())
    return targets
