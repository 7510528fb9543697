"""From per-variant probabilities to the report dict: metrics, CIs, paired tests, conclusions.

Free of torch: every number here comes from `metrics` and `stats`, so it can be recomputed from
`predictions.csv` alone. The conclusion claims an effect only when the CI excludes 0 *and* the
paired test (where there is one) agrees at alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lorafair import metrics, power, stats

SCHEMA_VERSION = 1
HEADLINE = ("accuracy", "f1", "auc_roc")  # metrics that get a conclusion line
# The seed's expected ranges for B - A (fractions) and the hints it gave when a run falls outside.
SEED_RANGES = {"accuracy": (0.03, 0.08), "f1": (0.03, 0.08), "auc_roc": (0.02, 0.05)}
SPEED_TOLERANCE = 0.05
FLIP_TOLERANCE = 0.005  # merged vs unmerged B: more prediction flips than this is a check line
POSITIVE_CLASS_METRICS = ("f1", "precision", "recall", "auc_roc")  # binary: about one class, named in reports

TEXT = {
    "en": {
        "same_head": "A and B use the same head: SHA-256 {h}.",
        "gain": "{d}: {m} {dir} by {v} (95% CI [{lo}, {hi}]{p}).",
        "none": "{d}: no significant difference in {m} ({v}, 95% CI [{lo}, {hi}]{p}).",
        "undefined": "{d}: {m} difference undefined ({why}).",
        "up": "improved", "down": "decreased",
        "B-A": "LoRA vs frozen base with the same head (B - A)",
        "B-A1": "LoRA vs the best frozen head, a linear probe (B - A1)",
        "A1-A": "Linear probe vs LoRA head on frozen features (A1 - A)",
        "range": "B - A {m} gain {v} is outside the usual {lo}-{hi}: check the training parameters, LoRA rank/alpha, or train more epochs.",
        "speed": "QPS of B and A differ by {v}: after merging, both do the same FLOPs, so this is measurement noise or load.",
        "positive": " (positive: {p})",
        "dropped": "{n} rows without a text or label were dropped before sampling.",
        "truncated": "{n} evaluated examples ({share:.1f}%) were longer than --max-length {L} tokens and were truncated.",
        "flips": "Merged B predicts differently from the unmerged LoRA model on {f} of {n} checked examples (max |logit "
                 "difference| {d:.3g}, merged in {dtype}): B's timing is of a model that is not quite the trained one.",
    },
    "zh": {
        "same_head": "A 与 B 使用同一个分类头：SHA-256 {h}。",
        "gain": "{d}：{m}{dir} {v}（95% 置信区间 [{lo}, {hi}]{p}）。",
        "none": "{d}：{m} 无显著差异（{v}，95% 置信区间 [{lo}, {hi}]{p}）。",
        "undefined": "{d}：{m} 差异无定义（{why}）。",
        "up": "提升", "down": "下降",
        "B-A": "LoRA 对比同一分类头的冻结基础模型 (B - A)",
        "B-A1": "LoRA 对比最强冻结基线：线性探针 (B - A1)",
        "A1-A": "冻结特征上线性探针对比 LoRA 分类头 (A1 - A)",
        "range": "B - A 的 {m} 提升 {v} 不在常见范围 {lo}-{hi}：请检查训练参数、LoRA rank/alpha，或增加训练轮数。",
        "speed": "B 与 A 的 QPS 相差 {v}：合并后两者计算量相同，差异来自测量噪声或负载。",
        "positive": "（正类：{p}）",
        "dropped": "有 {n} 行缺少文本或标签，已在抽样前剔除。",
        "truncated": "有 {n} 条评估样本（{share:.1f}%）超过 --max-length {L} 个词元，已被截断。",
        "flips": "合并后的 B 与未合并的 LoRA 模型在 {f}/{n} 条检查样本上预测不同（最大 logit 差 {d:.3g}，合并精度 "
                 "{dtype}）：B 的计时对象与训练得到的模型并不完全一致。",
    },
}
METRIC_LABELS = {
    "en": {"accuracy": "accuracy", "f1": "F1", "precision": "precision", "recall": "recall", "auc_roc": "AUC-ROC",
           "log_loss": "log loss", "brier": "Brier score", "ece": "ECE"},
    "zh": {"accuracy": "准确率", "f1": "F1", "precision": "精确率", "recall": "召回率", "auc_roc": "AUC-ROC",
           "log_loss": "对数损失", "brier": "Brier 分数", "ece": "ECE"},
}


def _variant_block(name, y, probs, head_sha, speed, pos_label, num_labels, label_names):
    pred = probs.argmax(axis=1)
    block = {
        "name": name,
        "head_sha256": head_sha,
        "metrics": metrics.compute_metrics(y, probs, pos_label=pos_label),
        "confusion_matrix": metrics.confusion_matrix(y, pred, num_labels),
        "per_class": metrics.per_class_report(y, pred, num_labels, label_names),
        "curves": {"roc": metrics.roc_points(y, probs, pos_label=pos_label),
                   "reliability": metrics.reliability_bins(y, probs)},
    }
    if speed:
        block["speed"] = speed
    return block


def _delta_entry(metric, ref, new, y, probs, pair, pos_label):
    ref_value, new_value = ref["metrics"][metric]["value"], new["metrics"][metric]["value"]
    if ref_value is None or new_value is None:
        why = (new["metrics"][metric] if new_value is None else ref["metrics"][metric]).get("reason", "undefined")
        return {"value": None, "reason": why, "relative": None, "ci": None, "p_value": None, "test": None}
    entry = {"value": new_value - ref_value, "relative": stats.relative_gain(new_value - ref_value, ref_value),
             "ci": None, "p_value": None, "test": "bootstrap"}
    new_id, ref_id = pair
    if metric == "accuracy":
        correct = {v: probs[v].argmax(axis=1) == y for v in pair}
        test = stats.mcnemar_exact(correct[ref_id], correct[new_id])
        entry.update(p_value=test["p_value"], test="mcnemar", discordant=[test["b"], test["c"]])
    elif metric == "auc_roc" and probs[new_id].shape[1] == 2 and len(np.unique(y)) == 2:
        try:
            test = stats.delong_test((y == pos_label).astype(int), probs[new_id][:, pos_label], probs[ref_id][:, pos_label])
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
    names: dict  # variant id -> display name in the run's language
    deltas: tuple  # (new, reference) pairs, e.g. (("B", "A"), ...)
    passes: list = field(default_factory=list)  # forward passes run, for the report's "forward_passes"
    notes: list = field(default_factory=list)
    head_name: str | None = None
    head: dict | None = None  # {"modules", "tensors", "sha256", "features"} (see compare.head_section)
    fidelity: dict | None = None  # merged vs unmerged B (see fidelity.measure)


def build_report(inp: ReportInput) -> dict:
    cfg, variants, y, probs = inp.cfg, inp.variants, inp.y, inp.probs
    data = {**inp.data, **positive_label_fields(cfg.pos_label, inp.data["labels"])}
    num_labels = len(data["labels"])
    pos_label = data["positive_label_id"]  # None for multi-class (macro averages)
    metric_pos = pos_label if pos_label is not None else 1  # unused by the metrics when K > 2
    blocks = {v: _variant_block(inp.names[v], y, probs[v], inp.heads.get(v), inp.speed.get(v), metric_pos,
                                num_labels, data["labels"]) for v in variants}
    pairs = [p for p in inp.deltas if p[0] in blocks and p[1] in blocks]
    delta_blocks = {f"{a}-{b}": {m: _delta_entry(m, blocks[b], blocks[a], y, probs, (a, b), metric_pos)
                                 for m in metrics.METRIC_NAMES} for a, b in pairs}
    if cfg.bootstrap > 0:
        boot = stats.paired_bootstrap(y, {v: probs[v] for v in variants}, pairs, n_resamples=cfg.bootstrap,
                                      seed=cfg.seed, alpha=cfg.alpha, pos_label=metric_pos)
        for v in variants:
            for m, ci in boot["variants"][v].items():
                if blocks[v]["metrics"][m]["value"] is not None:
                    blocks[v]["metrics"][m]["ci"] = ci
        for key, per_metric in boot["deltas"].items():
            for m, ci in per_metric.items():
                if delta_blocks[key][m]["value"] is not None:
                    delta_blocks[key][m]["ci"] = ci
    heads = inp.heads
    head = dict(inp.head or {"modules": [inp.head_name] if inp.head_name else []})
    head.setdefault("module", " + ".join(head.get("modules", [])))  # one string, for older renderers
    head["A_equals_B"] = heads.get("A") is not None and heads.get("A") == heads.get("B")
    report = {
        "schema_version": SCHEMA_VERSION,
        "config": dict(vars(cfg)),
        "environment": inp.environment,
        "data": data,
        "head": head,
        "variants": blocks,
        "deltas": delta_blocks,
        "forward_passes": inp.passes,
        "notes": list(inp.notes) + data_notes(data, cfg.lang, cfg.max_length),
    }
    if inp.fidelity is not None:
        report["fidelity"] = inp.fidelity
    report["conclusion"] = conclusion_lines(report, cfg.lang, cfg.alpha)
    report["checks"] = seed_range_checks(report, cfg.lang) + fidelity_checks(report, cfg.lang)
    power.add_power(report, cfg.alpha, cfg.lang)  # "mde"/"n_for_3pp" per accuracy delta; report["power"]
    return report


def positive_label_fields(pos_label, label_names) -> dict:
    """report["data"]'s positive class: its name and id for a binary task, None for multi-class."""
    if len(label_names) != 2:
        return {"positive_label": None, "positive_label_id": None}
    from lorafair.config import resolve_pos_label

    index = resolve_pos_label(pos_label, label_names)
    return {"positive_label": str(label_names[index]), "positive_label_id": index}


def data_notes(data: dict, lang: str, max_length: int) -> list[str]:
    """Console/report notes on rows lorafair did not evaluate as given: dropped ones and truncated ones."""
    text, lines = TEXT[lang], []
    if data.get("dropped_rows"):
        lines.append(text["dropped"].format(n=data["dropped_rows"]))
    if data.get("truncated"):
        lines.append(text["truncated"].format(n=data["truncated"], share=100 * (data.get("truncated_share") or 0),
                                              L=max_length))
    return lines


def fidelity_checks(report: dict, lang: str) -> list[str]:
    """A check line when the merged B (timed) predicts differently from the unmerged LoRA model too often."""
    fid = report.get("fidelity") or {}
    checked, flips = fid.get("checked_examples") or 0, fid.get("prediction_flips") or 0
    if checked and flips / checked > FLIP_TOLERANCE:
        return [TEXT[lang]["flips"].format(f=flips, n=checked, d=fid.get("merged_vs_unmerged_max_abs_logit_diff"),
                                           dtype=fid.get("merge_dtype"))]
    return []


def metric_label(metric: str, lang: str, positive: str | None) -> str:
    """The metric's display name; binary precision/recall/F1/AUC name their positive class."""
    label = METRIC_LABELS[lang][metric]
    if positive is not None and metric in POSITIVE_CLASS_METRICS:
        label += TEXT[lang]["positive"].format(p=positive)
    return label


def _fmt_pp(value: float) -> str:
    return f"{value * 100:+.2f} pp"


def is_significant(entry: dict, alpha: float) -> bool:
    """CI excludes 0, and the paired test (if any) agrees."""
    ci = entry.get("ci")
    if entry.get("value") is None or not ci or ci[0] is None:
        return False
    excludes_zero = ci[0] > 0 or ci[1] < 0
    p = entry.get("p_value")
    return excludes_zero and (p is None or p < alpha)


def conclusion_lines(report: dict, lang: str, alpha: float) -> list[str]:
    text, positive = TEXT[lang], report["data"].get("positive_label")
    labels = {m: metric_label(m, lang, positive) for m in METRIC_LABELS[lang]}
    lines = []
    if report["head"]["A_equals_B"]:
        lines.append(text["same_head"].format(h=report["variants"]["A"]["head_sha256"]))
    for key, per_metric in report["deltas"].items():
        for metric in HEADLINE:
            entry = per_metric[metric]
            if entry["value"] is None:
                lines.append(text["undefined"].format(d=text[key], m=labels[metric], why=entry.get("reason")))
                continue
            ci = entry.get("ci") or [None, None]
            lo = "n/a" if ci[0] is None else _fmt_pp(ci[0])
            hi = "n/a" if ci[1] is None else _fmt_pp(ci[1])
            p = "" if entry.get("p_value") is None else f", {entry['test']} p = {entry['p_value']:.3g}"
            if is_significant(entry, alpha):
                lines.append(text["gain"].format(d=text[key], m=labels[metric],
                                                 dir=text["up" if entry["value"] > 0 else "down"],
                                                 v=_fmt_pp(abs(entry["value"])).lstrip("+"), lo=lo, hi=hi, p=p))
            else:
                lines.append(text["none"].format(d=text[key], m=labels[metric], v=_fmt_pp(entry["value"]),
                                                 lo=lo, hi=hi, p=p))
    return lines


def seed_range_checks(report: dict, lang: str) -> list[str]:
    """The seed's sanity hints: gains outside its expected ranges, QPS of A and B more than 5% apart."""
    text, labels, checks = TEXT[lang], METRIC_LABELS[lang], []
    for metric, (lo, hi) in SEED_RANGES.items():
        entry = report["deltas"].get("B-A", {}).get(metric)
        if entry and entry["value"] is not None and not lo <= entry["value"] <= hi:
            checks.append(text["range"].format(m=labels[metric], v=_fmt_pp(entry["value"]),
                                               lo=f"{lo * 100:.0f}", hi=f"{hi * 100:.0f} pp"))
    qps = [report["variants"].get(v, {}).get("speed", {}).get("qps") for v in ("A", "B")]
    if all(qps):
        diff = qps[1] / qps[0] - 1
        report.setdefault("speed_difference", diff)
        if abs(diff) > SPEED_TOLERANCE:
            checks.append(text["speed"].format(v=f"{diff * 100:+.1f}%"))
    return checks
