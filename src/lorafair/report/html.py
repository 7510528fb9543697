"""Self-contained HTML report rendered from a report.json dict: the answer first, the setup last.

The first screen holds the verdict: one sentence per headline delta (B - A, B - A1, A1 - A on
accuracy, F1 and AUC) with its CI and p, coloured by significance, beside the delta forest plot. Then
the metric tables (built once in `report_render`, shared with the console and Markdown), the layer
analysis where present, checks, speed and plots; setup, environment, hashes, forward passes and
configuration come last, collapsed. The page needs no network: plots are base64 PNG data URIs, CSS
is inline, there is no script, and a Content-Security-Policy forbids loading anything else.

    from lorafair.report.html import write_html
    write_html(json.load(open("out/report.json")), "out/report.html", lang="zh")
"""

from __future__ import annotations

import base64
import json
import os

from lorafair.core import atomic
from lorafair.core.names import HEADLINE_METRICS
from lorafair.core.version import VERSION
from lorafair.report import analysis_sections as render_analysis
from lorafair.report import plots
from lorafair.report import render as rr
from lorafair.report import sweep_sections as render_sweep
from lorafair.report import words as rt
from lorafair.report.tables import esc

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
MARK_CLASS = {
    "improved": "better",
    "decreased": "worse",
    "no_difference": "ns",
    "undefined": "ns",
}  # headline: higher is better
MARK_SYMBOL = {"improved": "▲", "decreased": "▼", "no_difference": "●", "undefined": "○"}

STRINGS = {
    "en": {
        "title": "lorafair report: LoRA model vs frozen base",
        "answer": "What LoRA did",
        "lede": "{n} evaluation examples of {source}; {level} CIs from the paired bootstrap. Green or red: "
        "the CI excludes 0 and the paired test agrees (alpha = {alpha}); grey: no significant difference.",
        "same_head": "A and B share one head (SHA-256 {h}…)",
        "head_differs": "A and B do NOT share the head: the comparison is not fair",
        "forest": "Headline deltas with {level} CIs (percentage points)",
        "metrics": "Metrics per variant",
        "gains": "Deltas, every metric",
        "plots": "Plots",
        "roc": "ROC curves",
        "confusion": "Confusion matrices",
        "reliability": "Reliability diagram (calibration)",
        "not_available": "not available in this report",
        "setup": "Setup: data, heads, forward passes, environment",
        "config": "Configuration",
        "data": "Data",
        "heads": "Heads",
        "environment": "Environment",
        "passes": "Forward passes",
        "notes": "Notes",
        "fidelity": "Fidelity (merged vs unmerged B)",
        "source": "source",
        "n": "examples",
        "n_available": "examples available",
        "labels": "labels",
        "positive": "positive class",
        "label_counts": "examples per label",
        "token_hash": "token ids SHA-256",
        "tokenize": "tokenisation time",
        "dropped": "rows dropped",
        "truncated": "examples truncated",
        "module": "head module",
        "modules": "head modules",
        "features": "features",
        "equal": "A and B share the head",
        "yes": "yes",
        "no": "NO",
        "head_of": "head SHA-256 of {v}",
        "total_time": "total time",
        "fid_diff": "max |logit difference|",
        "fid_flips": "prediction flips",
        "fid_n": "examples checked",
        "fid_dtype": "merge dtype",
        "env_peak_rss_bytes": "peak memory (RSS)",
        "env_world_size": "processes",
        "footer": "Rendered from report.json (schema version {schema}) by lorafair {version}.",
    },
    "zh": {
        "title": "lorafair 报告：LoRA 微调模型 vs 冻结基座",
        "answer": "LoRA 带来了什么",
        "lede": "{source} 的 {n} 个评估样本；{level} 置信区间来自配对 bootstrap。绿色或红色：置信区间不含 0 且"
        "配对检验一致（alpha = {alpha}）；灰色：无显著差异。",
        "same_head": "A 与 B 使用同一个分类头（SHA-256 {h}…）",
        "head_differs": "A 与 B 的分类头不同：对比不公平",
        "forest": "主要差异及其 {level} 置信区间（百分点）",
        "metrics": "各模型指标",
        "gains": "全部指标的差异",
        "plots": "图表",
        "roc": "ROC 曲线",
        "confusion": "混淆矩阵",
        "reliability": "可靠性图（校准）",
        "not_available": "本报告中无此数据",
        "setup": "实验设置：数据、分类头、前向计算、运行环境",
        "config": "配置",
        "data": "数据",
        "heads": "分类头",
        "environment": "运行环境",
        "passes": "前向计算",
        "notes": "说明",
        "fidelity": "一致性（合并与未合并的 B）",
        "source": "来源",
        "n": "样本数",
        "n_available": "可用样本数",
        "labels": "标签",
        "positive": "正类",
        "label_counts": "各标签样本数",
        "token_hash": "token ids SHA-256",
        "tokenize": "分词耗时",
        "dropped": "丢弃行数",
        "truncated": "截断样本数",
        "module": "分类头模块",
        "modules": "分类头模块",
        "features": "特征",
        "equal": "A 与 B 使用同一分类头",
        "yes": "是",
        "no": "否",
        "head_of": "{v} 的分类头 SHA-256",
        "total_time": "总耗时",
        "fid_diff": "最大 |logit 差|",
        "fid_flips": "预测翻转数",
        "fid_n": "检查样本数",
        "fid_dtype": "合并精度",
        "env_peak_rss_bytes": "峰值内存（RSS）",
        "env_world_size": "进程数",
        "footer": "由 report.json（schema 版本 {schema}）经 lorafair {version} 生成。",
    },
}

_CSS = """
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


def html_table(table: rr.Table) -> str:
    """A `report_render.Table` as HTML: numeric columns right-aligned, significant rows marked."""
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


def html_section(section: rr.Section | None, css: str = "lines") -> str:
    """Any `report_render.Section` (tables, then bullet lines) under its heading; "" for None."""
    if section is None:
        return ""
    body = "".join(html_table(t) for t in section.tables)
    if section.lines:
        body += f'<ul class="{css}">' + "".join(f"<li>{esc(line)}</li>" for line in section.lines) + "</ul>"
    return f'<section id="{esc(section.key)}"><h2>{esc(section.title)}</h2>{body}</section>'


def kv_table(rows: list[tuple[str, str]]) -> str:
    """(label, already escaped HTML) pairs as a two-column table."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="wide"><table>{body}</table></div>'


def png_img(png: bytes | None, alt: str, missing: str) -> str:
    if png is None:
        return f'<p class="lede">{esc(missing)}</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


class _Page:
    def __init__(self, report: dict, lang: str | None) -> None:
        self.report = report
        self.lang = rt.lang_of(report, lang)
        self.s = STRINGS[self.lang]
        self.level = rt.ci_level(report)
        self.positive = rt.positive_label(report)
        raw = report.get("variants") or {}
        self.variants = {k: raw[k] for k in rr.ordered(raw, rr.VARIANT_ORDER) if isinstance(raw[k], dict)}
        self.labels = list((report.get("data") or {}).get("labels") or [])

    # -- first screen ------------------------------------------------------------------------------------
    def answer(self) -> str:
        data, config = self.report.get("data") or {}, self.report.get("config") or {}
        lede = self.s["lede"].format(
            n=data.get("n", "?"), source=data.get("source", "?"), level=self.level, alpha=config.get("alpha", 0.05)
        )
        if self.positive is not None:
            lede += " " + rt.SENTENCES[self.lang]["positive_class"].format(label=self.positive)
        lost = rr.note_lines({"data": data, "config": config}, self.lang)  # dropped or truncated rows, if any
        if lost:
            lede += " " + "; ".join(lost) + ("。" if self.lang == "zh" else ".")
        groups = {}
        for record in self.report.get("conclusion_records") or []:
            groups.setdefault(record["delta"], []).append(record)
        body = "".join(self.delta_group(key, groups[key]) for key in rr.ordered(groups, rr.DELTA_ORDER))
        if not groups:  # an older report: its stored sentences
            body = (
                '<ul class="verdicts">'
                + "".join(f'<li class="ns">{esc(line)}</li>' for line in rt.conclusion_lines(self.report, self.lang))
                + "</ul>"
            )
        forest = png_img(
            plots.forest_png(self.forest_rows(), self.level, scale=100.0, unit="pp"),
            self.s["forest"].format(level=self.level),
            self.s["not_available"],
        )
        caption = esc(self.s["forest"].format(level=self.level))
        return (
            f'<section class="answer"><div><h2>{esc(self.s["answer"])}</h2><p class="lede">{esc(lede)}</p>'
            f"{body}{self.head_proof()}</div><figure>{forest}<figcaption>{caption}</figcaption></figure></section>"
        )

    def delta_group(self, key: str, records: list[dict]) -> str:
        items = []
        for r in records:
            sentence = rt.conclusion_sentence(r, self.lang, positive=self.positive, level=self.level, with_delta=False)
            verdict = r.get("verdict", "no_difference")
            items.append(
                f'<li class="{MARK_CLASS.get(verdict, "ns")}"><span class="sym">'
                f"{MARK_SYMBOL.get(verdict, '●')}</span>{esc(sentence)}</li>"
            )
        return f'<h3>{esc(rt.delta_name(key, self.lang))}</h3><ul class="verdicts">{"".join(items)}</ul>'

    def head_proof(self) -> str:
        head_a = self.variants.get("A", {}).get("head_sha256")
        head_b = self.variants.get("B", {}).get("head_sha256")
        if not (head_a and head_b):
            return ""
        if head_a == head_b:
            return f'<p class="proof ok">✔ {esc(self.s["same_head"].format(h=str(head_a)[:12]))}</p>'
        return f'<p class="proof bad">✘ {esc(self.s["head_differs"])}</p>'

    def forest_rows(self) -> list:
        """(label, delta, ci, mark) for the headline metrics of every delta, in canonical order."""
        rows = []
        for key in rr.ordered(self.report.get("deltas") or {}, rr.DELTA_ORDER):
            for metric in HEADLINE_METRICS:
                entry = self.report["deltas"][key].get(metric) or {}
                if entry.get("value") is not None:
                    label = f"{key}  {rt.metric_label(metric, 'en')}"
                    rows.append(
                        (label, entry["value"], entry.get("ci"), rr.significance_mark(entry, self.report, metric))
                    )
        return rows

    # -- body --------------------------------------------------------------------------------------------
    def metrics(self) -> str:
        table = rr.metrics_table(self.report, self.lang, rr.ALL_METRICS, with_ci=True)
        return f'<section id="metrics"><h2>{esc(self.s["metrics"])}</h2>{html_table(table)}</section>'

    def gains(self) -> str:
        tables = [
            html_table(rr.Table(t.headers, t.rows, title=s.title, numeric=t.numeric, marks=t.marks))
            for s in rr.gain_sections(self.report, self.lang)
            for t in s.tables
        ]
        return f'<section id="gains"><h2>{esc(self.s["gains"])}</h2>{"".join(tables)}</section>' if tables else ""

    def figures(self) -> str:
        parts = []
        for key, make in (
            ("roc", lambda: plots.roc_png(self.variants, self.labels)),
            ("reliability", lambda: plots.reliability_png(self.variants)),
            ("confusion", lambda: plots.confusion_png(self.variants, self.labels)),
        ):
            img = png_img(make(), self.s[key], self.s["not_available"])
            parts.append(f"<figure><h3>{esc(self.s[key])}</h3>{img}</figure>")
        return f'<section id="plots"><h2>{esc(self.s["plots"])}</h2><div class="grid">{"".join(parts)}</div></section>'

    # -- last, collapsed ---------------------------------------------------------------------------------
    def setup(self) -> str:
        s = self.s
        blocks = [(s["data"], kv_table(self.data_rows())), (s["heads"], kv_table(self.head_rows()))]
        fidelity = self.fidelity_rows()
        if fidelity:
            blocks.append((s["fidelity"], kv_table(fidelity)))
        passes = self.report.get("forward_passes") or []
        if passes:
            blocks.append(
                (
                    s["passes"],
                    "<ul>"
                    + "".join(f"<li>{esc(p.get('what'))}: {esc(p.get('examples'))}</li>" for p in passes)
                    + "</ul>",
                )
            )
        notes = [str(n) for n in self.report.get("notes") or []]  # data loss, head, fidelity: in the tables above
        if notes:
            blocks.append((s["notes"], "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"))
        env = self.report.get("environment") or {}
        if env:
            blocks.append(
                (s["environment"], kv_table([(s.get(f"env_{k}", k), esc(_plain(k, v))) for k, v in env.items()]))
            )
        body = "".join(f"<div><h3>{esc(title)}</h3>{html}</div>" for title, html in blocks)
        return f'<details id="setup"><summary>{esc(s["setup"])}</summary><div class="grid">{body}</div></details>'

    def data_rows(self) -> list[tuple[str, str]]:
        s, data = self.s, self.report.get("data") or {}
        rows = [(s["source"], f"<code>{esc(data.get('source', '—'))}</code>"), (s["n"], esc(data.get("n", "—")))]
        if data.get("n_available") is not None:
            rows.append((s["n_available"], esc(data["n_available"])))
        rows.append((s["labels"], esc(", ".join(map(str, self.labels)) or "—")))
        if self.positive is not None:
            rows.append((s["positive"], esc(self.positive)))
        if data.get("label_counts"):
            rows.append((s["label_counts"], esc(", ".join(f"{k}: {v}" for k, v in data["label_counts"].items()))))
        for key, label in (("dropped_rows", "dropped"), ("truncated", "truncated")):
            if data.get(key) is not None:
                share = f" ({data.get('truncated_share', 0) * 100:.1f}%)" if key == "truncated" else ""
                rows.append((s[label], esc(f"{data[key]}{share}")))
        if data.get("tokenize_seconds") is not None:
            rows.append((s["tokenize"], esc(rt.fmt_seconds(data["tokenize_seconds"]))))
        rows.append((s["token_hash"], f"<code>{esc(data.get('token_ids_sha256', '—'))}</code>"))
        total = (self.report.get("timing") or {}).get("total_seconds")
        if total is not None:
            rows.append((s["total_time"], esc(rt.fmt_seconds(total))))
        return rows

    def head_rows(self) -> list[tuple[str, str]]:
        s, head = self.s, self.report.get("head") or {}
        rows = []
        if head.get("module"):
            rows.append((s["module"], f"<code>{esc(head['module'])}</code>"))
        if head.get("modules"):
            rows.append((s["modules"], f"<code>{esc(', '.join(map(str, head['modules'])))}</code>"))
        if head.get("features"):
            rows.append((s["features"], esc(head["features"])))
        if "A_equals_B" in head:
            same = bool(head["A_equals_B"])
            rows.append(
                (s["equal"], f'<span class="{"ok" if same else "bad"}">{esc(s["yes" if same else "no"])}</span>')
            )
        rows += [
            (s["head_of"].format(v=v), f"<code>{esc(b.get('head_sha256') or '—')}</code>")
            for v, b in self.variants.items()
        ]
        return rows

    def fidelity_rows(self) -> list[tuple[str, str]]:
        s, fid = self.s, self.report.get("fidelity") or {}
        keys = (
            ("merged_vs_unmerged_max_abs_logit_diff", "fid_diff"),
            ("prediction_flips", "fid_flips"),
            ("checked_examples", "fid_n"),
            ("merge_dtype", "fid_dtype"),
        )
        return [(s[label], esc(_plain(key, fid[key]))) for key, label in keys if fid.get(key) is not None]

    def config(self) -> str:
        config = self.report.get("config") or {}
        if not config:
            return ""
        rows = [(k, f"<code>{esc(_plain(k, v))}</code>") for k, v in config.items()]
        return f'<details id="config"><summary>{esc(self.s["config"])}</summary>{kv_table(rows)}</details>'

    def analysis(self) -> str:
        """The layer/weight analysis with its plots (render_analysis), or nothing when the run made none."""
        analysis = self.report.get("analysis") or {}
        if analysis.get("layers") or analysis.get("weights"):
            return render_analysis.html_section(self.report, self.lang)  # with its plots
        return html_section(rr.analysis_section(self.report, self.lang))

    def render(self) -> str:
        report, lang = self.report, self.lang
        footer = self.s["footer"].format(schema=report.get("schema_version", "?"), version=VERSION)
        body = "".join(
            (
                f"<h1>{esc(self.s['title'])}</h1>",
                self.answer(),
                self.metrics(),
                html_section(rr.checks_section(report, lang), "lines checks"),
                self.gains(),
                render_sweep.html(report, lang),
                self.analysis(),
                html_section(rr.speed_section(report, lang)),
                self.figures(),
                self.setup(),
                self.config(),
                f"<footer>{esc(footer)}</footer>",
            )
        )
        return (
            "<!DOCTYPE html>\n"
            f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.s['title'])}</title><style>{_CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n"
        )


def _plain(key: str, value: object) -> str:
    """A setup value for people: sizes in MB/GB, times in s/min, lists joined."""
    if key.endswith("_bytes") and isinstance(value, (int, float)):
        return rt.fmt_bytes(value)
    if key.endswith("_seconds") and isinstance(value, (int, float)):
        return rt.fmt_seconds(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return "—" if value is None else str(value)


def render_html(report: dict, lang: str | None = None) -> str:
    """The whole report as one self-contained HTML page (str), in `lang` (default: the run's language)."""
    return _Page(report, lang).render()


def write_html(report: dict, path: str | os.PathLike, lang: str | None = None) -> None:
    """Render `report` and write it to `path` atomically (temp file in the same folder + os.replace)."""
    atomic.write_text(path, render_html(report, lang))
