"""The sweep part of the top-level report: per-adapter table, across-seed table, delta-vs-rank/step/seed plot.

Formats report["adapters"], report["sweep"], report["across_seeds"] and report["seed_agreement"] only (nothing is
computed here).
Tables are built once as (headers, rows) and formatted per medium: `sections` gives the console/Markdown
sections that `render.sections` appends, `html` the block `html.py` inserts. Headings come from report/words;
the statements about the sweep (Holm, across seeds) are conclusion records, worded with the conclusion.
"""

from __future__ import annotations

import base64
import io
import math

from lorafair.report import words
from lorafair.report.html_parts import html_section
from lorafair.report.tables import Section, Table, esc
from lorafair.stats import seed_agreement

X_AXES = ("r", "steps", "seed")  # the first of these that varies across the adapters is the plot's x-axis
DELTA_COLOURS = {"B-A": "#d62728", "B-A1": "#2ca02c", "A1-A": "#1f77b4"}


def _pp(value) -> str:
    return words.fmt_pp(value, unit=False)


def _record(report: dict, adapter: str, delta: str, metric: str = "accuracy") -> dict:
    return next(
        (
            r
            for r in report.get("sweep", [])
            if r["adapter"] == adapter and r["delta"] == delta and r["metric"] == metric
        ),
        {},
    )


def sweep_table(report: dict, lang: str | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per adapter: its r / steps / seed, accuracy of B and A, each accuracy delta (pp) with p_holm."""
    h = words.table(words.lang_of(report, lang), "sweep")
    adapters = report.get("adapters") or []
    deltas = list(dict.fromkeys(r["delta"] for r in report.get("sweep", [])))
    headers = [h["adapter"], "r", "steps", "seed", h["accuracy"].format(v="B"), h["accuracy"].format(v="A")]
    headers += [c for d in deltas for c in (h["delta_accuracy"].format(d=d), h["ci"], "p", "p_holm")]
    rows = []
    for entry in adapters:
        cfg, variants = entry["config"], entry["variants"]
        acc = [variants.get(v, {}).get("metrics", {}).get("accuracy", {}).get("value") for v in ("B", "A")]
        row = [
            entry["name"],
            *("-" if cfg.get(k) is None else str(cfg[k]) for k in X_AXES),
            *("n/a" if a is None else f"{a:.4f}" for a in acc),
        ]
        for d in deltas:
            rec = _record(report, entry["name"], d)
            row += [
                _pp(rec.get("value")),
                words.fmt_pp_ci(rec.get("ci")),
                words.fmt_g(rec.get("p_value")),
                words.fmt_g(rec.get("p_holm")),
            ]
        rows.append(row)
    return headers, rows


def seeds_table(
    report: dict, metrics=("accuracy", "f1", "auc_roc"), lang: str | None = None
) -> tuple[list[str], list[list[str]]]:
    """One row per delta and metric of report["across_seeds"]: seeds, mean, sd, CI and each seed's delta (pp)."""
    lang = words.lang_of(report, lang)
    h = words.table(lang, "sweep")
    headers = [
        h["delta"],
        h["metric"],
        h["n_seeds"],
        f"{h['mean']} (pp)",
        f"{h['sd']} (pp)",
        h["ci"],
        f"{h['per_seed']} (pp)",
    ]
    rows = []
    for key, per_metric in (report.get("across_seeds") or {}).items():
        for metric in metrics:
            s = per_metric.get(metric)
            if s:
                sd = "-" if s["sd"] is None else words.fmt_pp(s["sd"], signed=False, unit=False)
                rows.append(
                    [
                        key,
                        words.metric_label(metric, lang),
                        str(s["n_seeds"]),
                        _pp(s["mean"]),
                        sd,
                        words.fmt_pp_ci(s["ci"]),
                        " ".join(_pp(v) for v in s["per_seed"]),
                    ]
                )
    return headers, rows


def churn_lines(report: dict, lang: str | None = None) -> list[str]:
    """The seeds' prediction churn, worded from its conclusion record: shown below the across-seed table."""
    lang = words.lang_of(report, lang)
    records = seed_agreement.agreement_records(report.get("seed_agreement"))
    return [words.churn_sentence(r, lang) for r in records if r["kind"] == "seed_churn"]


def agreement_table(report: dict, lang: str | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per layer of report["seed_agreement"] (then all layers): φ at each depth, output / input side."""
    h = words.table(words.lang_of(report, lang), "seed_agreement")
    block = report.get("seed_agreement") or {}
    headers = [h["layer"], h["modules"], h["energy"], h["rank"], h["top1"], h["chance"]]

    def row(label, modules, entry) -> list[str]:
        pairs = [(entry["left"][d], entry["right"][d]) for d in ("energy", "rank", "top1")]
        pairs.append((entry["chance"]["left"]["energy"], entry["chance"]["right"]["energy"]))
        return [label, str(modules), *(f"{words.fmt_phi(a)} / {words.fmt_phi(b)}" for a, b in pairs)]

    rows = [row(str(e["layer"]), e["modules"], e) for e in block.get("layers") or []]
    summary = block.get("summary")
    if summary and summary.get("modules"):
        rows.append(row(h["all"], summary["modules"], summary))
    return headers, rows


def agreement_section(report: dict, lang: str | None = None) -> Section | None:
    """Do the seeds agree: the per-layer subspace table and its lines; None without report["seed_agreement"]."""
    if not report.get("seed_agreement"):
        return None
    lang = words.lang_of(report, lang)
    headers, rows = agreement_table(report, lang)
    tables = [Table(headers, rows)] if rows else []
    heading = words.table(lang, "seed_agreement")["heading"]
    return Section("seed_agreement", heading, tables=tables, lines=words.agreement_lines(report, lang))


def sections(report: dict, lang: str | None = None) -> list:
    """`tables.Section`s of the sweep table (and the across-seed table); [] for a single adapter."""
    if not report.get("adapters"):
        return []
    h = words.table(words.lang_of(report, lang), "sweep")
    out = [Section("sweep", h["sweep"], tables=[Table(*sweep_table(report, lang))])]
    if report.get("across_seeds"):
        seeds = Table(*seeds_table(report, lang=lang), after=churn_lines(report, lang))
        out.append(Section("seeds", h["seeds"], tables=[seeds]))
    agreement = agreement_section(report, lang)
    return out + ([agreement] if agreement else [])


def _html_table(headers, rows) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def html(report: dict, lang: str | None = None) -> str:
    """The sweep tables and the delta plot as an HTML block; "" for a single-adapter report."""
    if not report.get("adapters"):
        return ""
    h = words.table(words.lang_of(report, lang), "sweep")
    parts = [f"<h2>{esc(h['sweep'])}</h2>", _html_table(*sweep_table(report, lang))]
    png, axis = delta_plot_png(report)
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        title = esc(h["plot"].format(x=axis))
        parts.append(f'<h3>{title}</h3><figure><img src="data:image/png;base64,{data}" alt="{title}"></figure>')
    if report.get("across_seeds"):
        parts += [f"<h2>{esc(h['seeds'])}</h2>", _html_table(*seeds_table(report, lang=lang))]
        parts += [f"<p>{esc(line)}</p>" for line in churn_lines(report, lang)]
    parts.append(html_section(agreement_section(report, lang)))
    return "".join(parts)


def x_axis(adapters: list[dict]) -> tuple[str, list]:
    """The first of r / steps / seed that takes different values across the adapters, else their order."""
    for key in X_AXES:
        values = [a["config"].get(key) for a in adapters]
        if all(isinstance(v, (int, float)) for v in values) and len(set(values)) > 1:
            return key, values
    return "order", list(range(1, len(adapters) + 1))


def delta_plot_png(report: dict) -> tuple[bytes | None, str]:
    """Each accuracy delta (point and CI) against the adapters' rank, step or seed."""
    from matplotlib.figure import Figure

    adapters = report.get("adapters") or []
    axis, xs = x_axis(adapters)
    deltas = list(dict.fromkeys(r["delta"] for r in report.get("sweep", [])))
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    drawn = False
    for offset, delta in enumerate(deltas):
        shift = (offset - (len(deltas) - 1) / 2) * 0.04 * (max(xs) - min(xs) or 1)  # keep the error bars apart
        for x, entry in zip(xs, adapters):
            rec = _record(report, entry["name"], delta)
            value, ci = rec.get("value"), rec.get("ci")
            if value is None or not math.isfinite(value):
                continue
            yerr = None
            if ci and ci[0] is not None:
                yerr = [[max(value - ci[0], 0.0)], [max(ci[1] - value, 0.0)]]
            ax.errorbar(
                [x + shift],
                [value],
                yerr=yerr,
                fmt="o",
                capsize=3,
                color=DELTA_COLOURS.get(delta, "#555"),
                label=delta if x == xs[0] else None,
            )
            drawn = True
    if not drawn:
        return None, axis
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel=axis, ylabel="accuracy delta", title=f"Accuracy deltas by {axis}")
    ax.set_xticks(
        xs,
        [str(x) for x in xs] if axis != "order" else [a["name"] for a in adapters],
        fontsize=8,
        rotation=0 if axis != "order" else 30,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue(), axis
