"""report["flips"] built by report/build.py, written as flips.csv and rendered (console, Markdown, HTML; en, zh).

Reports come from a real `build_report` on synthetic probabilities (synthetic_report.py); every number is checked
against predictions.csv recomputed by hand, numpy or sklearn, never against the code's own output.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from report_checks import html_text
from synthetic_report import make_report, synthetic_probs

from lorafair.report import flips_sections, words
from lorafair.report.html import render_html
from lorafair.report.render import render_console, render_markdown
from lorafair.report.write import flips_csv, predictions_csv, report_json, write_outputs

N, K = 300, 3
VARIANTS = ("B", "A", "A1", "R")


def _texts(n: int) -> list[str]:
    return [f"example {i} " + ("long words " * 40 if i % 7 == 0 else "short") for i in range(n)]


def _lengths(n: int) -> np.ndarray:
    return (np.arange(n) * 37) % 101 + 4


@pytest.fixture(scope="module")
def report() -> dict:
    return make_report(k=K, n=N, texts=_texts(N), token_lengths=_lengths(N))


@pytest.fixture(scope="module")
def y_probs():
    return synthetic_probs(K, N, VARIANTS, 0)


def _predictions(report, y, probs) -> list[dict]:
    return list(csv.DictReader(io.StringIO(predictions_csv(report, probs, y))))


def test_paired_tables_count_predictions_csv_by_hand(report, y_probs):
    rows = _predictions(report, *y_probs)
    assert set(report["flips"]["pairs"]) == {"B-A", "B-A1"}  # A1 - A is no pair of B
    for key, pair in report["flips"]["pairs"].items():
        ref = key.split("-")[1]
        counts = {"both_right": 0, "only_new_right": 0, "only_reference_right": 0, "both_wrong": 0}
        for r in rows:
            b, a = r["pred_B"] == r["label"], r[f"pred_{ref}"] == r["label"]
            cell = "both_right" if a and b else "only_new_right" if b else "only_reference_right" if a else "both_wrong"
            counts[cell] += 1
        assert pair["table"] == {**counts, "n": N}
        # McNemar's b and c in the delta entry are the two discordant cells
        assert report["deltas"][key]["accuracy"]["discordant"] == [
            counts["only_reference_right"],
            counts["only_new_right"],
        ]
        nfr = pair["negative_flip_rate"]
        assert nfr["value"] == counts["only_reference_right"] / N and nfr["method"] == "wilson"
        assert nfr["ci"][0] <= nfr["value"] <= nfr["ci"][1]


def test_flips_csv_rows_are_predictions_csv_recomputed_by_hand(report, y_probs):
    y, probs = y_probs
    rows = _predictions(report, y, probs)
    flipped = list(csv.DictReader(io.StringIO(flips_csv(report, probs, y))))
    expected = []
    for ref in ("A", "A1"):
        per_direction = {"fixed": [], "broken": []}
        for r in rows:
            b, a = r["pred_B"] == r["label"], r[f"pred_{ref}"] == r["label"]
            if a != b:
                p_b, p_a = float(r[f"prob_B_{r['label']}"]), float(r[f"prob_{ref}_{r['label']}"])
                per_direction["fixed" if b else "broken"].append((r["index"], r["label"], p_a, p_b))
        per_direction["fixed"].sort(key=lambda t: -(t[3] - t[2]))
        per_direction["broken"].sort(key=lambda t: t[3] - t[2])
        expected += [(f"B-{ref}", d, *t) for d in ("fixed", "broken") for t in per_direction[d]]
    got = [
        (r["pair"], r["direction"], r["index"], r["label"], float(r["p_true_reference"]), float(r["p_true_new"]))
        for r in flipped
    ]
    assert got == expected
    for r in flipped:
        assert float(r["p_true_change"]) == float(r["p_true_new"]) - float(r["p_true_reference"])


def test_top_examples_quote_texts_cut_to_300_characters(report, y_probs):
    y, probs = y_probs
    texts, lengths = _texts(N), _lengths(N)
    position = {index: row for row, index in enumerate(report["data"]["indices"])}
    for pair in report["flips"]["pairs"].values():
        ref = pair["reference"]
        for direction in ("fixed", "broken"):
            quoted = pair[direction]
            assert len(quoted) == min(
                10, pair["table"]["only_new_right" if direction == "fixed" else "only_reference_right"]
            )
            changes = [e["p_true_new"] - e["p_true_reference"] for e in quoted]
            assert changes == sorted(changes, reverse=direction == "fixed")
            for e in quoted:
                row = position[e["index"]]
                assert e["p_true_new"] == probs["B"][row, y[row]] and e["p_true_reference"] == probs[ref][row, y[row]]
                assert e["text"] == texts[row][:300] and e["text_truncated"] == (len(texts[row]) > 300)
                assert e["tokens"] == lengths[row]
    assert len(report_json(report)) < 120_000  # 40 quoted texts of <= 300 characters: the report stays small


def test_per_class_precision_recall_f1_equal_sklearn(report, y_probs):
    from sklearn.metrics import precision_recall_fscore_support

    y, probs = y_probs
    table = flips_sections.prf_table(report, "en")
    for v in ("B", "A", "A1"):
        p, r, f, support = precision_recall_fscore_support(y, probs[v].argmax(axis=1), labels=range(K), zero_division=0)
        column = table.headers.index(f"P / R / F1 {v} ({words.variant_name(v, None, 'en')})")
        for c in range(K):
            assert table.rows[c][1] == str(support[c])
            assert table.rows[c][column] == f"{p[c]:.2f} / {r[c]:.2f} / {f[c]:.2f}"


def test_console_shows_the_tables_and_flip_rates_but_no_texts(report):
    text = render_console(report)
    section = text[text.index("======== Which examples changed ========") :]
    for key, pair in report["flips"]["pairs"].items():
        t = pair["table"]
        row = next(line for line in section.splitlines() if line.startswith(key.replace("-", " - ") + " "))
        cells = [t["both_right"], t["only_new_right"], t["only_reference_right"], t["both_wrong"]]
        assert row.split()[3:7] == [str(c) for c in cells]
        assert f"{pair['negative_flip_rate']['value'] * 100:.1f}%" in row
    assert "Accuracy by true class" in section and "Accuracy by input length" in section
    assert "example 0 " not in text and "P / R / F1" not in text


def test_markdown_and_html_quote_the_changed_texts_in_both_languages(report):
    first = report["flips"]["pairs"]["B-A"]["fixed"][0]
    for lang, heading in (("en", "Which examples changed"), ("zh", "哪些样本发生了变化")):
        md = render_markdown(report, lang)
        assert f"## {heading}" in md and first["text"] in md and words.table(lang, "flips")["prf"] in md
        page = render_html(report, lang)
        plain, tags = html_text(page)
        assert heading in plain and tags.count("details") >= 4 and first["text"] in plain
    quartiles = [r["quartile"] for r in report["flips"]["slices"]["by_length"]]
    assert quartiles == [1, 2, 3, 4]


def test_a_cross_fitted_or_absent_probe(y_probs):
    no_probe = make_report(k=K, n=N, variants=("B", "A"))
    assert list(no_probe["flips"]["pairs"]) == ["B-A"] and "by_length" not in no_probe["flips"]["slices"]
    assert list(no_probe["flips"]["slices"]["by_class"][0]["accuracy"]) == ["B", "A"]
    assert "B - A1" not in render_console(no_probe)
    assert make_report(k=K, n=N, variants=("A", "A1")).get("flips") is None  # no B: nothing flipped by LoRA
    crossed = json.loads(report_json(make_report(k=K, n=N)))
    crossed["flips"]["pairs"]["B-A1"]["reference_cross_fitted"] = True
    line = words.table("en", "flips")["cross_fitted"].format(ref="A1")
    assert line in render_console(crossed) and line in render_markdown(crossed)


def test_write_outputs_writes_flips_csv(report, y_probs, tmp_path):
    y, probs = y_probs
    folder = write_outputs(report, probs, y, tmp_path / "run", overwrite=False)
    with open(folder / "flips.csv", encoding="utf-8", newline="") as handle:
        assert handle.read() == flips_csv(report, probs, y)
