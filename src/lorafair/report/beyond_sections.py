"""Renders report["beyond_task"] (what LoRA changed beyond the task, --ood-data) as HTML with its plot.

Only formats what report.json holds: the sentences come from report/words (the console and Markdown use the same,
`render.beyond_task_section`); the plot sets CKA(A, B) per layer on out-of-domain text beside the same on the
task's data (report["analysis"]["layers"], when the run made the analysis). Plot text stays ASCII, as in plots.py.
"""

from __future__ import annotations

import base64

from matplotlib.figure import Figure

from lorafair.report import plots, words
from lorafair.report.tables import esc


def cka_png(task_layers: list[dict], ood_layers: list[dict]) -> bytes | None:
    """CKA(A, B) and cosine per layer: on the task's data and on out-of-domain text; None when nothing is finite."""
    series = [
        (task_layers, "cka", "CKA, task data", "#d62728", "-"),
        (ood_layers, "cka", "CKA, out-of-domain text", "#9467bd", "-"),
        (task_layers, "cosine", "cosine, task data", "#d62728", ":"),
        (ood_layers, "cosine", "cosine, out-of-domain text", "#9467bd", ":"),
    ]
    points = [
        ([r["layer"] for r in rows if words.finite(r.get(key))], [r[key] for r in rows if words.finite(r.get(key))])
        for rows, key, *_ in series
    ]
    if not any(xs for xs, _ in points):
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for (xs, ys), (_, _, label, colour, style) in zip(points, series):
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, color=colour, linestyle=style, label=label)
    ax.set(xlabel="layer (0 = embeddings)", ylabel="similarity of A and B", title="Frozen (A) vs LoRA (B) features")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return plots._png(fig)


def html_section(report: dict, lang: str | None = None) -> str:
    """The section as an HTML fragment (heading, bullets, the plot, a per-layer table, notes); "" without it."""
    lang = words.lang_of(report, lang)
    lines = words.beyond_task_lines(report, lang)
    if not lines:
        return ""
    s, block = words.table(lang, "beyond_task"), report["beyond_task"]
    task_layers = (report.get("analysis") or {}).get("layers") or []
    parts = [f"<h2>{esc(s['heading'])}</h2>", '<ul class="conclusion">' + _items(lines) + "</ul>"]
    png = cka_png(task_layers, block.get("layers") or [])
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<div class="fig"><h3>{esc(s["plot"])}</h3><figure><img src="data:image/png;base64,{data}" '
            f'alt="{esc(s["plot"])}"></figure></div>'
        )
    if block.get("layers"):
        parts.append(_layer_table(task_layers, block["layers"], s))
    notes = words.beyond_note_lines(report, lang)
    if notes:
        parts.append(f"<h3>{esc(s['notes'])}</h3><ul>{_items(notes)}</ul>")
    return f'<section id="beyond_task">{"".join(parts)}</section>'


def _items(lines: list[str]) -> str:
    return "".join(f"<li>{esc(line)}</li>" for line in lines)


def _layer_table(task_layers: list[dict], ood_layers: list[dict], s: dict) -> str:
    keys = ("table_layer", "table_cka_task", "table_cka_ood", "table_cos_task", "table_cos_ood")
    head = "".join(f"<th>{esc(s[k])}</th>" for k in keys)
    task = {r["layer"]: r for r in task_layers}
    rows = []
    for r in ood_layers:
        t = task.get(r["layer"]) or {}
        values = (t.get("cka"), r.get("cka"), t.get("cosine"), r.get("cosine"))
        cells = "".join(f'<td class="num">{esc(words.num(v))}</td>' for v in values)
        rows.append(f'<tr><td class="num">{r["layer"]}</td>{cells}</tr>')
    return f"<details><summary>{esc(s['table'])}</summary><table><tr>{head}</tr>{''.join(rows)}</table></details>"
