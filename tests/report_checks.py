"""Checks that the files and console text of a run hold report.json's numbers, read back independently.

The rendered text is parsed here with plain regular expressions and csv / html.parser, never with lorafair's
renderers, and every number is compared with the value report.json stores, formatted as the tables show it
(4 decimals, gains signed); predictions.csv is recomputed with scikit-learn.
"""

from __future__ import annotations

import csv
import html.parser
import json
import re
from pathlib import Path

import numpy as np
import pytest

NUMBER = re.compile(r"[+-]?\d+\.\d+")
SUMMARY_METRICS = ("accuracy", "f1", "precision", "recall", "auc_roc")  # the summary table's columns, in order


def summary_numbers(text: str, report: dict) -> dict:
    """Per variant: the numbers of its summary-table row (console `NAME  0.1234 ...` or Markdown `| NAME | ...`)."""
    found = {}
    for variant, block in report["variants"].items():
        name = block["name"]
        row = next(line for line in text.splitlines() if line.startswith(name + "  ") or line.startswith(f"| {name} |"))
        found[variant] = [float(x) for x in NUMBER.findall(row.replace(name, "", 1))]
    return found


def expected_summary(report: dict) -> dict:
    return {
        v: [round(b["metrics"][m]["value"], 4) for m in SUMMARY_METRICS if b["metrics"][m]["value"] is not None]
        for v, b in report["variants"].items()
    }


def first_gain_row(text: str, key: str) -> list[float]:
    """The numbers of the first (accuracy) row of the gain table of delta `key` (e.g. "B-A")."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if f"({key})" in line)
    rows = [line for line in lines[start + 1 :] if line.strip() and not set(line.strip()) <= set("-|: ")]
    return [float(x) for x in NUMBER.findall(rows[1])]  # rows[0] is the header


def assert_tables_hold_the_report(text: str, report: dict) -> None:
    """Console or Markdown: the summary rows and each delta's accuracy row equal report.json's values."""
    got = summary_numbers(text, report)
    for variant, values in expected_summary(report).items():
        assert got[variant][: len(values)] == pytest.approx(values, abs=1e-12), variant
    for key, per_metric in report["deltas"].items():
        new, ref = key.split("-")
        entry = per_metric["accuracy"]
        want = [
            round(report["variants"][ref]["metrics"]["accuracy"]["value"], 4),
            round(report["variants"][new]["metrics"]["accuracy"]["value"], 4),
            round(entry["value"], 4),
        ]
        assert first_gain_row(text, key)[:3] == pytest.approx(want, abs=1e-12), key


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.parts.append(data)


def html_text(page: str) -> tuple[str, list[str]]:
    parser = _Text()
    parser.feed(page)
    parser.close()
    return " ".join(" ".join(parser.parts).split()), parser.tags


def read_predictions(path: Path, labels: list[str]) -> tuple[list[dict], dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    probs = {}
    for key in rows[0]:
        if key.startswith("pred_"):
            variant = key[len("pred_") :]
            probs[variant] = np.array([[float(r[f"prob_{variant}_{name}"]) for name in labels] for r in rows])
    return rows, probs


def assert_outputs_hold_the_report(folder: Path, probs: dict | None = None) -> dict:
    """report.md, report.html and predictions.csv of `folder` against its report.json; returns the report.

    `probs` (variant -> probabilities, e.g. `Comparison.probs`): predictions.csv must hold exactly these."""
    from sklearn import metrics as skm

    folder = Path(folder)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert_tables_hold_the_report((folder / "report.md").read_text(encoding="utf-8"), report)

    labels = [str(x) for x in report["data"]["labels"]]
    rows, csv_probs = read_predictions(folder / "predictions.csv", labels)
    assert [int(r["index"]) for r in rows] == report["data"]["indices"] and len(rows) == report["data"]["n"]
    assert list(csv_probs) == list(report["variants"])
    y = np.array([labels.index(r["label"]) for r in rows])
    assert {labels[k]: int((y == k).sum()) for k in range(len(labels))} == report["data"]["label_counts"]
    for variant, p in csv_probs.items():
        assert [labels[k] for k in p.argmax(axis=1)] == [r[f"pred_{variant}"] for r in rows]
        assert report["variants"][variant]["metrics"]["accuracy"]["value"] == pytest.approx(
            skm.accuracy_score(y, p.argmax(axis=1)), abs=1e-12
        )
        if probs is not None:
            np.testing.assert_array_equal(p, np.asarray(probs[variant], dtype=np.float64))

    text, tags = html_text((folder / "report.html").read_text(encoding="utf-8"))
    assert tags[:2] == ["html", "head"] and "table" in tags
    for block in report["variants"].values():
        assert f"{block['metrics']['accuracy']['value']:.4f}" in text, block["name"]
    for per_metric in report["deltas"].values():
        assert f"{per_metric['accuracy']['value']:+.4f}" in text
    return report
