"""The report's tables and sections built once as data, then formatted for the console and Markdown.

Each section builder takes the report dict and a language and returns a `Section` (or None when the
report holds nothing for it); `html.py` renders the same sections. Nothing is computed here:
every number is read from report.json and only formatted.

    lorafair report outputs/compare --lang zh --format md
"""

from __future__ import annotations

import unicodedata

from lorafair.core.names import DELTA_KEYS as DELTA_ORDER
from lorafair.core.names import METRIC_NAMES as ALL_METRICS
from lorafair.core.names import SUMMARY_METRICS
from lorafair.core.names import VARIANT_IDS as VARIANT_ORDER
from lorafair.report import flips_sections as render_flips
from lorafair.report import sweep_sections as render_sweep
from lorafair.report import words as rt
from lorafair.report.tables import Section, Table, ordered
from lorafair.report.words import speed_dtype
from lorafair.stats import verdicts


def headings(lang: str) -> dict:
    return rt.table(lang, "headings")


def p_text(entry: dict, lang: str) -> str:
    if entry.get("p_value") is None:
        return "-"
    p = rt.fmt_p(entry["p_value"]).removeprefix("p = ").removeprefix("p ")
    return f"{p} ({rt.test_name(entry.get('test'), lang)})"


def metric_cell(entry: dict | None, with_ci: bool):
    """A metric's value; with_ci: (value, "[lo, hi]") so that HTML can set the interval below the value."""
    if not entry or entry.get("value") is None:
        reason = (entry or {}).get("reason")
        return ("n/a", f"({reason})") if reason and with_ci else "n/a"
    if with_ci and entry.get("ci"):
        return (f"{entry['value']:.4f}", rt.ci_text(entry["ci"]))
    return f"{entry['value']:.4f}"


def cell_text(cell) -> str:
    """A cell is a string, or (main, secondary) — e.g. a value and its CI — joined by a space in plain text."""
    return " ".join(cell) if isinstance(cell, tuple) else str(cell)


def _variants(report: dict) -> dict:
    raw = report.get("variants") or {}
    return {k: raw[k] for k in ordered(raw, VARIANT_ORDER)}


# -- sections (each: report, lang -> Section | None) ------------------------------------------------------
def metrics_table(report: dict, lang: str, metrics=SUMMARY_METRICS, with_ci: bool = False) -> Table:
    """One row per variant, one column per metric (the seed's summary table)."""
    h, positive = headings(lang), rt.positive_label(report)
    rows = [
        [rt.variant_name(v, b, lang), *(metric_cell((b.get("metrics") or {}).get(m), with_ci) for m in metrics)]
        for v, b in _variants(report).items()
    ]
    return Table(
        [h["model"], *(rt.metric_label(m, lang, positive) for m in metrics)],
        rows,
        numeric=[False, *([True] * len(metrics))],
    )


def summary_section(report: dict, lang: str) -> Section:
    return Section("summary", headings(lang)["summary"], [metrics_table(report, lang)])


def gain_table(report: dict, key: str, lang: str) -> Table:
    """The seed's analysis table for one delta: metric, reference, LoRA, gains, CI and p."""
    h, variants, positive = headings(lang), report["variants"], rt.positive_label(report)
    new, ref = key.split("-")
    rows, marks = [], []
    for m in ordered(report["deltas"][key], ALL_METRICS):
        e = report["deltas"][key][m]
        rows.append(
            [
                rt.metric_label(m, lang, positive),
                rt.num(variants[ref]["metrics"][m]["value"]),
                rt.num(variants[new]["metrics"][m]["value"]),
                rt.signed(e["value"]),
                rt.pct(e.get("relative")),
                rt.ci_text(e.get("ci"), sign=True),
                p_text(e, lang),
            ]
        )
        marks.append(significance_mark(e, report, m))
    title = h["gain_title"].format(
        analysis=h["analysis"],
        new=rt.variant_name(new, variants[new], lang),
        ref=rt.variant_name(ref, variants[ref], lang),
        key=key,
    )
    headers = [
        h["metric"],
        h["reference"],
        rt.variant_name(new, variants[new], lang),
        h["abs"],
        h["rel"],
        f"{rt.ci_level(report)} {h['ci']}",
        h["p"],
    ]
    return Table(headers, rows, title=title, numeric=[False, True, True, True, True, True, False], marks=marks)


def significance_mark(entry: dict, report: dict, metric: str = "accuracy") -> str | None:
    """'better' / 'worse' when the delta is significant, read in the metric's direction (stats/verdicts)."""
    return verdicts.mark(entry, metric, (report.get("config") or {}).get("alpha", 0.05))


def gain_sections(report: dict, lang: str) -> list[Section]:
    """One section per delta, each holding its analysis table."""
    out = []
    for key in ordered(report.get("deltas") or {}, DELTA_ORDER):
        table = gain_table(report, key, lang)
        title, table.title = table.title, ""
        out.append(Section(f"gain-{key}", title, [table]))
    return out


def analysis_section(report: dict, lang: str) -> Section | None:
    """ "Where LoRA changed the features" (report["analysis"], DESIGN §9): after the metric tables, before the
    plots in every medium; None when the run made no analysis."""
    lines = rt.analysis_lines(report, lang)
    if not lines:
        return None
    return Section(
        "analysis", rt.table(lang, "analysis")["heading"], lines=lines + rt.analysis_note_lines(report, lang)
    )


def beyond_task_section(report: dict, lang: str) -> Section | None:
    """ "What LoRA changed beyond the task" (report["beyond_task"], --ood-data), after the analysis; None without it."""
    lines = rt.beyond_task_lines(report, lang)
    if not lines:
        return None
    return Section(
        "beyond_task", rt.table(lang, "beyond_task")["heading"], lines=lines + rt.beyond_note_lines(report, lang)
    )


def diagnosis_section(report: dict, lang: str) -> Section | None:
    """ "Diagnosis": what to try next, from the evidence (report["diagnosis"], report["training"]); None without."""
    lines = rt.diagnosis_lines(report, lang)
    return Section("diagnosis", rt.table(lang, "diagnosis")["heading"], lines=lines) if lines else None


def conclusion_section(report: dict, lang: str) -> Section:
    return Section("conclusion", headings(lang)["conclusion"], lines=rt.conclusion_lines(report, lang))


def speed_table(report: dict, lang: str) -> Table | None:
    """QPS, tokens/s, batch latency, pass time and (where measured, i.e. on GPU) peak memory per timed variant."""
    h = headings(lang)
    timed = [(v, b) for v, b in _variants(report).items() if b.get("speed")]
    if not timed:
        return None
    with_memory = any(b["speed"].get("peak_memory_bytes") is not None for _, b in timed)
    rows = [
        [
            rt.variant_name(v, b, lang),
            rt.num(s.get("qps"), 1),
            rt.num(s.get("tokens_per_s"), 0),
            rt.num(s.get("latency_ms_p50"), 1),
            rt.num(s.get("latency_ms_p95"), 1),
            rt.fmt_seconds(s.get("seconds")),
            *([rt.fmt_bytes(s.get("peak_memory_bytes"))] if with_memory else []),
        ]
        for v, b in timed
        for s in [b["speed"]]
    ]
    after = []
    if report.get("speed_difference") is not None:
        after.append(f"{h['speed_diff']}: {rt.fmt_percent(report['speed_difference'], signed=True)}")
    after += speed_dtype.speed_lines(report, lang)
    dtype = speed_dtype.dtype_line(report.get("environment") or {}, lang)
    after += [dtype] if dtype else []
    headers = [h["model"], h["qps"], h["tps"], h["p50"], h["p95"], h["time"], *([h["memory"]] if with_memory else [])]
    return Table(headers, rows, numeric=[False, *([True] * (len(headers) - 1))], after=after)


def speed_section(report: dict, lang: str) -> Section | None:
    table = speed_table(report, lang)
    return Section("speed", headings(lang)["speed"], [table]) if table else None


def checks_section(report: dict, lang: str) -> Section | None:
    lines = rt.check_lines(report, lang)
    return Section("checks", headings(lang)["checks"], lines=lines) if lines else None


def notes_section(report: dict, lang: str) -> Section | None:
    lines = rt.note_lines(report, lang)
    return Section("notes", headings(lang)["notes"], lines=lines) if lines else None


def setup_lines(report: dict, lang: str) -> list[str]:
    """Data source, size, labels, the positive class and the hashes that prove identical inputs and heads."""
    h, data = headings(lang), report.get("data") or {}
    labels = ", ".join(map(str, data.get("labels") or []))
    lines = [f"{h['data']}: {data.get('source', '?')}, {h['n']} = {data.get('n', '?')}, {h['labels']} = {labels}"]
    if rt.positive_label(report) is not None:
        lines.append(f"{h['positive']}: {rt.positive_label(report)}")
    lines.append(f"{h['token_hash']}: {data.get('token_ids_sha256', '?')}")
    lines += [
        f"{h['head_of'].format(v=v)} ({rt.variant_name(v, b, lang)}): {b.get('head_sha256')}"
        for v, b in _variants(report).items()
    ]
    return lines


def sections(report: dict, lang: str | None = None) -> list[Section]:
    """Every section in the console's order (the seed's): tables, analysis, conclusion, diagnosis, speed, checks,
    notes."""
    lang = rt.lang_of(report, lang)

    out = [
        summary_section(report, lang),
        *gain_sections(report, lang),
        render_flips.section(report, lang),
        *render_sweep.sections(report, lang),
        analysis_section(report, lang),
        beyond_task_section(report, lang),
        conclusion_section(report, lang),
        diagnosis_section(report, lang),
        speed_section(report, lang),
        checks_section(report, lang),
        notes_section(report, lang),
    ]
    return [s for s in out if s is not None]


# -- console -----------------------------------------------------------------------------------------------
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def console_table(table: Table) -> str:
    rows = [[cell_text(c) for c in row] for row in table.rows]
    widths = [max(_width(r[i]) for r in [table.headers, *rows]) for i in range(len(table.headers))]

    def line(cells):
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths)).rstrip()

    out = [line(table.headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows), *table.after]
    return "\n".join(([table.title] if table.title else []) + out)


def render_console(report: dict, lang: str | None = None) -> str:
    parts = []
    for s in sections(report, lang):
        body = [console_table(t) for t in s.tables] + (["\n".join(f"- {x}" for x in s.lines)] if s.lines else [])
        parts.append(f"{'=' * 8} {s.title} {'=' * 8}\n" + "\n\n".join(body))
    return "\n\n".join(parts) + "\n"


# -- Markdown ----------------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return cell_text(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    out = [f"**{_md_cell(table.title)}**", ""] if table.title else []
    out += [
        "| " + " | ".join(map(_md_cell, table.headers)) + " |",
        "|" + "|".join("---:" if n else "---" for n in (table.numeric or [False] * len(table.headers))) + "|",
    ]
    out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    return "\n".join(out + ([""] + table.after if table.after else []))


def render_markdown(report: dict, lang: str | None = None) -> str:
    """The answer first (the conclusion), then the tables and notes, the setup last."""
    lang = rt.lang_of(report, lang)
    all_sections = sections(report, lang)
    first = [s for s in all_sections if s.key in ("conclusion", "diagnosis")]
    parts = [f"# {headings(lang)['title']}"]
    for s in first + [s for s in all_sections if s not in first]:
        body = [markdown_table(t) for t in s.tables] + (
            ["\n".join(f"- {_md_cell(x)}" for x in s.lines)] if s.lines else []
        )
        if s.key == "flips":  # the texts and per-class P/R/F1 stay out of the console
            body += [markdown_table(t) for t in render_flips.markdown_extra(report, lang)]
            body.append(rt.table(lang, "flips")["texts_note"].format(chars=report["flips"]["text_chars"]))
        parts.append(f"## {s.title}\n\n" + "\n\n".join(body))
    parts.append(f"## {headings(lang)['setup']}\n\n" + "\n".join(f"- {_md_cell(x)}" for x in setup_lines(report, lang)))
    return "\n\n".join(parts) + "\n"
