"""Do the seeds agree? report["seed_agreement"] worded: its two conclusion records and the section's lines.

Record kinds (report["conclusion_records"], after the across-seed records): seed_subspace (the subspace similarity
of the seeds' ΔW, mean over modules and pairs of seeds, beside its value for random directions) and seed_churn (how
often the seeds' B models predict differently). Note kinds (report["seed_agreement"]["notes"]): seed_weights_dora,
seed_weights_unshared.
"""

from __future__ import annotations

from lorafair.report.words.numbers import fmt_percent, fmt_seconds
from lorafair.report.words.vocabulary import table


def fmt_phi(value) -> str:
    """A subspace similarity (0..1) with three decimals; "n/a" for None."""
    return "n/a" if value is None else f"{value:.3f}"


def phi_fields(entry: dict) -> dict:
    """{el, er, rl, rr, tl, tr} (output / input side at each depth) and {cl, cr, crl, crr} (random directions)."""
    chance = entry.get("chance") or {}
    fields = {}
    for code, depth in (("e", "energy"), ("r", "rank"), ("t", "top1")):
        fields[f"{code}l"] = fmt_phi((entry.get("left") or {}).get(depth))
        fields[f"{code}r"] = fmt_phi((entry.get("right") or {}).get(depth))
    for code, depth in (("c", "energy"), ("cr", "rank")):
        fields[f"{code}l"] = fmt_phi((chance.get("left") or {}).get(depth))
        fields[f"{code}r"] = fmt_phi((chance.get("right") or {}).get(depth))
    return fields


def subspace_sentence(record: dict, lang: str) -> str:
    """seed_subspace: how alike the seeds' updates are, beside random directions."""
    return table(lang, "conclusions")["seed_subspace"].format(
        k=record["n_seeds"], modules=record["modules"], **phi_fields(record)
    )


def churn_sentence(record: dict, lang: str) -> str:
    """seed_churn: the share of examples on which B's prediction, and its being right, depends on the seed."""
    return table(lang, "conclusions")["seed_churn"].format(
        k=record["n_seeds"],
        n=record["n"],
        examples=record["examples"],
        share=fmt_percent(record["share"]),
        pairwise=fmt_percent(record["pairwise"]),
        cexamples=record["correct_examples"],
        cshare=fmt_percent(record["correct_share"]),
        cpairwise=fmt_percent(record["correct_pairwise"]),
    )


def note_sentence(note: dict, lang: str) -> str:
    text = table(lang, "seed_agreement")
    kind = note.get("kind")
    return text[kind].format(**{k: v for k, v in note.items() if k != "kind"}) if kind in text else str(note)


def weight_lines(block: dict, lang: str) -> list[str]:
    """The most and least alike layers, every pair of seeds, how φ was computed."""
    text, summary, lines = table(lang, "seed_agreement"), block.get("summary") or {}, []
    most, least = summary.get("most_alike"), summary.get("least_alike")
    if most and least:
        lines.append(
            text["alike"].format(
                layer=most["layer"], v=fmt_phi(most["value"]), layer2=least["layer"], v2=fmt_phi(least["value"])
            )
        )
    for pair in block.get("pairs") or []:
        a, b = pair["adapters"]
        lines.append(text["pair"].format(a=a, b=b, **phi_fields(pair)))
    if summary.get("modules"):
        lines.append(text["method"].format(energy=fmt_percent(summary.get("energy", 0.9), digits=0)))
    return lines


def churn_lines(block: dict, lang: str) -> list[str]:
    """Every pair of seeds' disagreement, and the examples right under every seed and under none."""
    text, churn = table(lang, "seed_agreement"), block.get("churn")
    if not churn:
        return []
    names = block.get("adapters") or []
    lines = []
    for (i, j), p, c in zip(churn["pairs"], churn["predictions"]["pairwise"], churn["correctness"]["pairwise"]):
        a, b = (names[i], names[j]) if max(i, j) < len(names) else (str(i), str(j))
        lines.append(text["churn_pair"].format(a=a, b=b, p=fmt_percent(p), c=fmt_percent(c)))
    lines.append(text["churn_all"].format(all=churn["all_correct"], none=churn["none_correct"], n=churn["n"]))
    return lines


def cost_line(block: dict, lang: str) -> str | None:
    seconds = block.get("seconds")
    if not seconds:
        return None
    return table(lang, "seed_agreement")["cost"].format(
        weights=fmt_seconds(seconds.get("weights")), churn=fmt_seconds(seconds.get("churn"))
    )


def agreement_lines(report: dict, lang: str) -> list[str]:
    """Every line of the seed-agreement section, after its per-layer table."""
    block = report.get("seed_agreement") or {}
    if not block:
        return []
    lines = weight_lines(block, lang) + churn_lines(block, lang)
    lines += [note_sentence(n, lang) for n in block.get("notes") or []]
    cost = cost_line(block, lang)
    return lines + ([cost] if cost else [])
