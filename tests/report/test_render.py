"""Console and Markdown renderers, conclusion/check records, and `lorafair report --lang --format`.

Reports come from a real `build_report` (synthetic_report.py); the expected numbers are read from
the report dict and checked against an independent parse of the rendered text.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
from synthetic_report import add_issue8_keys, make_report, synthetic_probs

from lorafair.cli import main
from lorafair.report import render as report_render
from lorafair.report.render import Section, Table, render_console, render_markdown
from lorafair.report.write import write_outputs

NUMBER = re.compile(r"[+-]?\d+\.\d+")


@pytest.fixture(scope="module")
def report() -> dict:
    return make_report()


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every GitHub table in `text` as rows of cells (header first, the separator row dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(set(c) <= set("-:") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_conclusion_records_follow_the_ci_and_the_paired_test(report):
    records = report["conclusion_records"]
    assert records[0] == {"kind": "same_head", "sha256": report["variants"]["A"]["head_sha256"]}
    deltas = [r for r in records if r["kind"] == "delta"]
    assert [(r["delta"], r["metric"]) for r in deltas] == [
        (d, m) for d in ("B-A", "B-A1", "A1-A") for m in ("accuracy", "f1", "auc_roc")
    ]
    for r in deltas:
        entry = report["deltas"][r["delta"]][r["metric"]]
        assert (r["value"], r["ci"], r["p_value"], r["test"]) == (
            entry["value"],
            entry["ci"],
            entry["p_value"],
            entry["test"],
        )
        lo, hi = entry["ci"]
        significant = (lo > 0 or hi < 0) and (entry["p_value"] is None or entry["p_value"] < 0.05)
        want = ("improved" if entry["value"] > 0 else "decreased") if significant else "no_difference"
        assert r["verdict"] == want == entry["verdict"]
    assert [r["test"] for r in deltas[:3]] == ["mcnemar", "bootstrap", "delong"]
    assert records[1 + len(deltas) :] == report["power"]  # then the underpowered deltas
    assert all(r["kind"] == "underpowered" for r in report["power"])
    json.dumps(report)  # records are plain JSON
    # The English sentences stay alongside, for scripts: one per record, the same-head proof first.
    assert len(report["conclusion"]) == len(records)
    assert report["conclusion"][0] == f"A and B use the same head: SHA-256 {'3f' * 32}."
    first = report["conclusion"][1]
    assert first.startswith("LoRA vs frozen base with the same head (B - A): accuracy improved by")
    value, lo, hi = (float(x) for x in NUMBER.findall(first)[:3])
    entry = report["deltas"]["B-A"]["accuracy"]
    assert [value, lo, hi] == pytest.approx([100 * entry["value"], *(100 * c for c in entry["ci"])], abs=0.051)


def test_console_tables_hold_the_report_numbers(report):
    text = render_console(report)
    for block in report["variants"].values():
        row = next(line for line in text.splitlines() if line.startswith(block["name"] + "  "))
        values = [float(x) for x in NUMBER.findall(row)]
        assert values[:5] == pytest.approx(
            [round(block["metrics"][m]["value"], 4) for m in ("accuracy", "f1", "precision", "recall", "auc_roc")],
            abs=1e-12,
        )
    for key in ("B-A", "B-A1", "A1-A"):
        assert f"({key}) ========" in text
    assert "Speed difference (B vs A): -6.1%" in text
    assert "1.35 GB" in text  # peak memory, where the run measured it
    cpu = copy.deepcopy(report)
    for block in cpu["variants"].values():
        block.get("speed", {})["peak_memory_bytes"] = None  # CPU passes do not measure it
    assert "peak memory" not in render_console(cpu) and "n/a" not in render_console(cpu).split("Speed")[1]
    assert "F1 (positive: pos)" in text


ENGLISH_NAMES = {"B": "LoRA model", "A": "Frozen base + LoRA head", "A1": "Frozen base + linear probe"}
ENGLISH_NAMES["R"] = "Base + random head"
LABELS = {"accuracy": "accuracy", "f1": "F1 (positive: pos)", "precision": "precision (positive: pos)"}
LABELS.update(recall="recall (positive: pos)", auc_roc="AUC-ROC (positive: pos)", log_loss="log loss")
LABELS.update(brier="Brier score", ece="ECE")


def test_markdown_tables_hold_the_values_of_report_json(report, tmp_path):
    """Every cell of the summary and gain tables against report.json, read back from disk and parsed here."""
    y, probs = synthetic_probs(2, 300, ("B", "A", "A1", "R"), seed=0)
    write_outputs(report, probs, y, tmp_path / "run", overwrite=False)
    saved = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    md = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    summary, *gains = markdown_tables(md)[:4]
    metrics = ["accuracy", "f1", "precision", "recall", "auc_roc"]
    assert summary[0] == ["Model", *(LABELS[m] for m in metrics)]
    assert [row[0] for row in summary[1:]] == [ENGLISH_NAMES[v] for v in ("B", "A", "A1", "R")]
    for row, v in zip(summary[1:], ("B", "A", "A1", "R")):
        expected = [saved["variants"][v]["metrics"][m]["value"] for m in metrics]
        assert [float(c) for c in row[1:]] == pytest.approx(expected, abs=5e-5)
    for table, key in zip(gains, ("B-A", "B-A1", "A1-A")):
        new, ref = key.split("-")
        assert table[0] == ["Metric", "Reference", ENGLISH_NAMES[new], "Abs. gain", "Rel. gain", "95% CI", "p (test)"]
        assert [row[0] for row in table[1:]] == [LABELS[m] for m in saved["deltas"][key]]
        for row, (metric, entry) in zip(table[1:], saved["deltas"][key].items()):
            _check_gain_row(
                row, entry, saved["variants"][ref]["metrics"][metric], saved["variants"][new]["metrics"][metric]
            )
    # The answer comes first in Markdown; setup hashes last.
    assert md.index("## Conclusion") < md.index("## Summary") < md.index("## Setup")
    assert saved["data"]["token_ids_sha256"] in md[md.index("## Setup") :]


def _check_gain_row(row: list[str], entry: dict, ref: dict, new: dict) -> None:
    assert [float(row[1]), float(row[2]), float(row[3])] == pytest.approx(
        [ref["value"], new["value"], entry["value"]], abs=5e-5
    )
    assert float(row[4].rstrip("%")) == pytest.approx(100 * entry["relative"], abs=5e-3)
    assert [float(x) for x in NUMBER.findall(row[5])] == pytest.approx(entry["ci"], abs=5e-5)
    if entry["p_value"] is None:
        assert row[6] == "-"
    else:
        p, test = re.fullmatch(r"(?:< )?([\d.e-]+) \((\w+)\)", row[6]).groups()
        assert test == {"mcnemar": "McNemar", "delong": "DeLong"}[entry["test"]]
        assert float(p) == pytest.approx(max(entry["p_value"], 1e-4), rel=5e-3)


def test_cells_with_pipes_stay_one_cell():
    table = Table(["a", "b"], [["x|y", ("1.0", "[0.9, 1.1]")]], numeric=[False, True])
    parsed = markdown_tables(report_render.markdown_table(table))
    assert parsed == [[["a", "b"], ["x\\|y", "1.0 [0.9, 1.1]"]]]


def test_data_loss_and_fidelity_notes_appear_in_the_console(report):
    text = render_console(add_issue8_keys(copy.deepcopy(report)))
    assert "3 rows dropped while loading the data" in text
    assert "12 examples (4.0%) truncated to --max-length 256 tokens" in text
    assert "merged vs unmerged LoRA (float32, 64 examples): max |logit difference| 2.4e-06, 0 prediction flips" in text
    plain = render_console(report)
    assert "dropped" not in plain and "truncated" not in plain  # nothing to say when nothing was lost


def test_checks_are_reworded_from_their_records(report):
    r = copy.deepcopy(report)
    kinds = [c["kind"] for c in r["check_records"]]
    # QPS -6.1%; the synthetic adapter records no task (adapter_data.task_records); B - A far above the seed's
    # "usual 3-8 pp" is no check any more (report["diagnosis"] says what to try next from the figures)
    assert kinds == ["speed", "unrecorded"]
    assert len(r["checks"]) == 2 and "differ by -6.1%" in r["checks"][0]
    r["checks"].append("a sentence a script added")  # schema 2: report["checks"] is only the records' English
    zh = render_console(r, "zh")
    assert "相差 -6.1%" in zh
    assert "differ by" not in zh and "a sentence a script added" not in zh


def test_analysis_hook_slots_in_after_the_metric_tables_in_every_medium(report, monkeypatch):
    section = Section("analysis", "Layer analysis", [Table(["layer", "CKA"], [["12", "0.91"]])])
    monkeypatch.setattr(report_render, "analysis_section", lambda rep, lang: section)
    console = render_console(report)
    assert console.index("(A1-A) ========") < console.index("Layer analysis") < console.index("Conclusion")
    md = render_markdown(report)
    assert md.index("(A1-A)") < md.index("## Layer analysis") < md.index("## Speed comparison")
    from lorafair.report.html import render_html

    page = render_html(report)
    assert page.index('<section id="gains">') < page.index('<section id="analysis">') < page.index('id="plots"')
    assert "<td>0.91</td>" in page


def test_old_report_without_records_renders_its_stored_prose(report):
    old = copy.deepcopy(report)
    for key in ("conclusion_records", "check_records"):
        del old[key]
    for entry in (e for d in old["deltas"].values() for e in d.values()):
        del entry["verdict"]
    old["conclusion"], old["checks"] = ["stored sentence"], ["stored check"]
    text = render_console(old, "zh")
    assert "- stored sentence" in text and "- stored check" in text


@pytest.mark.parametrize("fmt", ["console", "md", "html"])
def test_lorafair_report_rerenders_in_the_other_language(tmp_path, capsys, fmt):
    variants = ("B", "A", "A1", "R")
    rep = make_report(lang="en", n=300)
    y, probs = synthetic_probs(2, 300, variants, seed=0)
    write_outputs(rep, probs, y, tmp_path / "run", overwrite=False)

    def rendered(lang: str) -> tuple[list[str], str]:
        assert main(["report", str(tmp_path / "run"), "--format", fmt, "--lang", lang]) == 0
        out = capsys.readouterr().out
        if fmt == "html":
            start = out.index('<section class="answer">')
            lines = re.findall(r'<li class="[a-z]+"><span class="sym">.</span>([^<]*)</li>', out[start:])
        else:
            block = out[out.index("Conclusion" if lang == "en" else "结论") :]
            lines = [ln[2:] for ln in block.splitlines()[1:] if ln.startswith("- ")][:10]
        return lines, out

    en, en_out = rendered("en")
    zh, zh_out = rendered("zh")
    assert len(en) == len(zh) >= 9
    assert any("improved by" in s for s in en) and not any("improved by" in s for s in zh)
    assert any("提升" in s for s in zh) and any("无显著差异" in s for s in zh)
    for e, z in zip(en, zh):  # the same numbers, in the other language
        assert NUMBER.findall(e) == NUMBER.findall(z)
    assert ("冻结 + LoRA分类头" in zh_out) and ("Frozen base + LoRA head" in en_out)
    assert main(["report", str(tmp_path / "run"), "--format", fmt]) == 0
    assert capsys.readouterr().out == en_out  # without --lang: the run's language


def test_report_command_rejects_what_is_not_a_report(tmp_path, capsys):
    (tmp_path / "report.json").write_text(json.dumps([1, 2]), encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a lorafair report" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_sizes_and_times_read_as_people_read_them():
    from lorafair.report.words import fmt_bytes, fmt_seconds

    assert [fmt_bytes(x) for x in (5.2e6, 999e6, 1.35e9, 6.2e9)] == ["5.2 MB", "999.0 MB", "1.35 GB", "6.20 GB"]
    assert [fmt_seconds(x) for x in (0.42, 12.34, 59.9, 131.0, 3600.0)] == [
        "0.42 s",
        "12.3 s",
        "59.9 s",
        "2.2 min",
        "60.0 min",
    ]
