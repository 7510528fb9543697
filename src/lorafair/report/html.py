"""Self-contained HTML report rendered from a report.json dict: the answer first, the setup last.

The first screen holds the verdict (html_answer.py): one sentence per headline delta (B - A, B - A1,
A1 - A on accuracy, F1 and AUC) with its CI and p, coloured by significance, beside the delta forest plot,
then a sweep's Holm and across-seed statements. Then the metric tables (built once in `render`, shared with
the console and Markdown), the layer analysis where present, checks, speed and plots; setup, environment,
hashes, forward passes and configuration come last, collapsed (html_setup.py). Every sentence is worded by
report/words. The page needs no network: plots are base64 PNG data URIs, CSS is inline, there is no script,
and a Content-Security-Policy forbids loading anything else.

    from lorafair.report.html import write_html
    write_html(json.load(open("out/report.json")), "out/report.html", lang="zh")
"""

from __future__ import annotations

import os

from lorafair.core import atomic
from lorafair.core.version import VERSION
from lorafair.report import analysis_sections as render_analysis
from lorafair.report import beyond_sections as render_beyond
from lorafair.report import flips_sections as render_flips
from lorafair.report import html_answer, html_setup, plots
from lorafair.report import render as rr
from lorafair.report import sweep_sections as render_sweep
from lorafair.report.html_parts import CSS, Page, html_section, html_table, png_img
from lorafair.report.tables import Table, esc

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def metrics(page: Page) -> str:
    table = rr.metrics_table(page.report, page.lang, rr.ALL_METRICS, with_ci=True)
    return f'<section id="metrics"><h2>{esc(page.s["metrics"])}</h2>{html_table(table)}</section>'


def gains(page: Page) -> str:
    tables = [
        html_table(Table(t.headers, t.rows, title=s.title, numeric=t.numeric, marks=t.marks))
        for s in rr.gain_sections(page.report, page.lang)
        for t in s.tables
    ]
    return f'<section id="gains"><h2>{esc(page.s["gains"])}</h2>{"".join(tables)}</section>' if tables else ""


def figures(page: Page) -> str:
    parts = []
    for key, make in (
        ("roc", lambda: plots.roc_png(page.variants, page.labels)),
        ("reliability", lambda: plots.reliability_png(page.variants)),
        ("confusion", lambda: plots.confusion_png(page.variants, page.labels)),
    ):
        img = png_img(make(), page.s[key], page.s["not_available"])
        parts.append(f"<figure><h3>{esc(page.s[key])}</h3>{img}</figure>")
    return f'<section id="plots"><h2>{esc(page.s["plots"])}</h2><div class="grid">{"".join(parts)}</div></section>'


def analysis(page: Page) -> str:
    """The layer/weight analysis with its plots (analysis_sections), or its lines alone when it has no layers."""
    block = page.report.get("analysis") or {}
    if block.get("layers") or block.get("weights"):
        return render_analysis.html_section(page.report, page.lang)  # with its plots
    return html_section(rr.analysis_section(page.report, page.lang))


def body(page: Page) -> str:
    report, lang = page.report, page.lang
    footer = page.s["footer"].format(schema=report.get("schema_version", "?"), version=VERSION)
    return "".join(
        (
            f"<h1>{esc(page.s['title'])}</h1>",
            html_answer.answer(page),
            metrics(page),
            html_section(rr.diagnosis_section(report, lang), "lines diagnosis"),
            html_section(rr.checks_section(report, lang), "lines checks"),
            gains(page),
            render_flips.html(report, lang),
            render_sweep.html(report, lang),
            analysis(page),
            render_beyond.html_section(report, lang),
            html_section(rr.speed_section(report, lang)),
            figures(page),
            html_setup.setup(page),
            html_setup.config(page),
            f"<footer>{esc(footer)}</footer>",
        )
    )


def render_html(report: dict, lang: str | None = None) -> str:
    """The whole report as one self-contained HTML page (str), in `lang` (default: the run's language)."""
    page = Page.of(report, lang)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{"zh-CN" if page.lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(page.s['title'])}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body(page)}\n</body></html>\n"
    )


def write_html(report: dict, path: str | os.PathLike, lang: str | None = None) -> None:
    """Render `report` and write it to `path` atomically (temp file in the same folder + os.replace)."""
    atomic.write_text(path, render_html(report, lang))
