"""Renders report["analysis"] (where LoRA changed the features): console/Markdown lines, HTML, PNG plots.

Only formats what report.json holds; each renderer calls it with one line:
    report_render.analysis_section -> `render_analysis.summary_lines(report, lang)`
    report_html._Page.analysis()   -> `render_analysis.html_section(report, lang)`
Plot text stays ASCII (CJK fonts are often missing, as in plots.py); the page around it is translated.
"""

from __future__ import annotations

import base64
import html
import math

from matplotlib.figure import Figure

from lorafair.core.names import ADAPTER_HEAD_VARIANTS
from lorafair.report import plots

STRINGS = {
    "en": {
        "heading": "Where LoRA changed the features",
        "first_changed": (
            "First layer with CKA(A, B) < {t}: layer {layer} (0 = embeddings, {last} = last; "
            "CKA {cka:.4f}, cosine {cos:.4f})."
        ),
        "never_changed": "CKA(A, B) >= {t} at every layer: LoRA left the pooled features nearly unchanged.",
        "gain": "Largest B - A probe-accuracy gain: layer {layer} ({gain:+.1f} pp: A {a:.3f} -> B {b:.3f}).",
        "no_probe": "Per-layer probes: not fitted.",
        "top": "Top modules by ||dW||/||W||: {modules}.",
        "no_weights": "Weights: no adapted module analysed.",
        "intruders": (
            "Intruder dimensions (top-10 directions of W + dW new to W): {total} in {counted} modules{skipped}."
        ),
        "skipped": "; {n} modules not counted (see notes)",
        "last": "Last layer {layer}: CKA {cka}, cosine {cos}, probe accuracy A {a}, B {b}.",
        "similarity": "CKA and cosine of A and B features by layer",
        "probes": "Probe accuracy by layer",
        "heatmap": "||dW||_F / ||W||_F per layer and module",
        "notes": "What was computed",
        "table": "Per-layer values",
        "table_layer": "Layer",
        "table_cka": "CKA",
        "table_cos": "Cosine",
        "table_a": "Probe A",
        "table_b": "Probe B",
    },
    "zh": {
        "heading": "LoRA 在哪里改变了特征",
        "first_changed": (
            "CKA(A, B) 首次低于 {t} 的层：第 {layer} 层（0 = 嵌入层，{last} = 最后一层；"
            "CKA {cka:.4f}，余弦 {cos:.4f}）。"
        ),
        "never_changed": "所有层的 CKA(A, B) 均 >= {t}：LoRA 几乎没有改变池化特征。",
        "gain": "B - A 探针准确率提升最大的层：第 {layer} 层（{gain:+.1f} 个百分点：A {a:.3f} -> B {b:.3f}）。",
        "no_probe": "逐层探针：未拟合。",
        "top": "||dW||/||W|| 最大的模块：{modules}。",
        "no_weights": "权重：没有分析任何适配模块。",
        "intruders": "入侵维度（W + dW 前 10 个方向中 W 没有的方向）：共 {total} 个，"
        "统计了 {counted} 个模块{skipped}。",
        "skipped": "；{n} 个模块未统计（见说明）",
        "last": "最后一层（第 {layer} 层）：CKA {cka}，余弦 {cos}，探针准确率 A {a}，B {b}。",
        "similarity": "逐层 A 与 B 特征的 CKA 和余弦相似度",
        "probes": "逐层探针准确率",
        "heatmap": "各层各模块的 ||dW||_F / ||W||_F",
        "notes": "计算说明",
        "table": "逐层数值",
        "table_layer": "层",
        "table_cka": "CKA",
        "table_cos": "余弦",
        "table_a": "探针 A",
        "table_b": "探针 B",
    },
}


def _strings(report: dict, lang: str | None = None) -> dict:
    lang = lang or (report.get("config") or {}).get("lang", "en")
    return STRINGS.get(lang, STRINGS["en"])


def _fmt(x, digits: int = 4) -> str:
    return "n/a" if not _finite(x) else f"{x:.{digits}f}"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def summary_lines(report: dict, lang: str | None = None) -> list[str]:
    """The console/Markdown bullets (without "- "), in the report's language; [] when there is no analysis."""
    block = report.get("analysis") or {}
    layers, summary = block.get("layers") or [], block.get("summary") or {}
    if not layers and not block.get("weights"):
        return []
    s, lines = _strings(report, lang), []
    by_layer = {r["layer"]: r for r in layers}
    first = summary.get("first_layer_cka_below") or {}
    threshold = first.get("threshold", 0.99)
    if first.get("layer") is not None:
        r = by_layer[first["layer"]]
        lines.append(
            s["first_changed"].format(
                t=threshold,
                layer=r["layer"],
                last=len(layers) - 1,
                cka=r["cka"],
                cos=r["cosine"] if _finite(r["cosine"]) else float("nan"),
            )
        )
    elif layers:
        lines.append(s["never_changed"].format(t=threshold))
    gain = summary.get("largest_probe_gain")
    if gain:
        acc = by_layer[gain["layer"]]["probe_accuracy"]
        lines.append(s["gain"].format(layer=gain["layer"], gain=gain["gain"] * 100, a=acc["A"], b=acc["B"]))
    else:
        lines.append(s["no_probe"])
    top = summary.get("top_modules_by_delta_norm_ratio") or []
    if top:
        lines.append(s["top"].format(modules=", ".join(f"{m['module']} ({m['delta_norm_ratio']:.4f})" for m in top)))
    else:
        lines.append(s["no_weights"])
    weights = block.get("weights") or []
    if summary.get("total_intruders") is not None:
        missing = sum(1 for w in weights if w.get("intruders") is None)
        lines.append(
            s["intruders"].format(
                total=summary["total_intruders"],
                counted=summary.get("modules_with_intruders_counted", len(weights)),
                skipped=s["skipped"].format(n=missing) if missing else "",
            )
        )
    if layers:
        last = layers[-1]
        accuracy = last["probe_accuracy"]
        lines.append(
            s["last"].format(
                layer=last["layer"],
                cka=_fmt(last["cka"]),
                cos=_fmt(last["cosine"]),
                a=_fmt(accuracy.get("A"), 3),
                b=_fmt(accuracy.get("B"), 3),
            )
        )
    return lines


def heading(report: dict, lang: str | None = None) -> str:
    return _strings(report, lang)["heading"]


# ------------------------------------------------------------------------------------------- plots
def similarity_png(layers: list[dict]) -> bytes | None:
    points = [(r["layer"], r.get("cka"), r.get("cosine")) for r in layers]
    if not any(_finite(c) or _finite(k) for _, c, k in points):
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for index, name, colour in ((1, "linear CKA(A, B)", "#d62728"), (2, "mean cosine(A, B)", "#1f77b4")):
        xs = [p[0] for p in points if _finite(p[index])]
        ax.plot(xs, [p[index] for p in points if _finite(p[index])], marker="o", markersize=3, color=colour, label=name)
    ax.axhline(0.99, color="#999999", linestyle=":", linewidth=1, label="0.99")
    ax.set(xlabel="layer (0 = embeddings)", ylabel="similarity", title="Frozen (A) vs LoRA (B) features")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return plots._png(fig)


def probe_png(layers: list[dict], a1_accuracy=None, b_accuracy=None) -> bytes | None:
    series = {
        v: [(r["layer"], r["probe_accuracy"].get(v)) for r in layers if _finite(r["probe_accuracy"].get(v))]
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
        if _finite(value):
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
    cells = [c for c in cells if c[0] is not None and _finite(c[2])]
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
    lines = summary_lines(report, lang)
    if not lines:
        return ""
    s, block = _strings(report, lang), report["analysis"]
    layers = block.get("layers") or []
    esc = lambda x: html.escape(str(x), quote=True)  # noqa: E731
    bullets = "".join(f"<li>{esc(x)}</li>" for x in lines)
    parts = [f"<h2>{esc(s['heading'])}</h2>", f'<ul class="conclusion">{bullets}</ul>']
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
    if figures:
        parts.append(f'<div class="grid">{"".join(figures)}</div>')
    if layers:
        head = "".join(f"<th>{esc(s[k])}</th>" for k in ("table_layer", "table_cka", "table_cos", "table_a", "table_b"))
        rows = "".join(
            f'<tr><td class="num">{r["layer"]}</td>'
            + "".join(
                f'<td class="num">{esc(_fmt(v, d))}</td>'
                for v, d in (
                    (r["cka"], 4),
                    (r["cosine"], 4),
                    (r["probe_accuracy"].get("A"), 3),
                    (r["probe_accuracy"].get("B"), 3),
                )
            )
            + "</tr>"
            for r in layers
        )
        parts.append(f"<details><summary>{esc(s['table'])}</summary><table><tr>{head}</tr>{rows}</table></details>")
    notes = block.get("notes") or []
    if notes:
        parts.append(f"<h3>{esc(s['notes'])}</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return "".join(parts)
