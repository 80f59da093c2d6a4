"""Kill rate per module of the last `make mutation` run (mutmut's results in mutants/*.meta).

    python scripts/mutation_report.py [--survivors]

A mutant counts as detected when a test failed on it or it timed out. Mutants listed in
tests/mutation_equivalent.txt (``mutant-name  reason``: the mutation changes no behaviour) are left
out of the rate; ``no tests`` are mutants of code no selected fast test runs, shown apart.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
DETECTED = ("killed", "timeout", "segfault", "caught by type check")


def equivalent() -> set[str]:
    path = ROOT / "tests" / "mutation_equivalent.txt"
    lines = path.read_text().splitlines() if path.is_file() else []
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def main(show_survivors: bool) -> int:
    metas = sorted((ROOT / "mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results: run `make mutation` first", file=sys.stderr)
        return 2
    skip = equivalent()
    print(f"{'module':34} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv.':>6} {'no tests':>8} "
          f"{'unrun':>5}  kill rate")
    survivors = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter()
        for name, code in codes.items():
            status = status_by_exit_code[code]
            status = "equivalent" if status == "survived" and name in skip else status
            counts["detected" if status in DETECTED else status] += 1
            if status == "survived":
                survivors.append(name)
        judged = counts["detected"] + counts["survived"]
        rate = f"{100 * counts['detected'] / judged:5.1f} %" if judged else "    –"
        module = meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta")
        print(f"{module:34} {len(codes):7} {counts['detected']:6} {counts['survived']:8} {counts['equivalent']:6} "
              f"{counts['no tests']:8} {counts['not checked']:5}  {rate}")
    if show_survivors:
        print("\n".join(["", "survivors (mutmut show NAME):", *survivors]))
    return 0


if __name__ == "__main__":
    sys.exit(main("--survivors" in sys.argv[1:]))
