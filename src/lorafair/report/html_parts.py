"""The pieces every part of the HTML page is made of: tables, sections, key-value tables, images, the style.

A leaf of the HTML renderer (html_answer, html_setup and html build on it). Every string shown is escaped
here or by the caller with `tables.esc`; words come from report/words, numbers are formatted there too.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from lorafair.core.names import VARIANT_IDS
from lorafair.report import words
from lorafair.report.tables import Section, Table, esc, ordered


@dataclass
class Page:
    """What every part of one page reads: the report, its language and the words of the page in it."""

    report: dict
    lang: str
    s: dict  # words.table(lang, "page")
    level: str  # "95%"
    positive: str | None  # binary: the positive class
    variants: dict = field(default_factory=dict)  # variant id -> block, in report order
    labels: list = field(default_factory=list)

    @classmethod
    def of(cls, report: dict, lang: str | None) -> Page:
        lang = words.lang_of(report, lang)
        raw = report.get("variants") or {}
        return cls(
            report=report,
            lang=lang,
            s=words.table(lang, "page"),
            level=words.ci_level(report),
            positive=words.positive_label(report),
            variants={k: raw[k] for k in ordered(raw, VARIANT_IDS) if isinstance(raw[k], dict)},
            labels=list((report.get("data") or {}).get("labels") or []),
        )


def html_table(table: Table) -> str:
    """A `tables.Table` as HTML: numeric columns right-aligned, significant rows marked."""
    numeric = table.numeric or [False] * len(table.headers)
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    rows = []
    for i, row in enumerate(table.rows):
        mark = table.marks[i] if i < len(table.marks) else None
        cells = "".join(f"<td{' class=num' if numeric[j] else ''}>{_cell(c)}</td>" for j, c in enumerate(row))
        rows.append(f"<tr{f' class={mark}' if mark else ''}>{cells}</tr>")
    after = "".join(f'<p class="lede">{esc(line)}</p>' for line in table.after)
    title = f"<h3>{esc(table.title)}</h3>" if table.title else ""
    return f'{title}<div class="wide"><table><tr>{head}</tr>{"".join(rows)}</table></div>{after}'


def _cell(cell) -> str:
    if isinstance(cell, tuple):
        return f'{esc(cell[0])}<span class="sub">{esc(" ".join(cell[1:]))}</span>'
    return esc(cell)


def html_section(section: Section | None, css: str = "lines") -> str:
    """Any `tables.Section` (tables, then bullet lines) under its heading; "" for None."""
    if section is None:
        return ""
    body = "".join(html_table(t) for t in section.tables)
    if section.lines:
        body += f'<ul class="{css}">' + "".join(f"<li>{esc(line)}</li>" for line in section.lines) + "</ul>"
    return f'<section id="{esc(section.key)}"><h2>{esc(section.title)}</h2>{body}</section>'


def html_list(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"


def kv_table(rows: list[tuple[str, str]]) -> str:
    """(label, already escaped HTML) pairs as a two-column table."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="wide"><table>{body}</table></div>'


def png_img(png: bytes | None, alt: str, missing: str) -> str:
    if png is None:
        return f'<p class="lede">{esc(missing)}</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def plain(key: str, value: object) -> str:
    """A setup value for people: sizes in MB/GB, times in s/min, lists joined."""
    if key.endswith("_bytes") and isinstance(value, (int, float)):
        return words.fmt_bytes(value)
    if key.endswith("_seconds") and isinstance(value, (int, float)):
        return words.fmt_seconds(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return "—" if value is None else str(value)


CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
margin:0 auto;max-width:1240px;padding:.8em 1.2em 2em;color:#1f2328;line-height:1.4;font-size:15px}
h1{font-size:1.35em;margin:.2em 0 .1em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #d8dee4;
padding-bottom:.2em}h3{font-size:.98em;margin:.7em 0 .25em}
.lede{color:#57606a;font-size:.86em;margin:.1em 0 .6em}
.answer{display:grid;grid-template-columns:minmax(0,1.15fr) minmax(0,1fr);gap:1.2em;align-items:start}
.answer h2{margin-top:.3em}
ul.verdicts{list-style:none;margin:0;padding:0}
ul.verdicts li{margin:.22em 0;padding:.28em .55em;border-left:4px solid #8c959f;background:#f6f8fa;border-radius:3px;
font-size:.92em}
ul.verdicts li.better{border-color:#1a7f37;background:#dafbe1}ul.verdicts li.worse{border-color:#cf222e;background:#ffebe9}
.sym{display:inline-block;width:1.1em}.better .sym{color:#1a7f37}.worse .sym{color:#cf222e}.ns .sym{color:#8c959f}
.proof{font-size:.84em;margin:.6em 0 0}.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:bold}
figure{margin:0}figure img{width:100%;height:auto;border:1px solid #eaeef2;border-radius:4px}
figcaption{font-size:.8em;color:#57606a;margin-top:.2em}
.wide{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.3em 0 .8em;font-size:.86em}
th,td{border:1px solid #d8dee4;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.better td{background:#effbf1}tr.worse td{background:#fff3f2}.sub{display:block;font-size:.85em;color:#57606a}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:1em}
ul.lines li{margin:.2em 0}ul.checks li{color:#9a6700}
details{margin:1em 0;border:1px solid #d8dee4;border-radius:4px;padding:.3em .8em}
summary{cursor:pointer;font-weight:600;padding:.2em 0}code{font-size:.88em;word-break:break-all}
footer{margin-top:2em;font-size:.78em;color:#8c959f}
@media (max-width:800px){.answer{grid-template-columns:1fr}body{padding:.5em .7em;font-size:14px}}
"""
