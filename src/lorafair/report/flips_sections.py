"""Renders report["flips"]: which examples changed between B and each reference, and the accuracy slices.

The console shows the tables and the flip-rate lines (`section`); Markdown adds the per-class precision/recall/F1
table (`prf_table`, read from report["variants"][v]["per_class"]) and the most fixed and broken texts
(`text_tables`); HTML the same, the texts in collapsed <details>. Nothing is computed here.
"""

from __future__ import annotations

from lorafair.core.names import VARIANT_IDS
from lorafair.report import words
from lorafair.report.html_parts import html_table
from lorafair.report.tables import Section, Table, esc
from lorafair.report.words import flips as fw

SLICE_VARIANTS = tuple(v for v in VARIANT_IDS if v in ("B", "A", "A1"))


def paired_table(report: dict, lang: str) -> Table:
    """One row per pair: the four cells of the paired 2x2 table and the negative flip rate with its CI."""
    headers = fw.table_headers(report, lang)["paired"]
    rows = []
    for key, pair in report["flips"]["pairs"].items():
        t, nfr = pair["table"], pair["negative_flip_rate"]
        rate = (words.fmt_percent(nfr["value"]), fw.percent_ci(nfr["ci"]))
        cells = [str(t[c]) for c in ("both_right", "only_new_right", "only_reference_right", "both_wrong")]
        rows.append([fw.pair_name(key), *cells, rate])
    return Table(headers, rows, numeric=[False] + [True] * 5)


def slice_table(report: dict, lang: str, kind: str) -> Table | None:
    """Accuracy of A, A1, B and the B deltas per true class ("by_class") or per token quartile ("by_length")."""
    rows_in = (report["flips"].get("slices") or {}).get(kind)
    if not rows_in:
        return None
    text, heads = words.table(lang, "flips"), fw.table_headers(report, lang)
    variants = [v for v in SLICE_VARIANTS if v in rows_in[0]["accuracy"]]
    pairs = list(rows_in[0]["deltas"])
    first = [text["class"]] if kind == "by_class" else [text["quartile"], text["tokens"]]
    headers = first + [text["n"]] + [heads["accuracy_of"](v) for v in variants] + [heads["delta_pp"](p) for p in pairs]
    rows = []
    for r in rows_in:
        lead = [r["label"]] if kind == "by_class" else [f"Q{r['quartile']}", _token_range(r)]
        values = [fw.slice_cell(r["accuracy"].get(v)) for v in variants]
        deltas = [fw.slice_cell(r["deltas"].get(p), delta=True) for p in pairs]
        rows.append([*lead, str(r["n"]), *values, *deltas])
    return Table(headers, rows, title=text[kind], numeric=[False] * len(first) + [True] * (len(headers) - len(first)))


def _token_range(row: dict) -> str:
    if row.get("min_tokens") is None:
        return "-"
    return f"{row['min_tokens']}-{row['max_tokens']}"


def section(report: dict, lang: str) -> Section | None:
    """The console/Markdown section: the paired table, the slices and the flip-rate lines; None without flips."""
    if not (report.get("flips") or {}).get("pairs"):
        return None
    tables = [paired_table(report, lang), slice_table(report, lang, "by_class"), slice_table(report, lang, "by_length")]
    return Section(
        "flips",
        words.table(lang, "flips")["heading"],
        tables=[t for t in tables if t is not None],
        lines=fw.flip_lines(report, lang),
    )


def prf_table(report: dict, lang: str) -> Table | None:
    """Per class: support and precision / recall / F1 of B, A and A1 (report["variants"][v]["per_class"])."""
    variants = {v: b for v, b in (report.get("variants") or {}).items() if v in SLICE_VARIANTS and b.get("per_class")}
    if not variants or not report.get("flips"):
        return None
    text, heads = words.table(lang, "flips"), fw.table_headers(report, lang)
    order = [v for v in SLICE_VARIANTS if v in variants]
    headers = [text["class"], text["support"]] + [heads["prf_of"](v) for v in order]
    first = variants[order[0]]["per_class"]
    rows = [
        [c["name"], str(c["support"])]
        + [
            " / ".join(words.num(variants[v]["per_class"][i].get(m), 2) for m in ("precision", "recall", "f1"))
            for v in order
        ]
        for i, c in enumerate(first)
    ]
    return Table(headers, rows, title=text["prf"], numeric=[False] + [True] * (len(headers) - 1))


def text_tables(report: dict, lang: str) -> list[Table]:
    """Per pair and direction: the most changed examples with both probabilities of the true class and the text."""
    block, text = report.get("flips") or {}, words.table(lang, "flips")
    out = []
    for key, pair in (block.get("pairs") or {}).items():
        headers = [
            text["index"],
            text["label"],
            text["p_ref"].format(ref=pair["reference"]),
            text["p_new"].format(new=pair["new"]),
            text["change"],
            text["text"],
        ]
        for direction in ("fixed", "broken"):
            rows = [_example_row(e, text) for e in pair[direction]]
            if rows:
                title = fw.examples_title(key, pair, direction, lang)
                out.append(Table(headers, rows, title=title, numeric=[True, False, True, True, True, False]))
    return out


def _example_row(example: dict, text: dict) -> list[str]:
    body = example["text"]
    body = text["no_text"] if body is None else body + ("…" if example["text_truncated"] else "")
    change = example["p_true_new"] - example["p_true_reference"]
    return [
        str(example["index"]),
        example["label"],
        words.num(example["p_true_reference"]),
        words.num(example["p_true_new"]),
        words.signed(change),
        body,
    ]


def markdown_extra(report: dict, lang: str) -> list[Table]:
    """What Markdown shows beyond the console: the per-class P/R/F1 and the changed texts."""
    prf = prf_table(report, lang)
    return ([prf] if prf is not None else []) + text_tables(report, lang)


def html(report: dict, lang: str) -> str:
    """The section as HTML: the tables and lines, P/R/F1, then the texts collapsed; "" without flips."""
    sec = section(report, lang)
    if sec is None:
        return ""
    parts = [f"<h2>{esc(sec.title)}</h2>", *(html_table(t) for t in sec.tables)]
    parts.append('<ul class="lines">' + "".join(f"<li>{esc(line)}</li>" for line in sec.lines) + "</ul>")
    prf = prf_table(report, lang)
    if prf is not None:
        parts.append(html_table(prf))
    for t in text_tables(report, lang):
        inner = html_table(Table(t.headers, t.rows, numeric=t.numeric))
        parts.append(f"<details><summary>{esc(t.title)}</summary>{inner}</details>")
    parts.append(f"<p>{esc(words.table(lang, 'flips')['texts_note'].format(chars=report['flips']['text_chars']))}</p>")
    return f'<section id="flips">{"".join(parts)}</section>'
