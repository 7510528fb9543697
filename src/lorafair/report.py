"""Renderers and writers: console tables (seed layout, en/zh), report.md, predictions.csv, report.html.

Every renderer only formats the report dict; nothing is computed here. Files are written into a
temporary folder beside the output and renamed into place, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import numpy as np

from lorafair import atomic
from lorafair.errors import LorafairError
from lorafair.names import METRIC_LABELS, SUMMARY_METRICS
from lorafair.names import METRIC_NAMES as ANALYSIS_METRICS

HEADINGS = {
    "en": {"summary": "Summary", "model": "Model", "analysis": "Gain analysis", "metric": "Metric",
           "reference": "Reference", "lora": "LoRA", "abs": "Abs. gain", "rel": "Rel. gain", "ci": "95% CI",
           "p": "p", "conclusion": "Conclusion", "speed": "Speed comparison", "qps": "QPS", "tps": "tokens/s",
           "p50": "p50 ms", "p95": "p95 ms", "speed_diff": "Speed difference (B vs A)", "checks": "Checks",
           "notes": "Notes", "title": "lorafair report"},
    "zh": {"summary": "结果汇总", "model": "模型", "analysis": "提升分析", "metric": "指标", "reference": "参照",
           "lora": "LoRA", "abs": "绝对提升", "rel": "相对提升", "ci": "95% 置信区间", "p": "p 值",
           "conclusion": "结论", "speed": "速度对比", "qps": "QPS", "tps": "tokens/s", "p50": "p50 毫秒",
           "p95": "p95 毫秒", "speed_diff": "速度差异 (B 对 A)", "checks": "检查", "notes": "说明",
           "title": "lorafair 报告"},
}


def check_output_dir(output: str | Path, overwrite: bool) -> None:
    """Refuse to replace an existing output folder unless asked to (checked before any heavy work)."""
    path = Path(output)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise LorafairError(f"output folder '{path}' already exists; pass --overwrite to replace it")


def _num(value, digits=4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _ci(ci, scale=1.0, digits=4) -> str:
    if not ci or ci[0] is None:
        return "-"
    return f"[{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(_width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c) + " " * (w - _width(str(c))) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def _reference(report: dict) -> str | None:
    return "A" if "A" in report["variants"] else ("A1" if "A1" in report["variants"] else None)


def sections(report: dict) -> list[tuple[str, str]]:
    """(heading, body) pairs shared by the console and Markdown renderers."""
    lang = report["config"].get("lang", "en")
    h, labels = HEADINGS[lang], METRIC_LABELS[lang]
    variants = report["variants"]
    out = []
    summary = [[block["name"], *(_num(block["metrics"][m]["value"]) for m in SUMMARY_METRICS)]
               for block in variants.values()]
    out.append((h["summary"], table([h["model"], *(labels[m] for m in SUMMARY_METRICS)], summary)))
    for key, per_metric in report["deltas"].items():
        new, ref = key.split("-")
        rows = []
        for m in ANALYSIS_METRICS:
            e = per_metric[m]
            p = "-" if e.get("p_value") is None else f"{e['p_value']:.3g} ({e['test']})"
            rows.append([labels[m], _num(variants[ref]["metrics"][m]["value"]), _num(variants[new]["metrics"][m]["value"]),
                         _num(e["value"]) if e["value"] is None else f"{e['value']:+.4f}", _pct(e["relative"]),
                         _ci(e.get("ci")), p])
        title = f"{h['analysis']}: {variants[new]['name']} vs {variants[ref]['name']} ({key})"
        out.append((title, table([h["metric"], h["reference"], variants[new]["name"], h["abs"], h["rel"], h["ci"], h["p"]], rows)))
    out.append((h["conclusion"], "\n".join(f"- {line}" for line in report["conclusion"])))
    timed = [(v, b) for v, b in variants.items() if b.get("speed")]
    if timed:
        rows = [[b["name"], _num(b["speed"]["qps"], 1), _num(b["speed"]["tokens_per_s"], 0),
                 _num(b["speed"]["latency_ms_p50"], 1), _num(b["speed"]["latency_ms_p95"], 1)] for _, b in timed]
        body = table([h["model"], h["qps"], h["tps"], h["p50"], h["p95"]], rows)
        if report.get("speed_difference") is not None:
            body += f"\n{h['speed_diff']}: {report['speed_difference'] * 100:+.1f}%"
        out.append((h["speed"], body))
    if report.get("checks"):
        out.append((h["checks"], "\n".join(f"- {c}" for c in report["checks"])))
    notes = list(report.get("notes", [])) + [f"forward pass: {p['what']} ({p['examples']} examples)"
                                             for p in report.get("forward_passes", [])]
    if notes:
        out.append((h["notes"], "\n".join(f"- {n}" for n in notes)))
    return out


def render_console(report: dict) -> str:
    parts = []
    for heading, body in sections(report):
        parts.append(f"{'=' * 8} {heading} {'=' * 8}\n{body}")
    return "\n\n".join(parts) + "\n"


def render_markdown(report: dict) -> str:
    lang = report["config"].get("lang", "en")
    data = report["data"]
    head = [f"# {HEADINGS[lang]['title']}", "",
            f"- data: `{data['source']}`, n = {data['n']}, labels = {', '.join(map(str, data['labels']))}",
            f"- token ids SHA-256: `{data['token_ids_sha256']}`"]
    for v, block in report["variants"].items():
        head.append(f"- head of {v} ({block['name']}): `{block['head_sha256']}`")
    parts = ["\n".join(head)]
    for heading, body in sections(report):
        if body.startswith("- "):
            parts.append(f"## {heading}\n\n{body}")
        else:
            parts.append(f"## {heading}\n\n" + _markdown_table(body))
    return "\n\n".join(parts) + "\n"


def _markdown_table(body: str) -> str:
    """Turn a console table (plus trailing lines) into a GitHub table."""
    lines = body.splitlines()
    header, rows = lines[0], [ln for ln in lines[2:]]
    split = lambda ln: [c for c in ln.split("  ") if c.strip()]  # noqa: E731 - two spaces separate cells
    cols = split(header)
    out = ["| " + " | ".join(c.strip() for c in cols) + " |", "|" + "---|" * len(cols)]
    tail = []
    for row in rows:
        cells = split(row)
        if len(cells) == len(cols):
            out.append("| " + " | ".join(c.strip() for c in cells) + " |")
        else:
            tail.append(row)
    return "\n".join(out + ([""] + tail if tail else []))


def predictions_csv(report: dict, probs: dict, y: np.ndarray) -> str:
    """One row per example: its index in the data file, the label, per variant the prediction and probabilities."""
    labels = [str(x) for x in report["data"]["labels"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    variants = list(report["variants"])
    writer.writerow(["index", "label", *[c for v in variants for c in [f"pred_{v}", *(f"prob_{v}_{l}" for l in labels)]]])
    for row, index in enumerate(report["data"]["indices"]):
        cells = [index, labels[y[row]]]
        for v in variants:
            cells.append(labels[int(np.argmax(probs[v][row]))])
            cells.extend(repr(float(p)) for p in probs[v][row])
        writer.writerow(cells)
    return buffer.getvalue()


def write_outputs(report: dict, probs: dict, y: np.ndarray, output: str | Path, overwrite: bool) -> Path:
    """Write every output into a temp folder, then swap it into place (atomic for the folder as a whole)."""
    output = Path(output)
    check_output_dir(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic.publish_folder(output) as staging:
        (staging / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=_json_default),
                                             encoding="utf-8")
        (staging / "report.md").write_text(render_markdown(report), encoding="utf-8")
        (staging / "predictions.csv").write_text(predictions_csv(report, probs, y), encoding="utf-8")
        try:
            from lorafair.report_html import render_html
        except ImportError:
            render_html = None
        if render_html is not None:
            (staging / "report.html").write_text(render_html(report), encoding="utf-8")
    return output


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
