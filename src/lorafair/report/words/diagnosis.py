"""report["diagnosis"] and report["training"] worded: what to try next, from the evidence (stats/diagnosis.py).

Diagnosis kinds: a1_absent, a1_cross_fitted, head_coadapted, probe_suffices, b_a1_underpowered, linear_at_layer,
low_rank, train_longer, backbone_changed. Each sentence cites the figures its record carries.
"""

from __future__ import annotations

from lorafair.report.words.numbers import finite, fmt_p, fmt_pp, fmt_pp_ci, num
from lorafair.report.words.vocabulary import table

KINDS = (
    "a1_absent",
    "a1_cross_fitted",
    "head_coadapted",
    "probe_suffices",
    "b_a1_underpowered",
    "linear_at_layer",
    "low_rank",
    "train_longer",
    "backbone_changed",
)


def _gain(record: dict) -> dict:
    """A delta's figures: the value and CI in pp, its p."""
    return {"v": fmt_pp(record["value"]), "ci": fmt_pp_ci(record.get("ci"), unit=True), "p": fmt_p(record["p_value"])}


def _gain_sentence(record: dict, text: dict) -> str:
    """head_coadapted, probe_suffices, b_a1_underpowered: each reads only its own kind's fields."""
    kind, fields = record["kind"], _gain(record)
    if kind == "head_coadapted":
        return text[kind].format(**fields, t=fmt_pp(record["threshold"], signed=False))
    mde = fmt_pp(record["mde"], signed=False) if record["mde"] is not None else None
    if kind == "probe_suffices":
        return text[kind].format(**fields, t=fmt_pp(record["gain"], signed=False), mde=mde)
    key = kind if mde is not None else "b_a1_no_mde"
    return text[key].format(**fields, mde=mde, n=record["n"], n3=record["n_for_3pp"])


def diagnosis_sentence(record: dict, lang: str) -> str:
    """One report["diagnosis"] record in `lang`; a kind this version does not know as its record."""
    text, kind = table(lang, "diagnosis"), record.get("kind")
    if kind in ("head_coadapted", "probe_suffices", "b_a1_underpowered"):
        return _gain_sentence(record, text)
    if kind == "a1_absent":
        return text["a1_absent"]
    if kind == "a1_cross_fitted":
        return text["a1_cross_fitted"].format(folds=record.get("folds") or "?")
    if kind == "linear_at_layer":
        return text[kind].format(layer=record["layer"], a=num(record["probe_accuracy"]), b=num(record["b_accuracy"]))
    if kind == "low_rank":
        return text[kind].format(k=record["k"], r=record["r"], m=record["modules"], e=f"{record['energy']:.0%}")
    if kind == "train_longer":
        fields = {k: record[k] for k in ("points", "p_value")}
        fields.update(a=f"{record['from_step']:g}", b=f"{record['to_step']:g}", slope=f"{record['slope']:.3g}")
        fields.update(drop=f"{record['relative_drop']:.1%}", p=fmt_p(record["p_value"]))
        return text[kind].format(**fields)
    if kind == "backbone_changed":
        kl, factor = record["kl_mean"], record["perplexity_factor"]
        return text[kind].format(kl=f"{kl:.3g}", t=f"{record['threshold']:g}", f=f"{factor:.3f}")
    return str(record)


def training_line(report: dict, lang: str) -> str | None:
    """The adapter's recorded training in one line; None without report["training"]."""
    block = report.get("training")
    if not block:
        return None
    text = table(lang, "diagnosis")
    line = text["training"].format(
        steps=block.get("steps") if block.get("steps") is not None else "?",
        epochs=f"{block['epochs']:g}" if finite(block.get("epochs")) else "?",
        first=num(block.get("first_loss")),
        last=num(block.get("last_loss")),
        n=block.get("logged_losses", 0),
    )
    trend = block.get("trend") or {}
    if finite(trend.get("slope")):
        line += text["trend"].format(slope=f"{trend['slope']:.3g}", p=fmt_p(trend.get("p_value")), k=trend["points"])
    elif trend:
        line += text["no_trend"].format(k=trend.get("points", 0), m=trend.get("min_points", "?"))
    if finite(block.get("eval_accuracy")):
        line += text["eval"].format(acc=num(block["eval_accuracy"]))
    return line


def diagnosis_lines(report: dict, lang: str) -> list[str]:
    """The diagnosis section's bullets (without "- "): the training, then every record; [] when there is none."""
    if "diagnosis" not in report and not report.get("training"):
        return []  # a report written before the diagnosis, or a sweep's top level
    lines = [diagnosis_sentence(r, lang) for r in report.get("diagnosis") or []]
    training = training_line(report, lang)
    return ([training] if training else []) + (lines or [table(lang, "diagnosis")["nothing"]])
