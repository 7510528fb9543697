"""report["analysis"] worded: the summary bullets (where LoRA changed the features) and the analysis notes.

Analysis note kinds (report["analysis"]["notes"]): analysis_layers, analysis_probes, analysis_probes_off,
analysis_cost, analysis_weights, analysis_dora, analysis_module_missing, analysis_intruders_skipped,
analysis_lora_probe_pass. A schema-1 report stored the notes as sentences: they are shown as they are.
"""

from __future__ import annotations

from lorafair.report.words.numbers import finite, fmt_pp, num
from lorafair.report.words.vocabulary import table

MIB = 2**20


def analysis_lines(report: dict, lang: str) -> list[str]:
    """The console/Markdown bullets (without "- "); [] when the run made no analysis."""
    block = report.get("analysis") or {}
    layers = block.get("layers") or []
    if not layers and not block.get("weights"):
        return []
    text = table(lang, "analysis")
    return [
        *_first_changed(block, text),
        _probe_gain(block, text),
        _top_modules(block, text),
        *_intruders(block, text),
        *_last_layer(layers, text),
    ]


def _first_changed(block: dict, text: dict) -> list[str]:
    layers, summary = block.get("layers") or [], block.get("summary") or {}
    first = summary.get("first_layer_cka_below") or {}
    threshold = first.get("threshold", 0.99)
    if first.get("layer") is None:
        return [text["never_changed"].format(t=threshold)] if layers else []
    r = next(r for r in layers if r["layer"] == first["layer"])
    cos = r["cosine"] if finite(r["cosine"]) else float("nan")
    return [text["first_changed"].format(t=threshold, layer=r["layer"], last=len(layers) - 1, cka=r["cka"], cos=cos)]


def _probe_gain(block: dict, text: dict) -> str:
    gain = (block.get("summary") or {}).get("largest_probe_gain")
    if not gain:
        return text["no_probe"]
    acc = next(r for r in block["layers"] if r["layer"] == gain["layer"])["probe_accuracy"]
    return text["gain"].format(
        layer=gain["layer"], gain=fmt_pp(gain["gain"], unit=False, digits=1), a=acc["A"], b=acc["B"]
    )


def _top_modules(block: dict, text: dict) -> str:
    top = (block.get("summary") or {}).get("top_modules_by_delta_norm_ratio") or []
    if not top:
        return text["no_weights"]
    return text["top"].format(modules=", ".join(f"{m['module']} ({m['delta_norm_ratio']:.4f})" for m in top))


def _intruders(block: dict, text: dict) -> list[str]:
    summary, weights = block.get("summary") or {}, block.get("weights") or []
    if summary.get("total_intruders") is None:
        return []
    missing = sum(1 for w in weights if w.get("intruders") is None)
    counted = summary.get("modules_with_intruders_counted", len(weights))
    skipped = text["skipped"].format(n=missing) if missing else ""
    return [text["intruders"].format(total=summary["total_intruders"], counted=counted, skipped=skipped)]


def _last_layer(layers: list[dict], text: dict) -> list[str]:
    if not layers:
        return []
    last = layers[-1]
    accuracy = last["probe_accuracy"]
    return [
        text["last"].format(
            layer=last["layer"],
            cka=num(last["cka"]),
            cos=num(last["cosine"]),
            a=num(accuracy.get("A"), 3),
            b=num(accuracy.get("B"), 3),
        )
    ]


def analysis_note_sentence(note, lang: str) -> str:
    """One report["analysis"]["notes"] record in `lang`; a plain string (schema 1) as it is."""
    if not isinstance(note, dict):
        return str(note)
    text, kind = table(lang, "analysis_notes"), note.get("kind")
    fields = {k: v for k, v in note.items() if k != "kind"}
    if kind == "analysis_layers":
        pooling = text.get(f"pool_{note['pooling']}", note["pooling"])
        fields.update(
            last=note["layers"] - 1, n=note["examples"], d=note["dim"], pooling=pooling, mib=note["bytes"] / MIB
        )
    elif kind == "analysis_probes":
        part = note["examples"] < note["probe_examples"]
        fields["subset"] = text["probe_subset"].format(of=note["probe_examples"]) if part else text["probe_all"]
        fields["n"] = note["examples"]
    elif kind == "analysis_cost":
        return _cost_sentence(note["seconds"], text)
    return text[kind].format(**fields) if kind in text else str(note.get("text", note))


def _cost_sentence(seconds: dict, text: dict) -> str:
    parts = text["list_separator"].join(
        text["cost_part"].format(what=text.get(k, k.replace("_", " ")), s=v) for k, v in seconds.items() if k != "total"
    )
    return text["analysis_cost"].format(total=seconds["total"], parts=parts)


def analysis_note_lines(report: dict, lang: str) -> list[str]:
    return [analysis_note_sentence(n, lang) for n in (report.get("analysis") or {}).get("notes") or []]
