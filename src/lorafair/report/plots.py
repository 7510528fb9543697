"""PNG plots for the HTML report, drawn only from pieces of report.json (never recomputed).

Uses matplotlib's object API (`Figure` + Agg canvas), so no pyplot global state and no display is
needed. Plot text is kept ASCII (variant ids, class indices where a label is not ASCII) because CJK
fonts are often missing; the page around the plots carries the translated text.
Every function returns PNG bytes, or None when the report holds nothing to draw.
"""

from __future__ import annotations

import io
import math

from matplotlib.figure import Figure

# One colour per variant, stable across every plot.
VARIANT_COLOURS = {"B": "#d62728", "A": "#1f77b4", "A1": "#2ca02c", "R": "#7f7f7f"}
_EXTRA_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e"]
DPI = 100


def colour(variant_id: str, index: int) -> str:
    return VARIANT_COLOURS.get(variant_id, _EXTRA_COLOURS[index % len(_EXTRA_COLOURS)])


def ascii_text(text: object, fallback: str) -> str:
    """`text` if it is printable ASCII (safe with the default fonts), else `fallback`."""
    s = str(text)
    return s if s and s.isascii() and s.isprintable() else fallback


def variant_label(variant_id: str, variant: dict) -> str:
    name = variant.get("name")
    name = ascii_text(name, "") if name else ""
    return f"{variant_id}: {name}" if name else str(variant_id)


def class_label(labels: list, index: int) -> str:
    return ascii_text(labels[index], str(index)) if 0 <= index < len(labels) else str(index)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _auc_suffix(auc: object) -> str:
    return f" (AUC {auc:.3f})" if _finite(auc) else ""


def roc_png(variants: dict[str, dict], labels: list) -> bytes | None:
    """ROC curves: binary → every variant on one axes; multi-class → one axes per class (OvR)."""
    curves = {vid: (v.get("curves") or {}).get("roc") for vid, v in variants.items()}
    curves = {vid: c for vid, c in curves.items() if isinstance(c, dict)}
    if not curves:
        return None
    class_keys = sorted({k for c in curves.values() for k in (c.get("per_class") or {})}, key=_int_key)
    panels = (
        [(None, "ROC")]
        if not class_keys
        else [(k, f"ROC: {class_label(labels, _int_key(k))} vs rest") for k in class_keys]
    )
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.2 * ncols, 4.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    drew = False
    for ax, (key, title) in zip(axes, panels):
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", linewidth=1, label="chance")
        for i, (vid, curve) in enumerate(curves.items()):
            curve = curve if key is None else (curve.get("per_class") or {}).get(key)
            if not isinstance(curve, dict) or not curve.get("fpr") or not curve.get("tpr"):
                continue
            ax.plot(
                curve["fpr"],
                curve["tpr"],
                color=colour(vid, i),
                linewidth=1.6,
                label=variant_label(vid, variants[vid]) + _auc_suffix(curve.get("auc")),
            )
            drew = True
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate", title=title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return _png(fig) if drew else None


def _int_key(k: object) -> int:
    try:
        return int(k)
    except (TypeError, ValueError):
        return 10**9


def confusion_png(variants: dict[str, dict], labels: list) -> bytes | None:
    """One confusion matrix per variant (rows: true label, columns: predicted label)."""
    mats = [
        (vid, v["confusion_matrix"])
        for vid, v in variants.items()
        if isinstance(v.get("confusion_matrix"), list) and v["confusion_matrix"]
    ]
    if not mats:
        return None
    k = max(len(m) for _, m in mats)
    side = max(3.2, 0.55 * k + 2.2)
    ncols = min(len(mats), 2)  # 2 x 2 for B, A, A1, R: readable in a third of the page
    nrows = math.ceil(len(mats) / ncols)
    fig = Figure(figsize=(side * ncols, side * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    ticks = [class_label(labels, i) for i in range(k)]
    for ax, (vid, mat) in zip(axes, mats):
        vmax = max((max(row) for row in mat if row), default=0) or 1
        ax.imshow(mat, cmap="Blues", vmin=0, vmax=vmax)
        for r, row in enumerate(mat):
            for c, count in enumerate(row):
                ax.text(
                    c,
                    r,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if count > 0.6 * vmax else "black",
                )
        ax.set_xticks(range(len(mat[0])), ticks[: len(mat[0])], rotation=45 if k > 4 else 0)
        ax.set_yticks(range(len(mat)), ticks[: len(mat)])
        ax.set(xlabel="Predicted", ylabel="True", title=variant_label(vid, variants[vid]))
        ax.title.set_fontsize(9)
    for ax in axes[len(mats) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return _png(fig)


def reliability_png(variants: dict[str, dict]) -> bytes | None:
    """Reliability diagram (accuracy vs confidence per bin) with a count histogram below."""
    rels = {vid: (v.get("curves") or {}).get("reliability") for vid, v in variants.items()}
    rels = {vid: r for vid, r in rels.items() if isinstance(r, dict) and r.get("bin_edges")}
    if not rels:
        return None
    fig = Figure(figsize=(6.4, 6.4))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", linewidth=1, label="perfect calibration")
    n_var = len(rels)
    for i, (vid, rel) in enumerate(rels.items()):
        conf, acc = rel.get("confidence") or [], rel.get("accuracy") or []
        pts = [(c, a) for c, a in zip(conf, acc) if _finite(c) and _finite(a)]
        ece = ((variants[vid].get("metrics") or {}).get("ece") or {}).get("value")
        label = variant_label(vid, variants[vid]) + (f" (ECE {ece:.3f})" if _finite(ece) else "")
        if pts:
            top.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                markersize=4,
                linewidth=1.4,
                color=colour(vid, i),
                label=label,
            )
        edges, counts = rel["bin_edges"], rel.get("count") or []
        width = [(edges[j + 1] - edges[j]) / (n_var + 0.5) for j in range(len(edges) - 1)]
        lefts = [edges[j] + i * width[j] for j in range(len(width))]
        bottom.bar(
            lefts[: len(counts)],
            counts[: len(lefts)],
            width=width[: len(counts)],
            align="edge",
            color=colour(vid, i),
            alpha=0.8,
        )
    top.set(xlim=(0, 1), ylim=(0, 1.01), ylabel="Accuracy", title="Reliability diagram")
    top.grid(alpha=0.3)
    top.legend(loc="best", fontsize=8)
    bottom.set(xlabel="Confidence", ylabel="Count")
    bottom.grid(alpha=0.3)
    return _png(fig)


MARK_COLOURS = {"better": "#1a7f37", "worse": "#cf222e", None: "#8c959f"}  # as the sentences beside the plot


def forest_png(
    rows: list[tuple[str, float, list | None, str | None]], ci_level: str = "95%", scale: float = 1.0, unit: str = ""
) -> bytes | None:
    """Forest plot: one row per (label, delta, [lo, hi] or None, mark), a line at 0.

    `mark` is "better" / "worse" for a significant delta (filled, green / red) or None (hollow, grey).
    Values are multiplied by `scale` (100 with unit "pp" for fractions). Rows are drawn top to bottom;
    a dotted line separates rows whose labels start with a different first word (the comparison).
    """
    rows = [r for r in rows if _finite(r[1])]
    if not rows:
        return None
    fig = Figure(figsize=(6.4, 0.36 * len(rows) + 1.3))
    ax = fig.subplots()
    ys = list(range(len(rows)))[::-1]
    for y, (_label, value, ci, mark) in zip(ys, rows):
        colour_ = MARK_COLOURS.get(mark, MARK_COLOURS[None])
        if ci and len(ci) == 2 and _finite(ci[0]) and _finite(ci[1]):
            ax.plot([ci[0] * scale, ci[1] * scale], [y, y], color=colour_, linewidth=2.2, solid_capstyle="round")
        ax.plot(
            [value * scale],
            [y],
            marker="o",
            markersize=7,
            color=colour_,
            markerfacecolor=colour_ if mark else "white",
            markeredgewidth=1.6,
        )
    for j in range(1, len(rows)):  # faint separator between comparisons ("B-A", "B-A1", ...)
        if rows[j][0].split()[0] != rows[j - 1][0].split()[0]:
            ax.axhline(ys[j] + 0.5, color="#999999", linewidth=0.6, linestyle=":")
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(ys, [ascii_text(r[0], "?") for r in rows], fontsize=9)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"Delta{f' ({unit})' if unit else ''}, point and {ci_level} CI; filled = significant", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)
