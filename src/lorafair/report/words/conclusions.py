"""The conclusion: report["conclusion_records"] worded, one sentence per record, in English or Chinese.

Record kinds: same_head (A and B run one head), delta (a paired delta on a headline metric and its verdict),
underpowered (a delta the sample is too small to settle), holm (a sweep's adapters still significant after
Holm-Bonferroni), across_seeds (a seed set's mean delta and whether it is robust) and seed_subspace, seed_churn
(do the seeds agree: words/seeds.py). A schema-1 report stored
only the delta records: the others are rebuilt here from the numbers it holds (its "power", "sweep",
"across_seeds"), so an old sweep report states its across-seed result too.
"""

from __future__ import annotations

from lorafair.report.words.numbers import fmt_p, fmt_pp
from lorafair.report.words.seeds import churn_sentence, subspace_sentence
from lorafair.report.words.vocabulary import (
    ci_level,
    delta_name,
    lang_of,
    metric_label,
    positive_label,
    table,
    test_name,
)
from lorafair.stats import multi_adapter


def records_of(report: dict) -> list[dict] | None:
    """The report's conclusion records, every one with a kind; None for a report from before records."""
    records = report.get("conclusion_records")
    if records is None:
        return None
    if (report.get("schema_version") or 1) >= 2:
        return list(records)
    head = report.get("head") or {}
    out = []
    if head.get("A_equals_B"):
        out.append({"kind": "same_head", "sha256": ((report.get("variants") or {}).get("A") or {}).get("head_sha256")})
    out += [{"kind": "delta", **r} for r in records]
    out += [{"kind": "underpowered", **r} for r in report.get("power") or []]
    return out + sweep_records(report)


def sweep_records(report: dict) -> list[dict]:
    """Holm and across-seed records of a sweep report, from its "sweep" and "across_seeds" numbers."""
    out = []
    if report.get("sweep"):
        alpha = (report.get("config") or {}).get("alpha", 0.05)
        out += multi_adapter.holm_records(report["sweep"], len(report.get("adapters") or []), alpha)
    if report.get("across_seeds"):
        out += multi_adapter.across_seed_records(report["across_seeds"])
    return out


def conclusion_lines(report: dict, lang: str | None = None) -> list[str]:
    """One sentence per conclusion record; a report from before records keeps its stored sentences."""
    lang = lang_of(report, lang)
    records = records_of(report)
    if records is None:
        return [str(line) for line in report.get("conclusion") or []]
    positive, level = positive_label(report), ci_level(report)
    return [sentence(r, lang, positive=positive, level=level) for r in records]


def sentence(
    record: dict, lang: str, *, positive: str | None = None, level: str = "95%", with_delta: bool = True
) -> str:
    """One conclusion record in `lang`; a kind this version does not know shows its own text, if any."""
    kind = record.get("kind", "delta")
    if kind == "delta":
        return delta_sentence(record, lang, positive=positive, level=level, with_delta=with_delta)
    wording = {
        "same_head": lambda: table(lang, "conclusions")["same_head"].format(h=record.get("sha256")),
        "underpowered": lambda: underpowered_sentence(record, lang),
        "holm": lambda: holm_sentence(record, lang),
        "across_seeds": lambda: seed_sentence(record, lang),
        "seed_subspace": lambda: subspace_sentence(record, lang),
        "seed_churn": lambda: churn_sentence(record, lang),
    }.get(kind)
    return wording() if wording else str(record.get("text", record))


def delta_sentence(
    record: dict, lang: str, *, positive: str | None = None, level: str = "95%", with_delta: bool = True
) -> str:
    """A delta record (delta, metric, value, ci, p_value, test, verdict): the verdict with its CI and test."""
    text = table(lang, "conclusions")
    metric = metric_label(record["metric"], lang, positive)
    if record["verdict"] == "undefined":
        body = text["undefined"].format(m=metric, why=record.get("reason") or "undefined")
    else:
        ci = record.get("ci") or [None, None]
        p = (
            ""
            if record.get("p_value") is None
            else f", {test_name(record.get('test'), lang)} {fmt_p(record['p_value'])}"
        )
        significant = record["verdict"] in ("improved", "decreased")
        value = (
            fmt_pp(abs(record["value"]), signed=False, digits=1) if significant else fmt_pp(record["value"], digits=1)
        )
        lo, hi = (fmt_pp(c, unit=False, digits=1) for c in ci)
        body = text[record["verdict"]].format(m=metric, v=value, lo=lo, hi=hi, p=p, level=level)
    if not with_delta:
        return body[0].upper() + body[1:] if lang == "en" else body
    return f"{delta_name(record['delta'], lang)}{text['separator']}{body}"


def underpowered_sentence(r: dict, lang: str) -> str:
    """The smallest detectable difference exceeds the observed one: how many examples would settle it."""
    text = table(lang, "conclusions")
    avail = text["avail"].format(m=r["n_available"]) if r.get("exceeds_data") else ""
    if r.get("n_needed"):
        v = fmt_pp(abs(r["value"]), signed=False)
        need = text["grow"].format(v=v, n=r["n_needed"], k=r["growth"], avail=avail, n3=r["n_for_3pp"])
    else:
        need = text["grow3"].format(n3=r["n_for_3pp"], k=r["growth"], avail=avail)
    mde = fmt_pp(r["mde"], signed=False) if r.get("mde") else "n/a"
    return text["underpowered"].format(d=r["delta"], mde=mde, v=fmt_pp(abs(r["value"]), signed=False), need=need)


def holm_sentence(r: dict, lang: str) -> str:
    hits = list(r.get("significant") or [])
    return table(lang, "conclusions")["holm"].format(
        d=r["delta"],
        m=metric_label(r["metric"], lang),
        k=r["n_adapters"],
        s=len(hits),
        names=f" ({', '.join(hits)})" if hits else "",
    )


def seed_sentence(r: dict, lang: str) -> str:
    """Robust only when the two-level CI excludes 0; with fewer than 3 seeds the variance is unknown."""
    ci = r.get("ci") or [None, None]
    return table(lang, "conclusions")[r["verdict"]].format(
        k=r["n_seeds"],
        d=r["delta"],
        m=metric_label(r["metric"], lang),
        v=fmt_pp(r["mean"]),
        sd=fmt_pp(r.get("sd"), signed=False),
        lo=fmt_pp(ci[0]),
        hi=fmt_pp(ci[1]),
    )
