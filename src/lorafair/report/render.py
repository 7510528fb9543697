"""The report's tables and sections built once as data, then formatted for the console and Markdown.

Each section builder takes the report dict and a language and returns a `Section` (or None when the
report holds nothing for it); `report_html` renders the same sections. Nothing is computed here:
every number is read from report.json and only formatted.

    lorafair report outputs/compare --lang zh --format md
"""

from __future__ import annotations

import unicodedata

from lorafair.core.names import DELTA_KEYS as DELTA_ORDER
from lorafair.core.names import METRIC_NAMES as ALL_METRICS
from lorafair.core.names import SUMMARY_METRICS
from lorafair.core.names import VARIANT_IDS as VARIANT_ORDER
from lorafair.report import sweep_sections as render_sweep
from lorafair.report import words as rt
from lorafair.report.tables import Section, Table, ordered

HEADINGS = {
    "en": {
        "summary": "Summary",
        "model": "Model",
        "analysis": "Gain analysis",
        "metric": "Metric",
        "reference": "Reference",
        "abs": "Abs. gain",
        "rel": "Rel. gain",
        "ci": "CI",
        "p": "p (test)",
        "conclusion": "Conclusion",
        "speed": "Speed comparison",
        "qps": "QPS",
        "tps": "tokens/s",
        "p50": "p50 ms",
        "p95": "p95 ms",
        "time": "time",
        "memory": "peak memory",
        "speed_diff": "Speed difference (B vs A)",
        "checks": "Checks",
        "notes": "Notes",
        "title": "lorafair report",
        "setup": "Setup",
        "data": "data",
        "token_hash": "token ids SHA-256",
        "head_of": "head of {v}",
        "n": "n",
        "labels": "labels",
        "positive": "positive class",
    },
    "zh": {
        "summary": "结果汇总",
        "model": "模型",
        "analysis": "提升分析",
        "metric": "指标",
        "reference": "参照",
        "abs": "绝对提升",
        "rel": "相对提升",
        "ci": "置信区间",
        "p": "p 值（检验）",
        "conclusion": "结论",
        "speed": "速度对比",
        "qps": "QPS",
        "tps": "tokens/s",
        "p50": "p50 毫秒",
        "p95": "p95 毫秒",
        "time": "耗时",
        "memory": "峰值内存",
        "speed_diff": "速度差异 (B 对 A)",
        "checks": "检查",
        "notes": "说明",
        "title": "lorafair 报告",
        "setup": "实验设置",
        "data": "数据",
        "token_hash": "token ids SHA-256",
        "head_of": "{v} 的分类头",
        "n": "样本数",
        "labels": "标签",
        "positive": "正类",
    },
}
NOTES = {
    "en": {
        "dropped": "{n} rows dropped while loading the data (empty text or label)",
        "truncated": "{n} examples ({share}) truncated to --max-length {m} tokens",
        "pass": "forward pass: {what} ({n} examples)",
        "modules": "head modules: {m}",
        "features": "features: {f}",
        "fidelity": "merged vs unmerged LoRA ({dtype}, {n} examples): max |logit difference| {d:.3g}, "
        "{flips} prediction flips",
    },
    "zh": {
        "dropped": "加载数据时丢弃 {n} 行（文本或标签为空）",
        "truncated": "{n} 个样本（{share}）被截断到 --max-length {m} 个 token",
        "pass": "前向计算：{what}（{n} 个样本）",
        "modules": "分类头模块：{m}",
        "features": "特征：{f}",
        "fidelity": "合并与未合并 LoRA（{dtype}，{n} 个样本）：最大 |logit 差| {d:.3g}，预测翻转 {flips} 个",
    },
}


def num(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def signed(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def pct(value) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def ci_text(ci, digits: int = 4, sign: bool = False) -> str:
    if not ci or ci[0] is None:
        return "-"
    f = signed if sign else num
    return f"[{f(ci[0], digits)}, {f(ci[1], digits)}]"


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
        return (f"{entry['value']:.4f}", ci_text(entry["ci"]))
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
    h, positive = HEADINGS[lang], rt.positive_label(report)
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
    return Section("summary", HEADINGS[lang]["summary"], [metrics_table(report, lang)])


def gain_table(report: dict, key: str, lang: str) -> Table:
    """The seed's analysis table for one delta: metric, reference, LoRA, gains, CI and p."""
    h, variants, positive = HEADINGS[lang], report["variants"], rt.positive_label(report)
    new, ref = key.split("-")
    rows, marks = [], []
    for m in ordered(report["deltas"][key], ALL_METRICS):
        e = report["deltas"][key][m]
        rows.append(
            [
                rt.metric_label(m, lang, positive),
                num(variants[ref]["metrics"][m]["value"]),
                num(variants[new]["metrics"][m]["value"]),
                signed(e["value"]),
                pct(e.get("relative")),
                ci_text(e.get("ci"), sign=True),
                p_text(e, lang),
            ]
        )
        marks.append(significance_mark(e, report, m))
    title = (
        f"{h['analysis']}: {rt.variant_name(new, variants[new], lang)} vs "
        f"{rt.variant_name(ref, variants[ref], lang)} ({key})"
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
    """'better' / 'worse' when the delta is significant (CI excludes 0 and the paired test agrees at alpha),
    read in the metric's direction: a significant fall in log loss, Brier or ECE is 'better'."""
    v = entry.get("verdict")
    if v is None:  # a report written before verdicts were stored
        from lorafair.report.build import verdict

        v = verdict(entry, (report.get("config") or {}).get("alpha", 0.05))
    if v not in ("improved", "decreased"):
        return None
    return "better" if (v == "improved") != (metric in rt.LOWER_IS_BETTER) else "worse"


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
    from lorafair.report import analysis_sections as render_analysis

    lines = render_analysis.summary_lines(report, lang)
    if not lines:
        return None
    notes = (report.get("analysis") or {}).get("notes") or []
    return Section("analysis", render_analysis.heading(report, lang), lines=lines + list(notes))


def conclusion_section(report: dict, lang: str) -> Section:
    return Section("conclusion", HEADINGS[lang]["conclusion"], lines=rt.conclusion_lines(report, lang))


def speed_table(report: dict, lang: str) -> Table | None:
    """QPS, tokens/s, batch latency, pass time and (where measured, i.e. on GPU) peak memory per timed variant."""
    h = HEADINGS[lang]
    timed = [(v, b) for v, b in _variants(report).items() if b.get("speed")]
    if not timed:
        return None
    with_memory = any(b["speed"].get("peak_memory_bytes") is not None for _, b in timed)
    rows = [
        [
            rt.variant_name(v, b, lang),
            num(s.get("qps"), 1),
            num(s.get("tokens_per_s"), 0),
            num(s.get("latency_ms_p50"), 1),
            num(s.get("latency_ms_p95"), 1),
            rt.fmt_seconds(s.get("seconds")),
            *([rt.fmt_bytes(s.get("peak_memory_bytes"))] if with_memory else []),
        ]
        for v, b in timed
        for s in [b["speed"]]
    ]
    after = []
    if report.get("speed_difference") is not None:
        after.append(f"{h['speed_diff']}: {report['speed_difference'] * 100:+.1f}%")
    headers = [h["model"], h["qps"], h["tps"], h["p50"], h["p95"], h["time"], *([h["memory"]] if with_memory else [])]
    return Table(headers, rows, numeric=[False, *([True] * (len(headers) - 1))], after=after)


def speed_section(report: dict, lang: str) -> Section | None:
    table = speed_table(report, lang)
    return Section("speed", HEADINGS[lang]["speed"], [table]) if table else None


def checks_section(report: dict, lang: str) -> Section | None:
    lines = rt.check_lines(report, lang)
    return Section("checks", HEADINGS[lang]["checks"], lines=lines) if lines else None


def note_lines(report: dict, lang: str) -> list[str]:
    """Notes: the run's own notes, data loss (dropped rows, truncation), head, fidelity, forward passes."""
    text, data = NOTES[lang], report.get("data") or {}
    lines = [str(n) for n in report.get("notes") or []]
    if data.get("dropped_rows"):
        lines.append(text["dropped"].format(n=data["dropped_rows"]))
    if data.get("truncated"):
        share = f"{data.get('truncated_share', 0) * 100:.1f}%"
        lines.append(
            text["truncated"].format(
                n=data["truncated"], share=share, m=(report.get("config") or {}).get("max_length", "?")
            )
        )
    head = report.get("head") or {}
    if head.get("modules"):
        lines.append(text["modules"].format(m=", ".join(map(str, head["modules"]))))
    if head.get("features"):
        lines.append(text["features"].format(f=head["features"]))
    fid = report.get("fidelity") or {}
    if fid.get("merged_vs_unmerged_max_abs_logit_diff") is not None:
        lines.append(
            text["fidelity"].format(
                dtype=fid.get("merge_dtype", "?"),
                n=fid.get("checked_examples", "?"),
                d=fid["merged_vs_unmerged_max_abs_logit_diff"],
                flips=fid.get("prediction_flips", "?"),
            )
        )
    lines += [text["pass"].format(what=p["what"], n=p["examples"]) for p in report.get("forward_passes") or []]
    return lines


def notes_section(report: dict, lang: str) -> Section | None:
    lines = note_lines(report, lang)
    return Section("notes", HEADINGS[lang]["notes"], lines=lines) if lines else None


def setup_lines(report: dict, lang: str) -> list[str]:
    """Data source, size, labels, the positive class and the hashes that prove identical inputs and heads."""
    h, data = HEADINGS[lang], report.get("data") or {}
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
    """Every section in the console's order (the seed's): tables, analysis, conclusion, speed, checks, notes."""
    lang = rt.lang_of(report, lang)

    out = [
        summary_section(report, lang),
        *gain_sections(report, lang),
        *render_sweep.sections(report, lang),
        analysis_section(report, lang),
        conclusion_section(report, lang),
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
    first = [s for s in all_sections if s.key == "conclusion"]
    parts = [f"# {HEADINGS[lang]['title']}"]
    for s in first + [s for s in all_sections if s.key != "conclusion"]:
        body = [markdown_table(t) for t in s.tables] + (
            ["\n".join(f"- {_md_cell(x)}" for x in s.lines)] if s.lines else []
        )
        parts.append(f"## {s.title}\n\n" + "\n\n".join(body))
    parts.append(f"## {HEADINGS[lang]['setup']}\n\n" + "\n".join(f"- {_md_cell(x)}" for x in setup_lines(report, lang)))
    return "\n\n".join(parts) + "\n"
