"""Renders report["analysis"] (where LoRA changed the features) as HTML with its PNG plots.

Only formats what report.json holds; the sentences (summary bullets, notes) come from report/words, which
the console and Markdown (`render.analysis_section`) use too; `html.py` inserts `html_section(report, lang)`.
Plot text stays ASCII (CJK fonts are often missing, as in plots.py); the page around it is translated.
"""

from __future__ import annotations

import base64

from matplotlib.figure import Figure

from lorafair.core.names import ADAPTER_HEAD_VARIANTS
from lorafair.report import plots, words
from lorafair.report.tables import esc


# ------------------------------------------------------------------------------------------- plots
def similarity_png(layers: list[dict]) -> bytes | None:
    points = [(r["layer"], r.get("cka"), r.get("cosine")) for r in layers]
    if not any(words.finite(c) or words.finite(k) for _, c, k in points):
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for index, name, colour in ((1, "linear CKA(A, B)", "#d62728"), (2, "mean cosine(A, B)", "#1f77b4")):
        xs = [p[0] for p in points if words.finite(p[index])]
        ax.plot(
            xs, [p[index] for p in points if words.finite(p[index])], marker="o", markersize=3, color=colour, label=name
        )
    ax.axhline(0.99, color="#999999", linestyle=":", linewidth=1, label="0.99")
    ax.set(xlabel="layer (0 = embeddings)", ylabel="similarity", title="Frozen (A) vs LoRA (B) features")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return plots._png(fig)


def probe_png(layers: list[dict], a1_accuracy=None, b_accuracy=None) -> bytes | None:
    series = {
        v: [(r["layer"], r["probe_accuracy"].get(v)) for r in layers if words.finite(r["probe_accuracy"].get(v))]
        for v in ADAPTER_HEAD_VARIANTS
    }
    if not any(series.values()):
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for variant, pts in series.items():
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker="o",
            markersize=3,
            color=plots.colour(variant, 0),
            label=f"probe on {variant} features",
        )
    last = layers[-1]["layer"]
    for name, value, marker in (
        ("A1 (frozen + linear probe)", a1_accuracy, "s"),
        ("B (LoRA model, own head)", b_accuracy, "*"),
    ):
        if words.finite(value):
            ax.plot(
                [last],
                [value],
                marker=marker,
                markersize=10,
                linestyle="none",
                color=plots.colour(name.split()[0], 0),
                label=name,
            )
    ax.set(xlabel="layer (0 = embeddings)", ylabel="accuracy (evaluation set)", title="Linear probe accuracy by layer")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return plots._png(fig)


def heatmap_png(weights: list[dict]) -> bytes | None:
    cells = [(w.get("layer"), w.get("kind") or w["module"], w.get("delta_norm_ratio")) for w in weights]
    cells = [c for c in cells if c[0] is not None and words.finite(c[2])]
    if not cells:
        return None
    rows = sorted({c[0] for c in cells})
    cols = list(dict.fromkeys(c[1] for c in cells))
    grid = [[float("nan")] * len(cols) for _ in rows]
    for layer, kind, value in cells:
        grid[rows.index(layer)][cols.index(kind)] = value
    fig = Figure(figsize=(1.0 * len(cols) + 3.0, 0.28 * len(rows) + 2.0))
    ax = fig.subplots()
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="||dW||_F / ||W||_F")
    ax.set_xticks(range(len(cols)), [plots.ascii_text(c, "?") for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
    ax.set(xlabel="module", ylabel="layer", title="Relative size of the LoRA update")
    return plots._png(fig)


def _accuracy(report: dict, variant: str):
    return (((report.get("variants") or {}).get(variant) or {}).get("metrics") or {}).get("accuracy", {}).get("value")


def html_section(report: dict, lang: str | None = None) -> str:
    """The analysis as an HTML fragment (heading, bullets, three plots, a per-layer table); "" without analysis."""
    lang = words.lang_of(report, lang)
    lines = words.analysis_lines(report, lang)
    if not lines:
        return ""
    s, block = words.table(lang, "analysis"), report["analysis"]
    bullets = "".join(f"<li>{esc(x)}</li>" for x in lines)
    parts = [f"<h2>{esc(s['heading'])}</h2>", f'<ul class="conclusion">{bullets}</ul>', _figures(report, s)]
    if block.get("layers"):
        parts.append(_layer_table(block["layers"], s))
    notes = words.analysis_note_lines(report, lang)
    if notes:
        parts.append(f"<h3>{esc(s['notes'])}</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return "".join(parts)


def _figures(report: dict, s: dict) -> str:
    block = report["analysis"]
    layers = block.get("layers") or []
    figures = []
    for key, png in (
        ("similarity", similarity_png(layers)),
        ("probes", probe_png(layers, _accuracy(report, "A1"), _accuracy(report, "B"))),
        ("heatmap", heatmap_png(block.get("weights") or [])),
    ):
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            figures.append(
                f'<div class="fig"><h3>{esc(s[key])}</h3><figure><img src="data:image/png;base64,{data}" '
                f'alt="{esc(s[key])}"></figure></div>'
            )
    return f'<div class="grid">{"".join(figures)}</div>' if figures else ""


def _layer_table(layers: list[dict], s: dict) -> str:
    head = "".join(f"<th>{esc(s[k])}</th>" for k in ("table_layer", "table_cka", "table_cos", "table_a", "table_b"))
    rows = []
    for r in layers:
        values = ((r["cka"], 4), (r["cosine"], 4), (r["probe_accuracy"].get("A"), 3), (r["probe_accuracy"].get("B"), 3))
        cells = "".join(f'<td class="num">{esc(words.num(v, d))}</td>' for v, d in values)
        rows.append(f'<tr><td class="num">{r["layer"]}</td>{cells}</tr>')
    return f"<details><summary>{esc(s['table'])}</summary><table><tr>{head}</tr>{''.join(rows)}</table></details>"
