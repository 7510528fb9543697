"""Speed like for like and the measured dtype, worded: report["speed"], environment.dtype_choice, and the
dtype_flips check record (bf16 predicting unlike fp32 on the fidelity sample).

    speed_lines(report, lang)      the speed section's lines under its table
    dtype_line(environment, lang)  how the dtype was chosen (None when it was simply the option)
    dtype_flips_sentence(record, lang)
"""

from __future__ import annotations

from lorafair.report.words.numbers import fmt_percent, fmt_seconds
from lorafair.report.words.vocabulary import table


def speed_lines(report: dict, lang: str) -> list[str]:
    section, text = report.get("speed") or {}, table(lang, "speed_dtype")
    lines = []
    lfl = section.get("like_for_like")
    if lfl:
        match = lfl["b_vs_shared_trunk"]
        lines.append(
            text["like_for_like"].format(
                n=lfl["examples"], b=lfl["batches"], m=match["prediction_mismatches"], d=match["max_abs_logit_diff"]
            )
        )
    elif section.get("reason"):
        lines.append(text[f"no_like_for_like_{section['reason']}"])
    a_pass, b_pass = section.get("a_pass") or {}, section.get("b_pass") or {}
    if a_pass.get("cached"):
        lines.append(text["a_cached"])
    if b_pass.get("shared_layers"):
        lines.append(
            text["b_shared"].format(
                s=b_pass["shared_layers"], t=b_pass.get("total_layers") or "?", sec=fmt_seconds(b_pass["seconds"])
            )
        )
    return lines


def dtype_line(environment: dict, lang: str) -> str | None:
    choice, text = environment.get("dtype_choice") or {}, table(lang, "speed_dtype")
    source = choice.get("source")
    if source in ("measured", "cached"):
        return text[f"dtype_{source}"].format(
            dtype=choice["dtype"],
            mm=f"{choice['matmul_speedup']:.2f}",
            att=f"{choice['attention_speedup']:.2f}",
            layer=f"{choice.get('layer_speedup', min(choice['matmul_speedup'], choice['attention_speedup'])):.2f}",
            thr=f"{choice['threshold']:g}",
            sec=fmt_seconds(choice["seconds"]),
        )
    if source == "forced":
        return text["dtype_forced"].format(dtype=choice["dtype"])
    return None


def dtype_flips_sentence(record: dict, lang: str) -> str:
    return table(lang, "speed_dtype")["dtype_flips"].format(
        f=record["flips"], n=record["checked"], tol=fmt_percent(record["tolerance"])
    )
