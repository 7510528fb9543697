"""report["beyond_task"] (--ood-data) rendered: console, Markdown and HTML hold its numbers, in English and Chinese;
every reason and note record is worded in both languages. The numbers are formatted here by hand, not by lorafair."""

from __future__ import annotations

import base64
import html as html_mod
import io
import re

import matplotlib.image as mpimg
import pytest
from synthetic_report import make_report
from test_schema import _rendered_paths, declared

from lorafair.report import schema, words
from lorafair.report.html import render_html
from lorafair.report.render import render_console, render_markdown

CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")

LM = {
    "kl_mean": 0.0123456,
    "kl_per_token_quantiles": {"p50": 0.00811, "p90": 0.0297, "p99": 0.061, "max": 0.2345},
    "perplexity_base": 21.4567,
    "perplexity_lora": 23.9012,
    "nll_base": 3.066,
    "nll_lora": 3.174,
    "tokens": 5234,
    "lm_head": {"tensor": "model.embed_tokens.weight", "tied": True, "vocab_size": 49152},
}
OOD_LAYERS = [
    {"layer": 0, "cka": 1.0, "cosine": 1.0},
    {"layer": 1, "cka": 0.9731, "cosine": 0.9912},
    {"layer": 2, "cka": 0.8125, "cosine": 0.9034},
]
TASK_LAYERS = [
    {"layer": 0, "cka": 1.0, "cosine": 1.0, "probe_accuracy": {"A": 0.6, "B": 0.6}},
    {"layer": 1, "cka": 0.9512, "cosine": 0.9801, "probe_accuracy": {"A": 0.7, "B": 0.75}},
    {"layer": 2, "cka": 0.6542, "cosine": 0.8433, "probe_accuracy": {"A": 0.8, "B": 0.9}},
]
REASONS = [
    {"kind": "lm_skipped", "reason": code, "detail": detail}
    for code, detail in (
        ("encoder", None),
        ("no_lm_head", None),
        ("no_lm_head", "tied"),
        ("no_safetensors", None),
        ("logit_transform", "final_logit_softcapping"),
        ("shape", [100, 32]),
        ("no_next_token", None),
    )
] + [{"kind": "ood_skipped", "reason": code, "detail": None} for code in ("no_lora_variant", "distributed")]
NOTES = [
    {"kind": "ood_shared_trunk", "shared": 18, "total": 30},
    {"kind": "ood_shared_trunk", "shared": 0, "total": 30},
    {"kind": "ood_trunk_too_large", "bytes": 5 * 2**30},
    {"kind": "ood_cost", "seconds": {"tokenize": 0.1, "frozen_pass": 4.25, "lora_pass": 2.5, "total": 6.85}},
]


def _report(lang: str = "en", lm=LM, reason=None) -> dict:
    report = make_report(lang=lang)
    report["analysis"] = {
        "layers": TASK_LAYERS,
        "weights": [],
        "summary": {
            "first_layer_cka_below": {"threshold": 0.99, "layer": 1},
            "largest_probe_gain": {"layer": 2, "gain": 0.1},
            "top_modules_by_delta_norm_ratio": [],
            "total_intruders": None,
            "modules_with_intruders_counted": 0,
        },
        "pooling": "last",
        "probe": None,
        "notes": [],
        "seconds": {},
    }
    report["beyond_task"] = {
        "data": {"source": "builtin:oanc-en", "path": "/c/texts.jsonl", "n": 200, "n_available": 15721,
                 "dropped_rows": 0, "indices": list(range(200)), "tokens": 5434, "truncated": 3,
                 "token_ids_sha256": "ab" * 32},
        "pooling": "last",
        "layers": OOD_LAYERS,
        "lm": lm,
        "reason": reason,
        "notes": NOTES,
        "seconds": NOTES[-1]["seconds"],
    }  # fmt: skip
    return report


def _expected_numbers() -> list[str]:
    """The figures the section must show, formatted by hand."""
    q = LM["kl_per_token_quantiles"]
    change = (LM["perplexity_lora"] / LM["perplexity_base"] - 1) * 100
    return [
        "0.01235",  # mean KL, 4 significant digits
        "0.00811",
        "0.0297",
        "0.2345",
        f"{LM['perplexity_base']:.2f}",
        f"{LM['perplexity_lora']:.2f}",
        f"{change:+.1f}%",
        str(LM["tokens"]),
        "0.8125",  # the last layer's OOD CKA
        "0.6542",  # ... and the task's
        "0.9034",
        "15721",
        "5434",
    ] + [str(q["p50"])]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_console_and_markdown_hold_the_numbers(lang):
    report = _report(lang)
    heading = words.table(lang, "beyond_task")["heading"]
    for text in (render_console(report, lang), render_markdown(report, lang)):
        start = text.index(heading)
        section = text[start : text.index("\n\n", start + len(heading) + 20)]
        for number in _expected_numbers():
            assert number in section, (lang, number)
        assert "builtin:oanc-en" in section
        assert bool(CHINESE.search(section)) == (lang == "zh")
    console = render_console(report, lang)
    assert console.index(words.table(lang, "analysis")["heading"]) < console.index(heading)


def test_html_holds_the_numbers_the_plot_and_the_per_layer_table():
    page = render_html(_report("en"), "en")
    section = page[page.index('<section id="beyond_task">') :]
    section = section[: section.index("</section>")]
    text = html_mod.unescape(re.sub(r"<[^>]+>", " ", section))
    for number in _expected_numbers():
        assert number in text, number
    (png,) = re.findall(r'base64,([A-Za-z0-9+/=]+)"', section)
    image = mpimg.imread(io.BytesIO(base64.b64decode(png, validate=True)), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    rows = re.findall(r"<tr>(.*?)</tr>", section)[1:]  # the per-layer table, header left out
    cells = [[html_mod.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]
    assert cells == [
        [str(o["layer"]), f"{t['cka']:.4f}", f"{o['cka']:.4f}", f"{t['cosine']:.4f}", f"{o['cosine']:.4f}"]
        for t, o in zip(TASK_LAYERS, OOD_LAYERS)
    ]


def test_without_lm_the_reason_is_stated_and_without_ood_nothing_is_shown():
    reason = {"kind": "lm_skipped", "reason": "encoder", "detail": None}
    report = _report("en", lm=None, reason=reason)
    console = render_console(report, "en")
    assert words.reason_sentence(reason, "en") in console and "nats per token" not in console
    del report["beyond_task"]
    assert words.table("en", "beyond_task")["heading"] not in render_console(report, "en")
    assert '<section id="beyond_task">' not in render_html(report, "en")


@pytest.mark.parametrize(
    "record, word",
    [(r, words.reason_sentence) for r in REASONS] + [(n, words.beyond_note_sentence) for n in NOTES],
    ids=lambda x: f"{x.get('kind')}-{x.get('reason', x.get('shared', ''))}" if isinstance(x, dict) else "",
)
def test_every_reason_and_note_is_worded_in_both_languages(record, word):
    english, chinese = word(record, "en"), word(record, "zh")
    assert "{" not in english and "{" not in chinese and english != chinese
    assert not CHINESE.search(english) and CHINESE.search(chinese)
    for value in (record.get("detail"), record.get("total")):
        if value not in (None, "tied"):
            assert str(value) in english and str(value) in chinese


def test_forward_pass_kinds_are_worded():
    for kind in ("ood_frozen", "ood_lora"):
        entry = {"kind": kind, "examples": 200, "seconds": 1.0}
        english, chinese = words.pass_sentence(entry, "en"), words.pass_sentence(entry, "zh")
        assert "out-of-domain" in english and "域外" in chinese and "200" in english and "200" in chinese


@pytest.mark.parametrize("with_lm", [True, False])
def test_the_section_is_declared_by_the_schema_and_renderers_read_only_declared_keys(with_lm):
    reason = {"kind": "lm_skipped", "reason": "no_lm_head", "detail": "tied"}
    report = _report("en") if with_lm else _report("en", lm=None, reason=reason)
    schema.validate(report)
    seen = _rendered_paths(report)
    assert sorted(map(str, (p for p in seen if not declared(p, report)))) == []
    read = [
        ("beyond_task", "lm", "kl_mean"),
        ("beyond_task", "layers", 2, "cka"),
        ("beyond_task", "notes", 0, "shared"),
    ]
    if not with_lm:
        read = [("beyond_task", "reason", "reason"), ("beyond_task", "reason", "detail")]
    assert [p for p in read if p not in seen] == []
    report["beyond_task"]["lm_extra"] = 1  # an undeclared key fails
    assert any("lm_extra" in e for e in schema.errors(report))
