"""From per-variant probabilities to the report dict: metrics, CIs, paired tests, conclusions.

Free of torch: every number here comes from `metrics` and `stats`, so it can be recomputed from
`predictions.csv` alone. The conclusion claims an effect only when the CI excludes 0 *and* the
paired test (where there is one) agrees at alpha.
"""

from __future__ import annotations

import numpy as np

from lorafair import metrics, stats
from lorafair.adapter_data import task_checks
from lorafair.names import HEADLINE_METRICS as HEADLINE  # metrics that get a conclusion line
from lorafair.names import METRIC_LABELS

SCHEMA_VERSION = 1
# The seed's expected ranges for B - A (fractions) and the hints it gave when a run falls outside.
SEED_RANGES = {"accuracy": (0.03, 0.08), "f1": (0.03, 0.08), "auc_roc": (0.02, 0.05)}
SPEED_TOLERANCE = 0.05

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
    },
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


def build_report(cfg, *, variants, y, probs, heads, speed, data, environment, names, deltas, passes, notes,
                 head_name) -> dict:
    num_labels = len(data["labels"])
    pos_label = cfg.pos_label if num_labels == 2 else None
    blocks = {v: _variant_block(names[v], y, probs[v], heads.get(v), speed.get(v), pos_label if pos_label is not None else 1,
                                num_labels, data["labels"]) for v in variants}
    pairs = [p for p in deltas if p[0] in blocks and p[1] in blocks]
    delta_blocks = {f"{a}-{b}": {m: _delta_entry(m, blocks[b], blocks[a], y, probs, (a, b), pos_label or 1)
                                 for m in metrics.METRIC_NAMES} for a, b in pairs}
    if cfg.bootstrap > 0:
        boot = stats.paired_bootstrap(y, {v: probs[v] for v in variants}, pairs, n_resamples=cfg.bootstrap,
                                      seed=cfg.seed, alpha=cfg.alpha, pos_label=pos_label or 1)
        for v in variants:
            for m, ci in boot["variants"][v].items():
                if blocks[v]["metrics"][m]["value"] is not None:
                    blocks[v]["metrics"][m]["ci"] = ci
        for key, per_metric in boot["deltas"].items():
            for m, ci in per_metric.items():
                if delta_blocks[key][m]["value"] is not None:
                    delta_blocks[key][m]["ci"] = ci
    config = {k: v for k, v in vars(cfg).items()}
    report = {
        "schema_version": SCHEMA_VERSION,
        "config": config,
        "environment": environment,
        "data": data,
        "head": {"module": head_name, "A_equals_B": heads.get("A") is not None and heads.get("A") == heads.get("B")},
        "variants": blocks,
        "deltas": delta_blocks,
        "forward_passes": passes,
        "notes": notes,
    }
    report["conclusion"] = conclusion_lines(report, cfg.lang, cfg.alpha)
    report["checks"] = seed_range_checks(report, cfg.lang) + task_checks(cfg, data)
    return report


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
    text, labels = TEXT[lang], METRIC_LABELS[lang]
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
