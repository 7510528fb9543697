"""Self-contained HTML report rendered from a report.json dict.

report.json is the single source of truth: this module only formats what is in it (no metric is
recomputed). The page needs no network: plots are base64 PNG data URIs, CSS is inline, there is no
script, and a Content-Security-Policy forbids loading anything but data: images.

    from lorafair.report_html import write_html
    write_html(json.load(open("out/report.json")), "out/report.html")
"""

from __future__ import annotations

import base64
import html
import json
import math
import os

from lorafair import __version__, atomic, plots
from lorafair.names import DELTA_KEYS as DELTA_ORDER
from lorafair.names import METRIC_NAMES as METRICS
from lorafair.names import VARIANT_IDS as VARIANT_ORDER

SPEED_KEYS = ("qps", "tokens_per_s", "latency_ms_p50", "latency_ms_p95")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STRINGS = {
    "en": {
        "title": "lorafair report: LoRA model vs frozen base",
        "overview": "Setup", "config": "Configuration", "environment": "Environment", "data": "Data",
        "n": "Examples", "labels": "Labels", "token_hash": "Token ids SHA-256",
        "head_a": "Head SHA-256 (A)", "head_b": "Head SHA-256 (B)", "heads_equal": "A and B share the head",
        "yes": "yes", "no": "NO", "missing": "not reported",
        "summary": "Metrics per variant", "variant": "Variant", "deltas": "Deltas",
        "comparison": "Comparison", "metric": "Metric", "delta": "Delta", "relative": "Relative",
        "ci": "CI", "p_value": "p-value", "test": "Test", "conclusion": "Conclusion",
        "checks": "Checks", "notes": "Notes", "head_module": "Head module", "forward_passes": "Forward passes",
        "speed": "Speed", "plots": "Plots", "roc": "ROC curves", "confusion": "Confusion matrices",
        "reliability": "Reliability diagram (calibration)", "forest": "Deltas with confidence intervals",
        "not_available": "not available in this report", "na": "n/a",
        "ci_note": "Values are point estimates with {level} confidence intervals in brackets; "
                   "deltas whose interval excludes 0 are highlighted.",
        "footer": "Rendered from report.json (schema version {schema}) by lorafair {version}.",
        "accuracy": "Accuracy", "f1": "F1", "precision": "Precision", "recall": "Recall",
        "auc_roc": "AUC-ROC", "log_loss": "Log loss", "brier": "Brier", "ece": "ECE",
        "qps": "QPS (samples/s)", "tokens_per_s": "Tokens/s",
        "latency_ms_p50": "Latency p50 (ms)", "latency_ms_p95": "Latency p95 (ms)",
        "test_mcnemar": "McNemar exact", "test_delong": "DeLong", "test_bootstrap": "paired bootstrap",
    },
    "zh": {
        "title": "lorafair 报告：LoRA 微调模型 vs 冻结基座",
        "overview": "实验设置", "config": "配置", "environment": "运行环境", "data": "数据",
        "n": "样本数", "labels": "标签", "token_hash": "Token ids SHA-256",
        "head_a": "分类头 SHA-256（A）", "head_b": "分类头 SHA-256（B）", "heads_equal": "A 与 B 使用同一分类头",
        "yes": "是", "no": "否", "missing": "未报告",
        "summary": "各模型指标", "variant": "模型", "deltas": "差异分析",
        "comparison": "对比", "metric": "指标", "delta": "差值", "relative": "相对变化",
        "ci": "置信区间", "p_value": "p 值", "test": "检验", "conclusion": "结论",
        "checks": "检查提示", "notes": "备注", "head_module": "分类头模块", "forward_passes": "前向计算次数",
        "speed": "速度对比", "plots": "图表", "roc": "ROC 曲线", "confusion": "混淆矩阵",
        "reliability": "可靠性图（校准）", "forest": "差异及其置信区间",
        "not_available": "本报告中无此数据", "na": "无",
        "ci_note": "数值为点估计，方括号内为 {level} 置信区间；置信区间不含 0 的差值以高亮显示。",
        "footer": "由 report.json（schema 版本 {schema}）经 lorafair {version} 生成。",
        "accuracy": "准确率", "f1": "F1", "precision": "精确率", "recall": "召回率",
        "auc_roc": "AUC-ROC", "log_loss": "对数损失", "brier": "Brier 分数", "ece": "ECE",
        "qps": "QPS（样本/秒）", "tokens_per_s": "Tokens/秒",
        "latency_ms_p50": "延迟 p50（毫秒）", "latency_ms_p95": "延迟 p95（毫秒）",
        "test_mcnemar": "McNemar 精确检验", "test_delong": "DeLong 检验", "test_bootstrap": "配对 bootstrap",
    },
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
margin:2em auto;max-width:1200px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #d62728;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.sig td{background:#fff3e0}code{font-size:.9em;word-break:break-all}
.bad{color:#b00020;font-weight:bold}.ok{color:#1b5e20}.na{color:#888}
.grid{display:flex;flex-wrap:wrap;gap:0 1.5em}.fig{max-width:100%}
figure{margin:.4em 0}.wide{overflow-x:auto}.ci{display:block;font-size:.82em;color:#666}
td.na{font-size:.85em;max-width:12em}td.variant{min-width:12em}img{max-width:100%;height:auto;border:1px solid #eee}
summary{cursor:pointer;font-weight:bold;margin:.6em 0}ul.conclusion li{margin:.3em 0}
footer{margin-top:3em;font-size:.8em;color:#888}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _is_num(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def fmt_num(x: object, digits: int = 4, signed: bool = False) -> str:
    if x is None:
        return "—"
    if not _is_num(x):
        return str(x)
    if isinstance(x, int):
        return f"{x:+d}" if signed else str(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_ci(ci: object, digits: int = 4, signed: bool = False) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_is_num(c) for c in ci):
        return f"[{fmt_num(ci[0], digits, signed)}, {fmt_num(ci[1], digits, signed)}]"
    return ""


def fmt_p(p: object) -> str:
    if not _is_num(p) or not math.isfinite(p):
        return "—"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def ci_excludes_zero(ci: object) -> bool:
    return bool(fmt_ci(ci)) and (ci[0] > 0 or ci[1] < 0)


def ordered(mapping: dict, order: tuple) -> list:
    """Keys of `mapping` in the canonical order first, then any others as they come."""
    keys = [k for k in order if k in mapping]
    return keys + [k for k in mapping if k not in keys]


class _Page:
    def __init__(self, report: dict) -> None:
        self.report = report
        self.config = report.get("config") or {}
        lang = str(self.config.get("lang", "en") or "en")
        self.lang = lang if lang in STRINGS else "en"
        self.s = STRINGS[self.lang]
        alpha = self.config.get("alpha", 0.05)
        self.ci_level = f"{(1 - alpha) * 100:g}%" if _is_num(alpha) and 0 < alpha < 1 else "95%"
        raw = report.get("variants") or {}
        self.variants = {k: raw[k] for k in ordered(raw, VARIANT_ORDER) if isinstance(raw[k], dict)}
        self.deltas = {k: d for k, d in (report.get("deltas") or {}).items() if isinstance(d, dict)}
        self.deltas = {k: self.deltas[k] for k in ordered(self.deltas, DELTA_ORDER)}
        self.labels = list((report.get("data") or {}).get("labels") or [])

    def t(self, key: str) -> str:
        return esc(self.s.get(key, key))

    def variant_cell(self, vid: str) -> str:
        return f'<td class="variant">{self.variant_title(vid)}</td>'

    def variant_title(self, vid: str) -> str:
        name = self.variants.get(vid, {}).get("name")
        return f"<b>{esc(vid)}</b> — {esc(name)}" if name else f"<b>{esc(vid)}</b>"

    def metric_cell(self, m: object) -> str:
        if not isinstance(m, dict):
            return '<td class="num na">—</td>'
        if m.get("value") is None:
            reason = f" ({esc(m['reason'])})" if m.get("reason") else ""
            return f'<td class="na">{self.t("na")}{reason}</td>'
        ci = fmt_ci(m.get("ci"))
        ci = f' <span class="ci">{esc(ci)}</span>' if ci else ""
        return f'<td class="num">{esc(fmt_num(m["value"]))}{ci}</td>'

    # -- sections ---------------------------------------------------------------------------
    def kv_table(self, rows: list[tuple[str, str]]) -> str:
        body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"

    def overview(self) -> str:
        data = self.report.get("data") or {}
        rows = [(self.t("n"), esc(fmt_num(data.get("n")))),
                (self.t("labels"), esc(", ".join(str(label) for label in self.labels)) or "—"),
                (self.t("token_hash"), f"<code>{esc(data.get('token_ids_sha256') or '—')}</code>")]
        rows += [(esc(k), esc(_plain(v))) for k, v in data.items() if k not in ("n", "labels", "token_ids_sha256")]
        head = self.report.get("head") or {}
        if head.get("module"):
            rows.append((self.t("head_module"), f"<code>{esc(head['module'])}</code>"))
        if self.report.get("forward_passes") is not None:
            rows.append((self.t("forward_passes"), esc(_plain(self.report["forward_passes"]))))
        head_a = self.variants.get("A", {}).get("head_sha256")
        head_b = self.variants.get("B", {}).get("head_sha256")
        for key, value in (("head_a", head_a), ("head_b", head_b)):
            rows.append((self.t(key), f"<code>{esc(value)}</code>" if value else
                         f'<span class="na">{self.t("missing")}</span>'))
        if head_a and head_b:
            same = head_a == head_b
            rows.append((self.t("heads_equal"), f'<span class="{"ok" if same else "bad"}">'
                         f'{self.t("yes" if same else "no")}</span>'))
        env = self.report.get("environment") or {}
        parts = [f"<div><h3>{self.t('data')}</h3>{self.kv_table(rows)}</div>"]
        if env:
            parts.append(f"<div><h3>{self.t('environment')}</h3>"
                         + self.kv_table([(esc(k), esc(_plain(v))) for k, v in env.items()]) + "</div>")
        config = ""
        if self.config:
            config = (f"<details><summary>{self.t('config')}</summary>" + self.kv_table(
                [(esc(k), f"<code>{esc(_plain(v))}</code>") for k, v in self.config.items()]) + "</details>")
        return f'<h2>{self.t("overview")}</h2><div class="grid">{"".join(parts)}</div>{config}'

    def summary(self) -> str:
        head = "".join(f"<th>{self.t(m)}</th>" for m in METRICS)
        rows = []
        for vid, v in self.variants.items():
            metrics = v.get("metrics") or {}
            cells = "".join(self.metric_cell(metrics.get(m)) for m in METRICS)
            rows.append(f"<tr>{self.variant_cell(vid)}{cells}</tr>")
        note = esc(self.s["ci_note"].format(level=self.ci_level))
        return (f'<h2>{self.t("summary")}</h2><p>{note}</p><div class="wide"><table><tr><th>{self.t("variant")}</th>'
                f'{head}</tr>' + "".join(rows) + "</table></div>")

    def delta_table(self) -> str:
        if not self.deltas:
            return ""
        cols = ("comparison", "metric", "delta", "relative", "ci", "p_value", "test")
        rows = []
        for did, per_metric in self.deltas.items():
            for metric in ordered(per_metric, METRICS):
                d = per_metric[metric]
                if not isinstance(d, dict):
                    continue
                if d.get("value") is None:
                    reason = f" ({esc(d['reason'])})" if d.get("reason") else ""
                    value, sig = f'<td class="na">{self.t("na")}{reason}</td>', False
                else:
                    value, sig = f'<td class="num">{esc(fmt_num(d["value"], signed=True))}</td>', ci_excludes_zero(d.get("ci"))
                rel = d.get("relative")
                rel = f"{rel * 100:+.2f}%" if _is_num(rel) and math.isfinite(rel) else "—"
                test = d.get("test")
                test = self.s.get(f"test_{test}", test) if test else "—"
                rows.append(f'<tr{" class=sig" if sig else ""}><td>{esc(did)}</td><td>{self.t(metric)}</td>{value}'
                            f'<td class="num">{esc(rel)}</td><td class="num">{esc(fmt_ci(d.get("ci"), signed=True) or "—")}</td>'
                            f'<td class="num">{esc(fmt_p(d.get("p_value")))}</td><td>{esc(test)}</td></tr>')
        head = "".join(f"<th>{self.t(c)}</th>" for c in cols)
        return f'<h2>{self.t("deltas")}</h2><table><tr>{head}</tr>{"".join(rows)}</table>'

    def line_list(self, key: str) -> str:
        """report[key] (conclusion, checks, notes) as a bulleted list; "" when absent or empty."""
        lines = self.report.get(key) or []
        lines = [lines] if isinstance(lines, (str, dict)) else lines
        if not lines:
            return ""
        items = "".join(f"<li>{esc(line if isinstance(line, str) else _plain(line))}</li>" for line in lines)
        return f'<h2>{self.t(key)}</h2><ul class="conclusion">{items}</ul>'

    def speed(self) -> str:
        speeds = {vid: v["speed"] for vid, v in self.variants.items() if isinstance(v.get("speed"), dict) and v["speed"]}
        if not speeds:
            return ""
        keys = ordered({k: None for s in speeds.values() for k in s}, SPEED_KEYS)
        head = "".join(f"<th>{self.t(k)}</th>" for k in keys)
        rows = "".join(f"<tr>{self.variant_cell(vid)}"
                       + "".join(f'<td class="num">{esc(_speed(s.get(k)))}</td>' for k in keys) + "</tr>"
                       for vid, s in speeds.items())
        return f'<h2>{self.t("speed")}</h2><table><tr><th>{self.t("variant")}</th>{head}</tr>{rows}</table>'

    def forest_rows(self) -> list:
        rows = []
        for did, per_metric in self.deltas.items():
            for metric in ordered(per_metric, METRICS):
                d = per_metric[metric]
                if isinstance(d, dict) and _is_num(d.get("value")):
                    ci = d.get("ci") if fmt_ci(d.get("ci")) else None
                    rows.append((f"{did}  {metric}", d["value"], ci, ci_excludes_zero(ci)))
        return rows

    def figures(self) -> str:
        parts = []
        for key, make in (("roc", lambda: plots.roc_png(self.variants, self.labels)),
                          ("reliability", lambda: plots.reliability_png(self.variants)),
                          ("confusion", lambda: plots.confusion_png(self.variants, self.labels)),
                          ("forest", lambda: plots.forest_png(self.forest_rows(), self.ci_level))):
            png = make()
            if png is None:
                body = f'<p class="na">{self.t("not_available")}</p>'
            else:
                data = base64.b64encode(png).decode("ascii")
                body = f'<figure><img src="data:image/png;base64,{data}" alt="{self.t(key)}"></figure>'
            parts.append(f'<div class="fig"><h3>{self.t(key)}</h3>{body}</div>')
        return f'<h2>{self.t("plots")}</h2><div class="grid">{"".join(parts)}</div>'

    def render(self) -> str:
        html_lang = "zh-CN" if self.lang == "zh" else "en"
        footer = self.s["footer"].format(schema=self.report.get("schema_version", "?"), version=__version__)
        body = "".join((f"<h1>{self.t('title')}</h1>", self.overview(), self.summary(), self.delta_table(),
                        self.line_list("conclusion"), self.line_list("checks"), self.line_list("notes"),
                        self.speed(), self.figures(), f"<footer>{esc(footer)}</footer>"))
        return ("<!DOCTYPE html>\n"
                f'<html lang="{html_lang}"><head><meta charset="utf-8">'
                f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{self.t('title')}</title><style>{_CSS}</style></head>\n"
                f"<body>\n{body}\n</body></html>\n")


def _plain(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return fmt_num(value) if _is_num(value) else ("—" if value is None else str(value))


def _speed(x: object) -> str:
    return fmt_num(x, 1) if _is_num(x) and abs(x) >= 100 else fmt_num(x, 2)


def render_html(report: dict) -> str:
    """The whole report as one self-contained HTML page (str), in report["config"]["lang"]."""
    return _Page(report).render()


def write_html(report: dict, path: str | os.PathLike) -> None:
    """Render `report` and write it to `path` atomically (temp file in the same folder + os.replace)."""
    atomic.write_text(path, render_html(report))
