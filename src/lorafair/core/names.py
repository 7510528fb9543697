"""Names every part of lorafair shares: variant ids and their display names, metric ids, deltas.

Defined once here so that the comparison, the statistics, report.json and every renderer agree;
the ids are report.json keys (DESIGN.md §5), so changing one is a schema change. Pure Python, no imports.
"""

from __future__ import annotations

# Variants in report order: B (LoRA model), A (frozen base + the same head), A1 (frozen + linear probe),
# R (frozen + random head, the old unfair baseline).
VARIANT_IDS: tuple[str, ...] = ("B", "A", "A1", "R")
FROZEN_VARIANTS: tuple[str, ...] = ("A", "A1", "R")  # served by the one frozen-base pass
ALL_VARIANTS: str = ",".join(VARIANT_IDS)  # "B,A,A1,R": --variants when every variant is wanted
# A and B run the adapter's head (on the frozen base, on the LoRA model): the pair the comparison is about.
ADAPTER_HEAD_VARIANTS: tuple[str, ...] = ("A", "B")
# A1 and R put a head of their own (linear probe, random) on the frozen base: independent of the adapter's head.
OWN_HEAD_VARIANTS: tuple[str, ...] = ("A1", "R")
VARIANT_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "B": "LoRA model",
        "A": "Frozen base + LoRA head",
        "A1": "Frozen base + linear probe",
        "R": "Base + random head",
    },
    "zh": {"B": "LoRA微调", "A": "冻结 + LoRA分类头", "A1": "冻结 + 线性探针", "R": "基础模型 + 随机分类头"},
}

# Every metric of every variant (metrics.compute_metrics returns them in this order).
METRIC_NAMES: tuple[str, ...] = ("accuracy", "f1", "precision", "recall", "auc_roc", "log_loss", "brier", "ece")
SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "f1", "precision", "recall", "auc_roc")  # the seed's summary table
HEADLINE_METRICS: tuple[str, ...] = ("accuracy", "f1", "auc_roc")  # each delta gets a conclusion on these
METRIC_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "accuracy": "accuracy",
        "f1": "F1",
        "precision": "precision",
        "recall": "recall",
        "auc_roc": "AUC-ROC",
        "log_loss": "log loss",
        "brier": "Brier score",
        "ece": "ECE",
    },
    "zh": {
        "accuracy": "准确率",
        "f1": "F1",
        "precision": "精确率",
        "recall": "召回率",
        "auc_roc": "AUC-ROC",
        "log_loss": "对数损失",
        "brier": "Brier 分数",
        "ece": "ECE",
    },
}

# (new, ref) pairs: B - A is what LoRA changed in the backbone, B - A1 what it added beyond the best frozen
# head, A1 - A how much of B - A is head/feature mismatch.
DELTAS: tuple[tuple[str, str], ...] = (("B", "A"), ("B", "A1"), ("A1", "A"))


def delta_key(new: str, ref: str) -> str:
    """Name of the delta metric(new) - metric(ref) in report.json, e.g. "B-A"."""
    return f"{new}-{ref}"


DELTA_KEYS: tuple[str, ...] = tuple(delta_key(new, ref) for new, ref in DELTAS)
