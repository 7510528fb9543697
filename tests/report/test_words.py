"""report/words: one home for every English and Chinese word; records worded in both; schema-1 reports still render.

The schema-1 files in tests/report/schema1/ were written by lorafair before statements became records (a
synthetic compare and a real seed sweep); their stored English sentences are the reference the records of
today must reproduce word for word.
"""

from __future__ import annotations

import html as html_mod
import json
import re
import string
from pathlib import Path

import pytest
from synthetic_report import add_issue8_keys, make_report

from lorafair.report import words
from lorafair.report.html import render_html
from lorafair.report.render import render_console, render_markdown
from lorafair.report.words import en, zh

SRC = Path(__file__).resolve().parents[2] / "src" / "lorafair"
SCHEMA1 = Path(__file__).resolve().parent / "schema1"
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # CJK ideographs and full-width punctuation
# Not report text: sample strings the tokenizer's conformance check encodes (assets/qwen_tokenizer.py).
NOT_WORDS = {"assets/qwen_tokenizer.py"}


def _fields(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def test_no_module_outside_words_holds_chinese():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("report/words/") or relative in NOT_WORDS:
            continue
        offenders += [
            f"{relative}:{i}" for i, line in enumerate(path.read_text("utf-8").splitlines(), 1) if CHINESE.search(line)
        ]
    assert offenders == []
    assert CHINESE.search((SRC / "report" / "words" / "zh.py").read_text("utf-8"))  # the check can find some


def test_english_and_chinese_have_the_same_words_and_placeholders():
    assert en.WORDS.keys() == zh.WORDS.keys()
    for part, table in en.WORDS.items():
        assert table.keys() == zh.WORDS[part].keys(), part
        for key, template in table.items():
            assert _fields(template) == _fields(zh.WORDS[part][key]), (part, key)


NOTES = [
    {"kind": "probe_data", "origin": "option", "source": "probe.csv", "examples": 36},
    {"kind": "probe_data", "origin": "recorded", "source": "train.csv", "examples": 20},
    {"kind": "probe_training_rows", "examples": 36, "trained": 36, "source": "train.csv"},
    {"kind": "probe_training_rows", "examples": 30, "trained": 36, "source": "train.csv"},
    {"kind": "probe_eval_rest", "examples": 18, "data": "test.csv"},
    {"kind": "probe_skipped"},
    {"kind": "probe_fit", "C": 0.25, "cv_accuracy": 0.8125},
    {"kind": "shared_trunk", "shared": 2, "total": 4, "reason": "lowest", "detail": None},
    {"kind": "shared_trunk", "shared": 0, "total": 4, "reason": "outside", "detail": "model.embed_tokens"},
    {"kind": "shared_trunk", "shared": 0, "total": 4, "reason": "cached_without_trunk", "detail": 1},
    {"kind": "trunk_too_large", "bytes": 3 * 2**30},
    {"kind": "cache_off", "folder": "/c/x", "variable": "$LORAFAIR_CACHE", "error": "Not a directory"},
    {"kind": "cache_write_failed", "folder": "/c/x", "error": "No space left on device"},
    {"kind": "sweep_member", "index": 2, "count": 3},
    {"kind": "sweep_a_from_features"},
    {"kind": "sweep_base_restored"},
    {"kind": "no_seed_set"},
]
ANALYSIS_NOTES = [
    {"kind": "analysis_layers", "layers": 3, "examples": 48, "dim": 64, "pooling": "last", "bytes": 73728},
    {"kind": "analysis_probes", "C": 1.0, "examples": 20, "probe_examples": 40},
    {"kind": "analysis_probes", "C": 1.0, "examples": 40, "probe_examples": 40},
    {"kind": "analysis_probes_off"},
    {"kind": "analysis_cost", "seconds": {"weights": 0.5, "layer_metrics_and_probes": 1.25, "total": 1.75}},
    {"kind": "analysis_weights", "modules": 8},
    {"kind": "analysis_dora"},
    {"kind": "analysis_module_missing", "module": "model.layers.0.mlp"},
    {"kind": "analysis_intruders_skipped", "skipped": 2, "modules": 8, "max_dim": 20},
    {"kind": "analysis_lora_probe_pass", "examples": 40, "seconds": 0.75},
]
PASSES = [
    {"kind": "frozen_eval", "examples": 48, "cached": True, "seconds": 0.0},
    {"kind": "frozen_probe", "examples": 40, "cached": False, "seconds": 0.1},
    {"kind": "lora_unmerged", "examples": 16, "seconds": 0.1, "adapter": "seed-0"},
    {"kind": "lora_eval", "examples": 48, "shared_layers": 1, "total_layers": 3, "seconds": 0.2},
]


@pytest.mark.parametrize(
    "record, word",
    [(n, words.note_sentence) for n in NOTES]
    + [(n, words.analysis_note_sentence) for n in ANALYSIS_NOTES]
    + [(p, words.pass_sentence) for p in PASSES],
    ids=lambda x: x.get("kind") if isinstance(x, dict) else "",
)
def test_every_record_kind_is_worded_in_both_languages(record, word):
    english, chinese = word(record, "en"), word(record, "zh")
    assert "{" not in english and "{" not in chinese and english != chinese
    assert not CHINESE.search(english) and CHINESE.search(chinese)
    if "examples" in record:  # the number of examples a record carries is in both sentences
        assert str(record["examples"]) in english and str(record["examples"]) in chinese


def test_notes_keep_the_english_they_had_before_records():
    assert words.note_sentence(NOTES[7], "en") == (
        "B's pass: layers 0-1 of 4 shared with the frozen pass (the adapter's lowest LoRA module is in layer 2)"
    )
    assert words.note_sentence(NOTES[10], "en") == "shared trunk off: its recorded output would take 3.0 GiB"
    assert words.pass_sentence(PASSES[3], "en") == (
        "forward pass: LoRA merged model, evaluation set (B): layers 1-2 only, 0-0 taken from the frozen pass "
        "(shared trunk) (48 examples)"
    )
    assert words.analysis_note_sentence(ANALYSIS_NOTES[0], "en") == (
        "layers: hidden_states[0..2] (0 = embeddings) of A and B on the 48 evaluation examples, pooled at the last "
        "non-pad token (where the decoder's classifier pools); held in memory as 2 x 3 x 48 x 64 float32 (0 MiB)"
    )


@pytest.mark.parametrize("name", ["compare", "sweep"])
def test_schema_1_reports_word_their_records_as_they_were_stored(name):
    report = json.loads((SCHEMA1 / f"{name}.json").read_text(encoding="utf-8"))
    assert report["schema_version"] == 1
    assert words.conclusion_lines(report, "en") == report["conclusion"]  # rebuilt records, the same English
    assert words.check_lines(report, "en") == report["checks"]
    zh = words.conclusion_lines(report, "zh")
    assert len(zh) == len(report["conclusion"]) and all(CHINESE.search(line) for line in zh)
    for english, chinese in zip(report["conclusion"], zh):
        assert re.findall(r"[+-]?\d+\.\d+", english) == re.findall(r"[+-]?\d+\.\d+", chinese)


@pytest.mark.parametrize("name", ["compare", "sweep"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_schema_1_reports_render_in_every_medium(name, lang):
    report = json.loads((SCHEMA1 / f"{name}.json").read_text(encoding="utf-8"))
    statements = words.conclusion_lines(report, lang)
    console, md = render_console(report, lang), render_markdown(report, lang)
    page = html_mod.unescape(render_html(report, lang))
    for line in statements:
        assert f"- {line}" in console and "- " + line.replace("|", "\\|") in md  # Markdown escapes |
    positive, level = words.positive_label(report), words.ci_level(report)
    for record in words.records_of(report):  # the page: the verdicts beside their delta, the head proof apart
        if record["kind"] != "same_head":
            assert words.sentence(record, lang, positive=positive, level=level, with_delta=False) in page
    for note in report["notes"]:  # schema 1: sentences, shown as they are
        assert f"- {note}" in console
    for entry in report["forward_passes"]:
        assert entry["what"] in console


def test_the_english_for_scripts_is_what_every_renderer_says(tmp_path):
    report = add_issue8_keys(make_report(seed=5))
    console = render_console(report, "en")
    block = console[console.index("======== Conclusion") :].split("\n\n")[0].splitlines()[1:]
    assert [line[2:] for line in block] == report["conclusion"]
    checks = console[console.index("======== Checks") :].split("\n\n")[0].splitlines()[1:]
    assert [line[2:] for line in checks] == report["checks"]
    assert report["schema_version"] == 2 and all("kind" in r for r in report["conclusion_records"])


def test_held_out_rows_name_ten_rows_then_an_ellipsis():
    report = make_report(n=20)
    held = {"from": "data/train.csv", "path": "/d/train.csv", "sha256": "ab" * 32, "n": 15}
    report["data"]["held_out"] = {**held, "rows": list(range(100, 115)), "evaluated_rows": [114, *range(100, 112)]}
    assert words.held_out_lines(report, "en") == [
        "evaluation rows: 13 of the 15 rows held out of data/train.csv when the adapter was trained "
        "(rows 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, …, counted from 0)"
    ]
    assert words.held_out_lines(report, "zh") == [
        "评估行：训练适配器时从 data/train.csv 留出的 15 行中的 13 行（行号 100, 101, 102, 103, 104, 105, 106, 107, "
        "108, 109, …，从 0 起）"
    ]
    del report["data"]["held_out"]
    assert words.held_out_lines(report, "en") == [] and words.held_out_what(report, "zh") is None
