"""report["diagnosis"] and report["training"] worded (report/words/diagnosis.py) and rendered: every kind has its
English and Chinese, each sentence cites its record's figures, the section shows in console, Markdown and HTML, and
the records validate against report.json's schema."""

from __future__ import annotations

import copy
import html as html_mod
import re

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from synthetic_report import make_report

from lorafair.data.run_metadata import RunMetadata
from lorafair.report import schema, words
from lorafair.report.build import add_diagnosis
from lorafair.report.html import render_html
from lorafair.report.render import render_console, render_markdown
from lorafair.report.words import diagnosis as diagnosis_words
from lorafair.report.words import en, zh

CHINESE = re.compile(r"[\u3400-\u9fff]")
NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _falling_run(steps: int = 100) -> RunMetadata:
    x = np.arange(1, steps + 1)
    history = [{"loss": float(2 * np.exp(-s / 60)), "step": int(s), "epoch": s / 25} for s in x]
    return RunMetadata.from_dict({"global_step": steps, "log_history": history, "metrics": {"eval": {"accuracy": 0.8}}})


def _firing(kind_set: str) -> dict:
    """A synthetic report on which every rule but one of each exclusive pair fires: "cross" (A1 cross-fitted, B - A1
    powered: a probe suffices) or "underpowered" (A1 on separate data, B - A1's MDE 9 pp)."""
    r = make_report(seed=11, bootstrap=100)
    b = r["variants"]["B"]["metrics"]["accuracy"]["value"]
    r["deltas"]["A1-A"]["accuracy"].update(value=0.05, ci=[0.02, 0.08], p_value=0.001)
    mde = 0.02 if kind_set == "cross" else 0.09
    r["deltas"]["B-A1"]["accuracy"].update(value=0.01, ci=[-0.03, 0.05], p_value=0.6, mde=mde, n_for_3pp=2545)
    layers = [
        {"layer": i, "cka": 0.9, "cosine": 0.9, "probe_accuracy": {"A": a, "B": None}}
        for i, a in enumerate([b - 0.1, b])
    ]
    weights = [
        {
            "module": f"model.layers.1.{m}",
            "layer": 1,
            "kind": m,
            "shape": [8, 8],
            "rank": 8,
            "scaling": 2.0,
            "delta_norm": 1.0,
            "delta_norm_ratio": 0.1,
            "effective_rank": k,
            "intruders": None,
        }
        for m, k in (("self_attn.q_proj", 2), ("self_attn.v_proj", 3))
    ]
    r["analysis"] = {"layers": layers, "weights": weights}
    r["beyond_task"] = {"lm": {"kl_mean": 0.42}}
    if kind_set == "cross":
        r["variants"]["A1"]["cross_fitted"] = True
        r["notes"].append({"kind": "probe_cross_fitted", "folds": 5, "examples": 300, "data": "data/test.csv"})
    add_diagnosis(r, _falling_run())
    return r


@pytest.fixture(scope="module")
def reports():
    return {name: _firing(name) for name in ("cross", "underpowered")}


def test_every_kind_fires_somewhere_and_validates(reports):
    kinds = {rec["kind"] for r in reports.values() for rec in r["diagnosis"]}
    absent = copy.deepcopy(reports["cross"])
    del absent["variants"]["A1"]
    add_diagnosis(absent, None)
    kinds |= {rec["kind"] for rec in absent["diagnosis"]}
    assert kinds == set(diagnosis_words.KINDS)
    records = Draft202012Validator({"$defs": schema.SCHEMA["$defs"], **schema.SCHEMA["$defs"]["diagnosis_record"]})
    for r in [*reports.values(), absent]:
        assert [list(records.iter_errors(rec)) for rec in r["diagnosis"]] == [[]] * len(r["diagnosis"])
        schema.validate({k: v for k, v in r.items() if k not in ("analysis", "beyond_task")})  # those: partial here


def test_every_kind_is_worded_in_both_languages_with_the_same_figures(reports):
    assert "diagnosis" in en.WORDS and en.WORDS["diagnosis"].keys() == zh.WORDS["diagnosis"].keys()
    records = [rec for r in reports.values() for rec in r["diagnosis"]] + [{"kind": "a1_absent", "reason": None}]
    records.append(
        {
            **records[0],
            "kind": "b_a1_underpowered",
            "value": 0.01,
            "ci": [-0.03, 0.05],
            "p_value": 0.6,
            "mde": None,
            "n": 300,
            "n_for_3pp": 2545,
        }
    )
    for rec in records:
        english, chinese = (diagnosis_words.diagnosis_sentence(rec, lang) for lang in ("en", "zh"))
        assert "{" not in english and "{" not in chinese and not english.startswith("{'kind'")
        assert CHINESE.search(chinese) and not CHINESE.search(english)
        assert sorted(NUMBER.findall(english)) == sorted(NUMBER.findall(chinese)), rec["kind"]


def test_each_sentence_cites_the_figure_that_fired_it(reports):
    said = {
        rec["kind"]: diagnosis_words.diagnosis_sentence(rec, "en") for r in reports.values() for rec in r["diagnosis"]
    }
    assert "A1 - A = +5.00 pp" in said["head_coadapted"] and "p = 0.001" in said["head_coadapted"]
    assert "B - A1 measures what LoRA added" in said["head_coadapted"]
    assert (
        "MDE 2.00 pp" in said["probe_suffices"]
        and "a linear probe on the frozen features does as well" in said["probe_suffices"]
    )
    assert "MDE 9.00 pp" in said["b_a1_underpowered"] and "about 2545 examples" in said["b_a1_underpowered"]
    assert "r = 3 holds 90% of ΔW's energy" in said["low_rank"] and "r = 8" in said["low_rank"]
    assert "the task is already linear at layer 1" in said["linear_at_layer"]
    assert "0.42 nats" in said["backbone_changed"] and "x1.522" in said["backbone_changed"]  # exp(0.42)
    assert "train longer" in said["train_longer"] and "steps 90-100" in said["train_longer"]
    assert "cross-fitted" in said["a1_cross_fitted"] and "5 folds" in said["a1_cross_fitted"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_diagnosis_section_shows_in_every_medium(reports, lang):
    r = reports["cross"]
    lines = words.diagnosis_lines(r, lang)
    assert lines[0].startswith("Training" if lang == "en" else "训练") and len(lines) == 1 + len(r["diagnosis"])
    heading = "Diagnosis" if lang == "en" else "诊断"
    console, md = render_console(r, lang), render_markdown(r, lang)
    page = html_mod.unescape(render_html(r, lang))
    assert f"======== {heading} ========" in console and f"## {heading}" in md and f"<h2>{heading}</h2>" in page
    for line in lines:
        assert f"- {line}" in console and f"- {line}".replace("|", "\\|") in md and f"<li>{line}</li>" in page
    assert md.index(f"## {heading}") < md.index("## " + words.table(lang, "headings")["summary"])


def test_no_section_without_a_diagnosis_and_a_line_when_nothing_fired():
    r = make_report(seed=2, bootstrap=100)
    assert words.diagnosis_lines(r, "en") == [] and "Diagnosis" not in render_console(r, "en")
    r["deltas"]["B-A1"]["accuracy"].update(value=0.09, ci=[0.02, 0.16], p_value=0.001)  # LoRA adds: nothing to say
    r["deltas"]["A1-A"]["accuracy"].update(value=0.0, ci=[-0.02, 0.02], p_value=1.0)
    add_diagnosis(r, None)
    assert r["diagnosis"] == []
    assert words.diagnosis_lines(r, "en") == [en.WORDS["diagnosis"]["nothing"]]
    assert words.diagnosis_lines(r, "zh") == [zh.WORDS["diagnosis"]["nothing"]]


def test_the_training_line_says_when_the_last_tenth_is_too_short():
    r = make_report(seed=2, bootstrap=100)
    history = [{"loss": 1.0 - 0.1 * s, "step": s, "epoch": 1.0} for s in range(1, 5)]
    add_diagnosis(r, RunMetadata.from_dict({"global_step": 4, "log_history": history}))
    line = words.training_line(r, "en")
    assert line.startswith("Training (lorafair_run.json): 4 steps, 1 epochs; loss 0.9000 -> 0.6000 (4 logged)")
    assert "1 logged losses, too few for a trend (at least 5)" in line
    schema.validate(r)
