"""The published tables `mpcnet eval` prints beside a run, read from ``published_tables.yaml`` (package data).

Each table carries its source (paper, table), its protocol and, per column, what the metric is, which
direction is better and which of our metrics (if any) is computed the same way: only those get this
run's value, so a dlib angle never lands in an ArcFace column.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

TABLES_FILE = Path(__file__).with_name("published_tables.yaml")


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    higher_is_better: bool | None = None  # None: not a score (Table 1's switches)
    ours: str | None = None  # our metric computed the same way, or None


@dataclass(frozen=True)
class PublishedTable:
    key: str  # the dataset it reports on (``--dataset`` name)
    title: str
    source: str
    protocol: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, tuple[float, ...]], ...]

    def to_json(self) -> dict:
        return {"title": self.title, "source": self.source, "protocol": self.protocol,
                "columns": [c.__dict__ for c in self.columns],
                "rows": [{"method": m, "values": dict(zip((c.name for c in self.columns), v))} for m, v in self.rows]}


@functools.lru_cache(maxsize=1)
def load_tables() -> dict[str, PublishedTable]:
    tables = {}
    for t in yaml.safe_load(TABLES_FILE.read_text())["tables"]:
        columns = tuple(Column(**c) for c in t["columns"])
        rows = tuple((r["method"], tuple(r["values"])) for r in t["rows"])
        if any(len(v) != len(columns) for _, v in rows):
            raise ValueError(f"{TABLES_FILE}: a row of '{t['key']}' does not have {len(columns)} values")
        tables[t["key"]] = PublishedTable(t["key"], t["title"], t["source"], t["protocol"].strip(), columns, rows)
    return tables


def table_for(dataset: str | None, has_gt: bool) -> PublishedTable:
    """The table of a named dataset, else CelebA-Test's for runs with GT and Real-Test's without."""
    tables = load_tables()
    return tables.get(dataset or "") or tables["celeba-test" if has_gt else "real-test"]


def published_json(dataset: str | None, has_gt: bool) -> dict:
    table = table_for(dataset, has_gt)
    return {**table.to_json(), "same_data": table.key == dataset}


def comparison_markdown(metrics: dict[str, float | None], dataset: str | None, has_gt: bool,
                        fmt: Callable[[float | None, str], str], run: str = "this run") -> list[str]:
    """The published table with a last row for this run (labelled ``run``), in the columns computed the
    same way as ours only."""
    table = table_for(dataset, has_gt)
    caveat = "" if table.key == dataset else " — for orientation only: not the same data"
    ours = [fmt(metrics[c.ours], c.ours) if c.ours in metrics else "not computed" for c in table.columns]
    return table_lines(table, [(run, ours)], caveat)


def table_lines(table: PublishedTable, ours: list[tuple[str, list[str]]], caveat: str = "") -> list[str]:
    """A published table in Markdown (title, source, protocol, its rows) with our rows, in bold, below:
    each ``(label, one formatted cell per column)``. Booleans print as ✓/×."""
    def arrow(c: Column) -> str:
        return "" if c.higher_is_better is None else " ↑" if c.higher_is_better else " ↓"

    def cell(v) -> str:
        return ("✓" if v else "×") if isinstance(v, bool) else f"{v:g}"

    lines = [f"## {table.title}{caveat}", "", f"*Source:* {table.source}.  ", f"*Protocol:* {table.protocol}", "",
             "| method | " + " | ".join(f"{c.label}{arrow(c)}" for c in table.columns) + " |",
             "|---|" + "---|" * len(table.columns)]
    lines += [f"| {method} | " + " | ".join(map(cell, values)) + " |" for method, values in table.rows]
    return lines + [f"| **{label}** | " + " | ".join(cells) + " |" for label, cells in ours] + [""]
