"""From per-variant probabilities to the report dict: metrics, CIs, paired tests, conclusions.

Free of torch: every number here comes from `metrics` and `stats`, so it can be recomputed from
`predictions.csv` alone. The conclusion claims an effect only when the CI excludes 0 *and* the
paired test (where there is one) agrees at alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lorafair.core.names import HEADLINE_METRICS
from lorafair.report import words
from lorafair.report.schema import SCHEMA_VERSION
from lorafair.stats import diagnosis, flips, metrics, multi_adapter, power, seed_agreement, verdicts
from lorafair.stats import paired as stats

SPEED_TOLERANCE = 0.05
FLIP_TOLERANCE = 0.005  # merged vs unmerged B: more prediction flips than this is a check


def _variant_block(name, y, probs, head_sha, speed, pos_label, num_labels, label_names):
    pred = probs.argmax(axis=1)
    block = {
        "name": name,
        "head_sha256": head_sha,
        "metrics": metrics.compute_metrics(y, probs, pos_label=pos_label),
        "confusion_matrix": metrics.confusion_matrix(y, pred, num_labels),
        "per_class": metrics.per_class_report(y, pred, num_labels, label_names),
        "curves": {
            "roc": metrics.roc_points(y, probs, pos_label=pos_label),
            "reliability": metrics.reliability_bins(y, probs),
        },
    }
    if speed:
        block["speed"] = speed
    return block


def _delta_entry(metric, ref, new, y, probs, pair, pos_label):
    ref_value, new_value = ref["metrics"][metric]["value"], new["metrics"][metric]["value"]
    if ref_value is None or new_value is None:
        why = (new["metrics"][metric] if new_value is None else ref["metrics"][metric]).get("reason", "undefined")
        return {"value": None, "reason": why, "relative": None, "ci": None, "p_value": None, "test": None}
    entry = {
        "value": new_value - ref_value,
        "relative": stats.relative_gain(new_value - ref_value, ref_value),
        "ci": None,
        "p_value": None,
        "test": "bootstrap",
    }
    new_id, ref_id = pair
    if metric == "accuracy":
        correct = {v: probs[v].argmax(axis=1) == y for v in pair}
        test = stats.mcnemar_exact(correct[ref_id], correct[new_id])
        entry.update(p_value=test["p_value"], test="mcnemar", discordant=[test["b"], test["c"]])
    elif metric == "auc_roc" and probs[new_id].shape[1] == 2 and len(np.unique(y)) == 2:
        try:
            test = stats.delong_test(
                (y == pos_label).astype(int), probs[new_id][:, pos_label], probs[ref_id][:, pos_label]
            )
            entry.update(p_value=test["p_value"], test="delong")
        except ValueError as exc:  # too few examples of a class for the variance estimate
            entry.update(test="delong", reason=str(exc))
    return entry


@dataclass
class ReportInput:
    """Everything `build_report` needs, gathered by the comparison (torch-free: arrays and plain dicts)."""

    cfg: object  # CompareConfig: pos_label, bootstrap, alpha, seed, lang and the config echoed in the report
    variants: list  # variant ids in report order, e.g. ["B", "A", "A1", "R"]
    y: np.ndarray  # true label ids of the evaluation sample
    probs: dict  # variant id -> (n, K) class probabilities
    heads: dict  # variant id -> SHA-256 of its head tensors
    speed: dict  # variant id -> speed block (timed variants only)
    data: dict  # the report's "data" section
    environment: dict
    deltas: tuple  # (new, reference) pairs, e.g. (("B", "A"), ...)
    names: dict | None = None  # variant id -> display name (None: the standard names in the run's language)
    passes: list = field(default_factory=list)  # forward-pass records, for the report's "forward_passes"
    notes: list = field(default_factory=list)  # note records (report.words words them)
    head_name: str | None = None
    head: dict | None = None  # {"modules", "tensors", "sha256", "features"} (see run_info.head_section)
    fidelity: dict | None = None  # merged vs unmerged B (see fidelity.measure)
    speed_section: dict | None = None  # report["speed"]: like-for-like A and full merged B (evaluation/speed.py)
    task_checks: list | None = None  # adapter_data.task_records, computed by the recipe (None: a sweep's top level)
    texts: list | None = None  # the evaluated texts, in y's order (report["flips"] quotes the most changed ones)
    token_lengths: np.ndarray | None = None  # tokens per evaluated example (report["flips"]'s length quartiles)


def build_report(inp: ReportInput) -> dict:
    """The report dict of one comparison: metrics and CIs per variant, paired deltas, statements as records."""
    cfg = inp.cfg
    data = {**inp.data, **positive_label_fields(cfg.pos_label, inp.data["labels"])}
    blocks, delta_blocks = _variant_and_delta_blocks(inp, data)
    if "A1" in blocks:  # no probe data: A1 cross-fitted on the evaluation set itself (a "probe_cross_fitted" note)
        blocks["A1"]["cross_fitted"] = any(
            isinstance(n, dict) and n.get("kind") == "probe_cross_fitted" for n in inp.notes
        )
    report = {
        "schema_version": SCHEMA_VERSION,
        "config": dict(vars(cfg)),
        "environment": inp.environment,
        "data": data,
        "head": _head_section(inp),
        "variants": blocks,
        "deltas": delta_blocks,
        "forward_passes": inp.passes,
        "notes": list(inp.notes),  # dropped/truncated rows are worded from report["data"]
    }
    if inp.fidelity is not None:
        report["fidelity"] = inp.fidelity
    if inp.speed_section is not None:
        report["speed"] = inp.speed_section
    power.annotate_report(report, cfg.alpha)  # "mde" / "n_for_3pp" per accuracy delta; report["power"]
    flip_block = flips_section(inp, blocks)
    if flip_block is not None:
        report["flips"] = flip_block
    if inp.task_checks is not None:  # one adapter: is the evaluation data the task it recorded? (a sweep: each)
        report["task_checks"] = list(inp.task_checks)
    add_conclusions(report, cfg.alpha)
    return report


def _variant_and_delta_blocks(inp: ReportInput, data: dict) -> tuple[dict, dict]:
    """report["variants"] and report["deltas"], with the paired bootstrap's CIs where it ran."""
    cfg, y, probs = inp.cfg, inp.y, inp.probs
    names = inp.names or words.variant_names(cfg.lang)
    num_labels, pos_label = len(data["labels"]), data["positive_label_id"]  # None for multi-class (macro)
    metric_pos = pos_label if pos_label is not None else 1  # unused by the metrics when K > 2
    blocks = {
        v: _variant_block(
            names.get(v, v), y, probs[v], inp.heads.get(v), inp.speed.get(v), metric_pos, num_labels, data["labels"]
        )
        for v in inp.variants
    }
    pairs = [p for p in inp.deltas if p[0] in blocks and p[1] in blocks]
    delta_blocks = {
        f"{a}-{b}": {
            m: _delta_entry(m, blocks[b], blocks[a], y, probs, (a, b), metric_pos) for m in metrics.METRIC_NAMES
        }
        for a, b in pairs
    }
    if cfg.bootstrap > 0:
        _add_bootstrap_cis(inp, blocks, delta_blocks, pairs, metric_pos)
    return blocks, delta_blocks


def _add_bootstrap_cis(inp: ReportInput, blocks: dict, delta_blocks: dict, pairs: list, pos_label: int) -> None:
    """One paired resample matrix for every metric of every variant and delta; CIs of defined values only."""
    cfg = inp.cfg
    probs = {v: inp.probs[v] for v in inp.variants}
    boot = stats.paired_bootstrap(
        inp.y, probs, pairs, n_resamples=cfg.bootstrap, seed=cfg.seed, alpha=cfg.alpha, pos_label=pos_label
    )
    for v in inp.variants:
        for m, ci in boot["variants"][v].items():
            if blocks[v]["metrics"][m]["value"] is not None:
                blocks[v]["metrics"][m]["ci"] = ci
    for key, per_metric in boot["deltas"].items():
        for m, ci in per_metric.items():
            if delta_blocks[key][m]["value"] is not None:
                delta_blocks[key][m]["ci"] = ci


def _head_section(inp: ReportInput) -> dict:
    head = dict(inp.head or {"modules": [inp.head_name] if inp.head_name else []})
    head.setdefault("module", " + ".join(head.get("modules", [])))  # one string, for older renderers
    head["A_equals_B"] = inp.heads.get("A") is not None and inp.heads.get("A") == inp.heads.get("B")
    return head


def positive_label_fields(pos_label, label_names) -> dict:
    """report["data"]'s positive class: its name and id for a binary task, None for multi-class."""
    if len(label_names) != 2:
        return {"positive_label": None, "positive_label_id": None}
    from lorafair.config import resolve_pos_label

    index = resolve_pos_label(pos_label, label_names)
    return {"positive_label": str(label_names[index]), "positive_label_id": index}


def add_conclusions(report: dict, alpha: float) -> None:
    """The verdict of every delta, the conclusion and check records, and their English for scripts."""
    for per_metric in report["deltas"].values():
        for entry in per_metric.values():
            entry["verdict"] = verdicts.verdict(entry, alpha)
    report["conclusion_records"] = conclusion_records(report, alpha)
    report["check_records"] = check_records(report)
    word_for_scripts(report)


def add_sweep_conclusions(report: dict, n_adapters: int, alpha: float) -> None:
    """A sweep's statements: Holm across its adapters and, for a seed set, the across-seed result per delta and
    whether the seeds agree (their LoRA updates' directions, their B predictions)."""
    report["conclusion_records"] += multi_adapter.holm_records(report["sweep"], n_adapters, alpha)
    report["conclusion_records"] += multi_adapter.across_seed_records(report.get("across_seeds") or {})
    report["conclusion_records"] += seed_agreement.agreement_records(report.get("seed_agreement"))
    word_for_scripts(report)


def word_for_scripts(report: dict) -> None:
    """report["conclusion"] and report["checks"]: the English of the records, made here and nowhere else, after
    the last record is added, so that the sentences a script reads can never disagree with the records."""
    report["conclusion"] = words.conclusion_lines(report, "en")
    report["checks"] = words.check_lines(report, "en")


def conclusion_records(report: dict, alpha: float) -> list[dict]:
    """The proof that A and B run one head, one delta record per delta and headline metric (the numbers a
    conclusion sentence is built from), then the deltas too small a sample cannot settle (report["power"])."""
    records = []
    if report["head"].get("A_equals_B"):
        records.append({"kind": "same_head", "sha256": report["variants"]["A"]["head_sha256"]})
    for key, per_metric in report["deltas"].items():
        for metric in HEADLINE_METRICS:
            entry = per_metric[metric]
            records.append(
                {
                    "kind": "delta",
                    "delta": key,
                    "metric": metric,
                    "value": entry["value"],
                    "ci": entry.get("ci"),
                    "p_value": entry.get("p_value"),
                    "test": entry.get("test"),
                    "alpha": alpha,
                    "verdict": verdicts.verdict(entry, alpha),
                    "reason": entry.get("reason"),
                }
            )
    return records + [dict(r) for r in report.get("power") or []]


def check_records(report: dict) -> list[dict]:
    """The seed's sanity hints: QPS of A and B more than 5% apart; merged B predicting unlike the trained model;
    labels of the head absent from the evaluation sample; the task checks. (What to try next given the figures is
    report["diagnosis"], add_diagnosis.)"""
    checks = []
    checks += speed_checks(report)
    fid = report.get("fidelity") or {}
    checked, flips = fid.get("checked_examples") or 0, fid.get("prediction_flips") or 0
    if checked and flips / checked > FLIP_TOLERANCE:  # B is timed merged: it must predict like the trained model
        checks.append(
            {
                "kind": "fidelity",
                "flips": flips,
                "checked": checked,
                "tolerance": FLIP_TOLERANCE,
                "max_abs_logit_diff": fid.get("merged_vs_unmerged_max_abs_logit_diff"),
                "merge_dtype": fid.get("merge_dtype"),
            }
        )
    checks += dtype_checks(fid)
    absent = absent_labels(report["data"])
    if absent:  # scores that say nothing about a class the head predicts, with or without lorafair_run.json
        checks.append({"kind": "absent_labels", "labels": absent, "n_labels": len(report["data"]["labels"])})
    return checks + list(report.get("task_checks") or [])


def dtype_checks(fid: dict) -> list[dict]:
    """bf16 (chosen as faster) predicting unlike fp32 on more than FLIP_TOLERANCE of the fidelity sample."""
    low = fid.get("bf16_vs_fp32") or {}
    checked, flips = low.get("checked") or 0, low.get("flips") or 0
    if checked and flips / checked > FLIP_TOLERANCE:
        return [{"kind": "dtype_flips", "flips": flips, "checked": checked, "tolerance": FLIP_TOLERANCE}]
    return []


def speed_checks(report: dict) -> list[dict]:
    """A and B apart in speed, only as measured like for like (both full passes over the same sample): B's
    shared-trunk pass and a cached frozen pass are lorafair's cost, not the models' speed."""
    lfl = (report.get("speed") or {}).get("like_for_like") or {}
    diff = lfl.get("difference")
    if diff is None:
        return []
    report.setdefault("speed_difference", diff)
    return [{"kind": "speed", "value": diff, "tolerance": SPEED_TOLERANCE}] if abs(diff) > SPEED_TOLERANCE else []


def add_diagnosis(report: dict, run_metadata=None) -> None:
    """report["training"] (the adapter's recorded training, from its lorafair_run.json as data/run_metadata reads
    it; absent without one) and report["diagnosis"]: call it after the last figure (analysis, beyond_task) is in."""
    training = diagnosis.training_summary(run_metadata, (report.get("config") or {}).get("alpha", 0.05))
    if training is not None:
        report["training"] = training
    report["diagnosis"] = diagnosis.diagnose(report)


def absent_labels(data: dict) -> list[str]:
    """The head's labels with no example in the evaluation sample (report["data"]["label_counts"])."""
    counts = {str(k): v for k, v in (data.get("label_counts") or {}).items()}
    return [str(label) for label in data.get("labels") or [] if counts.get(str(label)) == 0]


# -- which examples changed (report["flips"]) ---------------------------------------------------------------
FLIP_TOP = 10  # the most fixed and most broken examples quoted per pair
FLIP_TEXT_CHARS = 300  # quoted texts are cut here, to keep report.json small


def flip_pairs(deltas, variants) -> list[tuple[str, str]]:
    """The pairs whose changed examples are shown: B against each reference that ran (B - A, B - A1)."""
    return [(new, ref) for new, ref in deltas if new == "B" and new in variants and ref in variants]


def flips_section(inp: ReportInput, blocks: dict) -> dict | None:
    """report["flips"]: per pair B - ref the paired 2x2 table, the flip rates with Wilson CIs and the most changed
    examples; slices of accuracy by true class and by token-length quartile. None without such a pair."""
    pairs = flip_pairs(inp.deltas, blocks)
    if not pairs:
        return None
    cfg, y = inp.cfg, np.asarray(inp.y)
    sliced = {v: inp.probs[v] for v in inp.variants if v in ("B", "A", "A1")}
    return {
        "alpha": cfg.alpha,
        "top": FLIP_TOP,
        "text_chars": FLIP_TEXT_CHARS,
        "pairs": {f"{new}-{ref}": _flip_pair(inp, blocks, new, ref) for new, ref in pairs},
        "slices": flips.slices(
            y, sliced, pairs, inp.data["labels"], inp.token_lengths, cfg.alpha, cfg.bootstrap, cfg.seed
        ),
    }


def _flip_pair(inp: ReportInput, blocks: dict, new: str, ref: str) -> dict:
    y = np.asarray(inp.y)
    probs_new, probs_ref = inp.probs[new], inp.probs[ref]
    table = flips.paired_table(probs_ref.argmax(axis=1) == y, probs_new.argmax(axis=1) == y)
    changed = flips.changed_examples(y, probs_ref, probs_new)
    return {
        "new": new,
        "reference": ref,
        "reference_cross_fitted": bool(blocks[ref].get("cross_fitted")),
        "table": table,
        "negative_flip_rate": flips.flip_rate(table["only_reference_right"], table["n"], inp.cfg.alpha),
        "positive_flip_rate": flips.flip_rate(table["only_new_right"], table["n"], inp.cfg.alpha),
        "fixed": [_flip_example(inp, row, probs_ref, probs_new) for row in changed["fixed"][:FLIP_TOP]],
        "broken": [_flip_example(inp, row, probs_ref, probs_new) for row in changed["broken"][:FLIP_TOP]],
    }


def _flip_example(inp: ReportInput, row: int, probs_ref: np.ndarray, probs_new: np.ndarray) -> dict:
    labels, true = inp.data["labels"], int(inp.y[row])
    text = inp.texts[row] if inp.texts is not None else None
    return {
        "index": int(inp.data["indices"][row]),
        "label": str(labels[true]),
        "predicted_reference": str(labels[int(probs_ref[row].argmax())]),
        "predicted_new": str(labels[int(probs_new[row].argmax())]),
        "p_true_reference": float(probs_ref[row, true]),
        "p_true_new": float(probs_new[row, true]),
        "tokens": int(inp.token_lengths[row]) if inp.token_lengths is not None else None,
        "text": None if text is None else str(text)[:FLIP_TEXT_CHARS],
        "text_truncated": text is not None and len(str(text)) > FLIP_TEXT_CHARS,
    }
