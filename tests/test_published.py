"""The published tables beside `mpcnet eval`'s results: several sources per dataset, each with its source,
protocol and column meanings, and this run's values only in the columns computed as ours are."""
from __future__ import annotations

import re

import pytest

from mpcnet.eval_report import format_value
from mpcnet.metrics import METRICS
from mpcnet.metrics.dlib_face import NAMES as DLIB
from mpcnet.published import comparison_markdown, load_tables, published_json, read_tables

# The best (red) and second-best (blue) method per column, as the source tables colour them: read off
# the table images independently of the numbers, so a mistyped value or direction fails here.
MARKED = {
    "OSDFace": {"lpips": ("OSDFace (paper)", "VQFR"), "dists": ("OSDFace (paper)", "PGDiff (s=1000)"),
                "musiq": ("CodeFormer", "OSDFace (paper)"), "niqe": ("OSDFace (paper)", "RestoreFormer++"),
                "deg": ("OSDFace (paper)", "DiffBIR (s=50)"), "lmd": ("DiffBIR (s=50)", "OSDFace (paper)"),
                "fid_ffhq": ("PGDiff (s=1000)", "OSDFace (paper)"), "fid_hq": ("OSDFace (paper)", "DifFace (s=250)")},
    "PMRF": {"fid": ("PMRF (paper)", "DifFace"), "kid": ("PMRF (paper)", "DifFace"), "niqe": ("VQFRv1", "PMRF (paper)"),
             "precision": ("DifFace", "PMRF (paper)"), "psnr": ("PMRF (paper)", "BFRffusion"),
             "ssim": ("PMRF (paper)", "BFRffusion"), "lpips": ("CodeFormer", "RestoreFormer++"),
             "deg": ("RestoreFormer++", "PMRF (paper)"), "lmd": ("BFRffusion", "DiffBIR")},
}


def celeba_tables():
    return {t.title.split(" paper")[0]: t for t in load_tables()["celeba-test"]}


def test_celeba_test_has_the_paper_and_its_peers_tables_each_cited_with_its_protocol():
    tables = celeba_tables()
    assert list(tables) == ["MPCNet", "OSDFace", "PMRF"]
    for table in (t for group in load_tables().values() for t in group):
        assert table.source and len(table.protocol) > 80 and table.rows
        # a score column names the metric of ours computed the same way (Table 1's switch columns
        # name the switch a checkpoint records instead)
        assert all(c.ours is None or c.ours in METRICS for c in table.columns if c.higher_is_better is not None)
        assert not {c.ours for c in table.columns} & {*DLIB, "deg_arcface", "cos_arcface"}
        assert all(c.ours is None for c in table.columns if c.name in ("deg", "lmd", "lpips") and table.url)
    for name in ("OSDFace", "PMRF"):
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/blob/[0-9a-f]{40}/.+\.png", tables[name].url)


@pytest.mark.parametrize("name", MARKED)
def test_transcribed_rows_reproduce_the_source_tables_best_and_second_best(name):
    table = celeba_tables()[name]
    for i, column in enumerate(table.columns):
        ranked = sorted(table.rows, key=lambda row: row[1][i], reverse=column.higher_is_better)
        assert (ranked[0][0], ranked[1][0]) == MARKED[name][column.name], column.name


def test_read_tables_keeps_every_source_of_a_dataset_in_order_and_rejects_short_rows(tmp_path):
    def table(key, title, values):
        return (f"  - {{key: {key}, title: '{title}', source: s, protocol: p, columns: "
                f"[{{name: a, label: A, higher_is_better: true}}, {{name: b, label: B, higher_is_better: false}}], "
                f"rows: [{{method: m, values: {values}}}]}}\n")
    path = tmp_path / "t.yaml"
    path.write_text("tables:\n" + table("x", "one", [1, 2]) + table("y", "two", [3, 4]) + table("x", "three", [5, 6]))
    tables = read_tables(path)
    assert {k: [t.title for t in v] for k, v in tables.items()} == {"x": ["one", "three"], "y": ["two"]}
    assert tables["x"][1].rows == (("m", (5, 6)),) and tables["x"][0].url is None
    path.write_text("tables:\n" + table("x", "short", [1]))
    with pytest.raises(ValueError, match="'short' does not have 2 values"):
        read_tables(path)


def test_report_blocks_put_our_values_only_in_columns_computed_as_ours():
    ours = {"psnr": 23.4567, "niqe": 4.321, "deg_dlib": 31.2468, "lmd_dlib68": 7.8642, "cos_dlib": 0.9137}
    text = "\n".join(comparison_markdown(ours, "celeba-test", True, format_value, "this run"))
    blocks = text.split("\n## ")[1:]
    assert len(blocks) == 3 and "for orientation only" not in text
    for block, table in zip(blocks, load_tables()["celeba-test"]):
        assert block.startswith(table.title) and f"*Source:* {table.source}" in block and table.protocol in block
        header = next(line for line in block.splitlines() if line.startswith("| method |"))
        run = next(line for line in block.splitlines() if line.startswith("| **this run** |"))
        labels, cells = header.split(" | ")[1:], run.strip(" |").split(" | ")[1:]
        assert len(labels) == len(cells) == len(table.columns)
        for column, label, cell in zip(table.columns, labels, cells):
            assert label.strip(" |").endswith("↑" if column.higher_is_better else "↓")
            expected = {None: "not comparable", "psnr": "23.46", "niqe": "4.32"}.get(column.ours, "not computed")
            assert cell == expected, (table.title, column.name)
    for dlib_value in ("31.25", "7.86", "0.9137"):
        assert dlib_value not in text


def test_json_lists_every_source_and_runs_without_gt_get_the_real_test_table():
    with_gt = published_json(None, True)
    assert [t["title"].split(" paper")[0] for t in with_gt] == ["MPCNet", "OSDFace", "PMRF"]
    assert not any(t["same_data"] for t in with_gt) and all(t["same_data"] for t in published_json("celeba-test", True))
    pmrf = with_gt[2]
    assert pmrf["url"].endswith("celeba-test-table.png") and "VGG" in pmrf["protocol"]
    assert set(pmrf["rows"][-1]["values"]) == {c["name"] for c in pmrf["columns"]}
    assert {c["name"]: c["ours"] for c in pmrf["columns"]}["deg"] is None
    assert [t["title"] for t in published_json(None, False)] == ["MPCNet paper, Table 7 (Real-Test)"]
