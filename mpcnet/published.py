"""The published tables `mpcnet eval` prints beside a run, read from ``published_tables.yaml`` (package data).

Each table carries its source (paper, table, where it was read), its protocol and, per column, what the
metric is, which direction is better and which of our metrics (if any) is computed the same way: only
those get this run's value, so a dlib angle never lands in an ArcFace column. A dataset may have several
source tables (the MPCNet paper's and its peers'); each is shown in its own block.
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
    url: str | None = None  # where the numbers were read

    def to_json(self) -> dict:
        return {"title": self.title, "source": self.source, "url": self.url, "protocol": self.protocol,
                "columns": [c.__dict__ for c in self.columns],
                "rows": [{"method": m, "values": dict(zip((c.name for c in self.columns), v))} for m, v in self.rows]}


def read_tables(path: Path) -> dict[str, tuple[PublishedTable, ...]]:
    """The tables of a YAML file, grouped by dataset key, each key's in file order."""
    tables: dict[str, tuple[PublishedTable, ...]] = {}
    for t in yaml.safe_load(path.read_text())["tables"]:
        columns = tuple(Column(**c) for c in t["columns"])
        rows = tuple((r["method"], tuple(r["values"])) for r in t["rows"])
        if any(len(v) != len(columns) for _, v in rows):
            raise ValueError(f"{path}: a row of '{t['title']}' does not have {len(columns)} values")
        table = PublishedTable(t["key"], t["title"], t["source"], t["protocol"].strip(), columns, rows, t.get("url"))
        tables[t["key"]] = tables.get(t["key"], ()) + (table,)
    return tables


@functools.lru_cache(maxsize=1)
def load_tables() -> dict[str, tuple[PublishedTable, ...]]:
    return read_tables(TABLES_FILE)


def tables_for(dataset: str | None, has_gt: bool) -> tuple[PublishedTable, ...]:
    """The tables of a named dataset, else CelebA-Test's for runs with GT and Real-Test's without."""
    tables = load_tables()
    return tables.get(dataset or "") or tables["celeba-test" if has_gt else "real-test"]


def published_json(dataset: str | None, has_gt: bool) -> list[dict]:
    return [{**t.to_json(), "same_data": t.key == dataset} for t in tables_for(dataset, has_gt)]


def _decimals(value: float) -> int:
    """Decimal places of a published number; a column prints with its longest (0.16 as 0.1600 beside 0.6877)."""
    text = repr(float(value))
    return len(text.split(".")[1].rstrip("0")) if "." in text and "e" not in text else 0


def comparison_markdown(metrics: dict[str, float | None], dataset: str | None, has_gt: bool,
                        fmt: Callable[[float | None, str], str], run: str = "this run") -> list[str]:
    """One block per published table (:func:`table_lines`), each with a row for this run (labelled ``run``)
    holding our value only in the columns computed the same way as ours."""
    lines = ["Published results follow, one block per source table, each under its own protocol. A **this run** "
             "cell holds our value only where the column is computed as ours is, else *not comparable* "
             "(dlib's deg_dlib and lmd_dlib68 never stand in for a paper's Deg or LMD).", ""]
    for table in tables_for(dataset, has_gt):
        caveat = "" if table.key == dataset else " — for orientation only: not the same data"
        ours = [("not comparable" if c.ours is None else
                 fmt(metrics[c.ours], c.ours) if c.ours in metrics else "not computed") for c in table.columns]
        lines += table_lines(table, [(run, ours)], caveat)
    return lines


def paper_table(key: str) -> PublishedTable:
    """The MPCNet paper's own table under ``key`` (listed first; peers' tables may follow it)."""
    return load_tables()[key][0]


def table_lines(table: PublishedTable, ours: list[tuple[str, list[str]]], caveat: str = "") -> list[str]:
    """A published table in Markdown (title, source, protocol, its rows; a column's numbers print with
    its longest published decimals, booleans as ✓/×) with our rows, in bold, below: each
    ``(label, one formatted cell per column)``."""
    def arrow(c: Column) -> str:
        return "" if c.higher_is_better is None else " ↑" if c.higher_is_better else " ↓"

    numbers = [[v for _, values in table.rows if not isinstance(v := values[i], bool)]
               for i in range(len(table.columns))]
    decimals = [max(map(_decimals, column), default=0) for column in numbers]

    def cell(v, d: int) -> str:
        return ("✓" if v else "×") if isinstance(v, bool) else f"{v:.{d}f}"

    source = f"{table.source} ({table.url})" if table.url else table.source
    lines = [f"## {table.title}{caveat}", "", f"*Source:* {source}.  ", f"*Protocol:* {table.protocol}", "",
             "| method | " + " | ".join(f"{c.label}{arrow(c)}" for c in table.columns) + " |",
             "|---|" + "---|" * len(table.columns)]
    lines += [f"| {method} | " + " | ".join(map(cell, values, decimals)) + " |" for method, values in table.rows]
    return lines + [f"| **{label}** | " + " | ".join(cells) + " |" for label, cells in ours] + [""]
