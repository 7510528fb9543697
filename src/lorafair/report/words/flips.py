"""report["flips"] worded: the flip-rate lines, how the CIs are made, and the headers of the flips tables.

The tables themselves are laid out by report/flips_sections.py (console, Markdown, HTML); every string comes
from the "flips" block of en.py / zh.py.
"""

from __future__ import annotations

from lorafair.report.words.numbers import ci_text, fmt_percent, fmt_pp_ci
from lorafair.report.words.vocabulary import table, variant_name


def pair_name(key: str) -> str:
    """ "B-A" -> "B - A" (the pair as the gain tables write it)."""
    return key.replace("-", " - ")


def percent_ci(ci) -> str:
    """A CI of a share in percent ("[2.1%, 5.0%]"); "-" where there is none."""
    if not ci or ci[0] is None:
        return "-"
    return f"[{fmt_percent(ci[0])}, {fmt_percent(ci[1])}]"


def flip_lines(report: dict, lang: str) -> list[str]:
    """Per pair its negative flip rate with the CI and the fixed count; then how the CIs are made and notes on a
    cross-fitted reference; [] without report["flips"]."""
    block, text = report.get("flips") or {}, table(lang, "flips")
    pairs = block.get("pairs") or {}
    lines = []
    for key, pair in pairs.items():
        nfr, pfr = pair["negative_flip_rate"], pair["positive_flip_rate"]
        lines.append(
            text["nfr_line"].format(
                pair=pair_name(key),
                rate=fmt_percent(nfr["value"]),
                ci=percent_ci(nfr["ci"]),
                count=nfr["count"],
                n=nfr["n"],
                ref=pair["reference"],
                new=pair["new"],
                fixed_rate=fmt_percent(pfr["value"]),
                fixed=pfr["count"],
            )
        )
    if pairs:
        level = f"{(1 - block.get('alpha', 0.05)) * 100:g}%"
        has_delta_ci = (block.get("slices") or {}).get("delta_ci") is not None
        lines.append(text["method" if has_delta_ci else "method_no_bootstrap"].format(level=level))
    lines += [text["cross_fitted"].format(ref=p["reference"]) for p in pairs.values() if p["reference_cross_fitted"]]
    return lines


def table_headers(report: dict, lang: str) -> dict:
    """The headers of the flips tables, with the variants' names filled in."""
    text = table(lang, "flips")
    return {
        "paired": [
            text["pair"],
            text["both_right"],
            text["only_new_right"].format(new="B"),
            text["only_reference_right"],
            text["both_wrong"],
            text["nfr"],
        ],
        "accuracy_of": lambda v: text["accuracy_of"].format(v=v),
        "delta_pp": lambda key: text["delta_pp"].format(pair=pair_name(key)),
        "prf_of": lambda v: text["prf_of"].format(v=variant_label(report, v, lang)),
    }


def variant_label(report: dict, v: str, lang: str) -> str:
    return f"{v} ({variant_name(v, (report.get('variants') or {}).get(v), lang)})"


def slice_cell(entry: dict | None, delta: bool = False):
    """(value, CI) of a slice's accuracy (4 digits) or delta (percentage points); "n/a" when the slice is empty."""
    if not entry or entry.get("value") is None:
        return "n/a"
    if delta:
        return (f"{entry['value'] * 100:+.2f}", fmt_pp_ci(entry.get("ci")))
    return (f"{entry['value']:.4f}", ci_text(entry.get("ci")))


def examples_title(key: str, pair: dict, direction: str, lang: str) -> str:
    """ "B - A: fixed by LoRA, top 10 by rise of p(true class) (15 in all)"."""
    count = pair["table"]["only_new_right" if direction == "fixed" else "only_reference_right"]
    return table(lang, "flips")[f"{direction}_title"].format(pair=pair_name(key), k=len(pair[direction]), count=count)
