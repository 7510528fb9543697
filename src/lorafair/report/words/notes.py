"""The notes: report["notes"] records, the forward passes, the head's features and the data losses, worded.

Note kinds (report["notes"]): probe_data, probe_training_rows, probe_eval_rest, probe_skipped, probe_fit,
probe_cross_fitted, probe_fold_fits (A1's data and fit), a1_absent (no A1, and why), shared_trunk, trunk_too_large
(B's shared layers), cache_off, cache_write_failed (the feature cache), sweep_member, sweep_a_from_features,
sweep_base_restored, no_seed_set (sweeps). Forward-pass kinds (report["forward_passes"]): frozen_eval, frozen_probe,
lora_unmerged, lora_eval. A schema-1 report stored plain sentences (notes) and a "what" (passes): they are shown
as they are.
"""

from __future__ import annotations

from lorafair.report.words.numbers import fmt_percent
from lorafair.report.words.vocabulary import table

GIB = 2**30
CACHED_PASSES = ("frozen_eval", "frozen_probe")  # the passes the feature cache can serve
ROWS_SHOWN = 10  # a held-out part's rows named in the text; the rest are in report.json (data.held_out)


def note_sentence(note, lang: str) -> str:
    """A note record in `lang`; a plain string (schema 1) as it is."""
    if not isinstance(note, dict):
        return str(note)
    text, kind = table(lang, "notes"), note.get("kind")
    fields = {k: v for k, v in note.items() if k != "kind"}
    if kind == "probe_data":
        fields["origin"] = text["probe_option" if note.get("origin") == "option" else "probe_recorded"]
    elif kind == "probe_training_rows" and note.get("examples") != note.get("trained"):
        kind = "probe_training_part"
    elif kind == "shared_trunk":
        return trunk_sentence(note, lang)
    elif kind == "trunk_too_large":
        fields["gib"] = note["bytes"] / GIB
    elif kind in ("a1_absent", "probe_fold_fits"):
        fields.update(a1_fields(note, text))
    return text[kind].format(**fields) if kind in text else str(note.get("text", note))


def a1_fields(note: dict, text: dict) -> dict:
    """Why A1 is absent (a1_absent), or the C and inner accuracy of every fold of a cross-fitted A1 (probe_fold_fits)."""
    if note["kind"] == "a1_absent":
        return {"why": text.get(f"a1_{note.get('reason')}", str(note.get("reason")))}
    return {
        "C": ", ".join(f"{c:.4g}" for c in note.get("C") or []),
        "cv_accuracy": ", ".join(f"{a:.3f}" for a in note.get("cv_accuracy") or []),
    }


def trunk_sentence(note: dict, lang: str) -> str:
    """How many layers B's pass took from the frozen pass, and why not more (models/trunk.py's reasons)."""
    text = table(lang, "notes")
    if note.get("reason") == "cached_without_trunk":
        return text["trunk_cached"].format(layer=note.get("detail"))
    why = table(lang, "trunk_reasons").get(note.get("reason"), str(note.get("reason")))
    why = why.format(detail=note.get("detail"), shared=note.get("shared"))
    if note.get("shared"):
        return text["trunk_shared"].format(last=note["shared"] - 1, total=note.get("total"), why=why)
    return text["trunk_none"].format(why=why)


def pass_what(entry: dict, lang: str) -> str:
    """What a forward pass was: its kind, the layers it shared, whether it was cached, its adapter (sweeps)."""
    if "kind" not in entry:  # schema 1: the sentence itself
        return str(entry.get("what", "?"))
    text, kind = table(lang, "passes"), entry["kind"]
    what = text.get(kind, kind)
    k = entry.get("shared_layers") if kind in ("lora_eval", "ood_lora") else 0  # its kind's fields (report/schema.py)
    if k:
        total = entry.get("total_layers")
        what += text["shared"].format(first=k, last=total - 1 if total else "?", k=k - 1)
    if kind in CACHED_PASSES and entry.get("cached"):
        what += text["cached"]
    if entry.get("adapter"):
        what += text["adapter"].format(adapter=entry["adapter"])
    return what


def pass_sentence(entry: dict, lang: str) -> str:
    return table(lang, "notes")["pass"].format(what=pass_what(entry, lang), n=entry.get("examples", "?"))


def features_sentence(features, lang: str) -> str:
    """report["head"]["features"]: what A1 and R are given (a record; schema 1: the sentence)."""
    if not isinstance(features, dict):
        return str(features)
    text = table(lang, "features")
    module = features.get("module") or text["the_head"]
    pooling = features.get("pooling")
    if pooling in ("last_non_pad", "first"):
        return text[pooling].format(module=module)
    what = text.get(features.get("model_type") or "", text["other_model"])
    what = what.format(model_class=features.get("model_class"), pooling=features.get("classifier_pooling") or "cls")
    return text["vector"].format(what=what, module=module)


def data_loss_lines(report: dict, lang: str) -> list[str]:
    """Rows dropped while loading, examples truncated at --max-length (from report["data"])."""
    text, data, lines = table(lang, "notes"), report.get("data") or {}, []
    if data.get("dropped_rows"):
        lines.append(text["dropped"].format(n=data["dropped_rows"]))
    if data.get("truncated"):
        share = fmt_percent(data.get("truncated_share", 0))
        max_length = (report.get("config") or {}).get("max_length", "?")
        lines.append(text["truncated"].format(n=data["truncated"], share=share, m=max_length))
    return lines


def held_out_what(report: dict, lang: str) -> str | None:
    """Which rows of which training file the evaluation examples are, when they are the part `lorafair train` held
    out (report["data"]["held_out"]); None for any other data."""
    held = (report.get("data") or {}).get("held_out")
    if not held:
        return None
    rows = sorted(held["evaluated_rows"])
    shown = ", ".join(map(str, rows[:ROWS_SHOWN])) + (", …" if len(rows) > ROWS_SHOWN else "")
    return table(lang, "notes")["held_out_what"].format(n=len(rows), held=held["n"], file=held["from"], rows=shown)


def held_out_lines(report: dict, lang: str) -> list[str]:
    what = held_out_what(report, lang)
    return [] if what is None else [table(lang, "notes")["held_out"].format(what=what)]


def head_lines(report: dict, lang: str) -> list[str]:
    """The head's modules, the features A1 and R are given, merged vs unmerged B."""
    text, head, lines = table(lang, "notes"), report.get("head") or {}, []
    if head.get("modules"):
        lines.append(text["modules"].format(m=", ".join(map(str, head["modules"]))))
    if head.get("features"):
        lines.append(text["features"].format(f=features_sentence(head["features"], lang)))
    fid = report.get("fidelity") or {}
    if fid.get("merged_vs_unmerged_max_abs_logit_diff") is not None:
        lines.append(
            text["fidelity"].format(
                dtype=fid.get("merge_dtype", "?"),
                n=fid.get("checked_examples", "?"),
                d=fid["merged_vs_unmerged_max_abs_logit_diff"],
                flips=fid.get("prediction_flips", "?"),
            )
        )
    return lines


def note_lines(report: dict, lang: str) -> list[str]:
    """Every note of the console and Markdown: the run's notes, the held-out rows evaluated, data loss, head,
    fidelity, forward passes."""
    lines = [note_sentence(n, lang) for n in report.get("notes") or []]
    lines += held_out_lines(report, lang) + data_loss_lines(report, lang) + head_lines(report, lang)
    return lines + [pass_sentence(p, lang) for p in report.get("forward_passes") or []]
