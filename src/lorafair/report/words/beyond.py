"""report["beyond_task"] worded: what LoRA changed beyond the task, on out-of-domain text (--ood-data).

Reason records (report["beyond_task"]["reason"]): kind lm_skipped (reason encoder, no_lm_head, no_safetensors,
logit_transform, shape, no_next_token) or ood_skipped (reason no_lora_variant, distributed). Note kinds
(report["beyond_task"]["notes"]): ood_shared_trunk, ood_trunk_too_large, ood_cost.
"""

from __future__ import annotations

from lorafair.report.words.numbers import finite, fmt_percent, num
from lorafair.report.words.vocabulary import table

GIB = 2**30


def beyond_task_lines(report: dict, lang: str) -> list[str]:
    """The console/Markdown bullets (without "- "): the text, the layers, the next-token figures or why there are
    none; [] when the run had no --ood-data."""
    block = report.get("beyond_task")
    if not block:
        return []
    text = table(lang, "beyond_task")
    lines = [_data_line(block.get("data") or {}, text)]
    if block.get("layers"):
        lines.append(_layers_line(block["layers"], (report.get("analysis") or {}).get("layers") or [], text))
    if block.get("lm"):
        lines.append(_lm_line(block["lm"], text))
    if block.get("reason"):
        lines.append(reason_sentence(block["reason"], lang))
    return lines


def _data_line(data: dict, text: dict) -> str:
    return text["data"].format(
        n=data.get("n", "?"),
        available=data.get("n_available", "?"),
        source=data.get("source", "?"),
        tokens=data.get("tokens", "?"),
    )


def _layers_line(layers: list[dict], task_layers: list[dict], text: dict) -> str:
    last = layers[-1]
    defined = [r for r in layers if finite(r.get("cka"))]
    low = min(defined, key=lambda r: (r["cka"], r["layer"])) if defined else {"cka": None, "layer": "?"}
    task = next((r.get("cka") for r in task_layers if r.get("layer") == last["layer"]), None)
    fields = dict(
        layer=last["layer"],
        cka=num(last.get("cka")),
        cos=num(last.get("cosine")),
        low=num(low["cka"]),
        low_layer=low["layer"],
        task=num(task),
    )
    return text["layers_task" if finite(task) else "layers"].format(**fields)


def _lm_line(lm: dict, text: dict) -> str:
    quantiles = lm.get("kl_per_token_quantiles") or {}
    base, lora = lm.get("perplexity_base"), lm.get("perplexity_lora")
    change = lora / base - 1 if finite(base) and finite(lora) and base else None
    return text["lm"].format(
        tokens=lm.get("tokens", "?"),
        kl=_g(lm.get("kl_mean")),
        p50=_g(quantiles.get("p50")),
        p90=_g(quantiles.get("p90")),
        max=_g(quantiles.get("max")),
        ppl_base=num(base, 2),
        ppl_lora=num(lora, 2),
        change=fmt_percent(change, signed=True),
    )


def _g(value) -> str:
    """A KL in nats: four significant digits (they span 1e-6 to 1 between adapters)."""
    return f"{value:.4g}" if finite(value) else "n/a"


def reason_sentence(reason: dict, lang: str) -> str:
    """Why there is no next-token figure, or no out-of-domain figure at all."""
    text = table(lang, "beyond_notes")
    code = reason.get("reason")
    if code not in text:
        return str(code)
    tied = text["tied"] if reason.get("detail") == "tied" else ""
    return text[code].format(detail=reason.get("detail"), tied=tied)


def beyond_note_sentence(note: dict, lang: str) -> str:
    text, kind = table(lang, "beyond_notes"), note.get("kind")
    if kind == "ood_shared_trunk":
        if not note.get("shared"):
            return text["ood_no_shared_trunk"].format(total=note.get("total", "?"))
        return text[kind].format(last=note["shared"] - 1, total=note.get("total", "?"))
    if kind == "ood_trunk_too_large":
        return text[kind].format(gib=note["bytes"] / GIB)
    if kind == "ood_cost":
        seconds = note.get("seconds") or {}
        parts = text["list_separator"].join(
            text["cost_part"].format(what=text.get(k, k), s=v) for k, v in seconds.items() if k != "total"
        )
        return text[kind].format(total=seconds.get("total", 0.0), parts=parts)
    return str(note)


def beyond_note_lines(report: dict, lang: str) -> list[str]:
    return [beyond_note_sentence(n, lang) for n in (report.get("beyond_task") or {}).get("notes") or []]
