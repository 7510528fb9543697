"""Real `build_report` outputs from synthetic labels and probabilities (no model, no torch).

The renderer tests feed these to console / Markdown / HTML so that the report they format always has
the shape `build_report` gives it; `add_issue8_keys` adds the keys another branch writes
(positive class, data loss, head modules, fidelity).
"""

from __future__ import annotations

import numpy as np

from lorafair.config import CompareConfig
from lorafair.report.build import ReportInput, build_report

NAMES = {
    "en": {
        "B": "LoRA model",
        "A": "Frozen base + LoRA head",
        "A1": "Frozen base + linear probe",
        "R": "Base + random head",
    },
    "zh": {"B": "LoRA微调", "A": "冻结 + LoRA分类头", "A1": "冻结 + 线性探针", "R": "基础模型 + 随机分类头"},
}
QUALITY = {"B": 2.4, "A": 1.0, "A1": 1.1, "R": 0.0}  # logit margin given to the true class
DELTAS = (("B", "A"), ("B", "A1"), ("A1", "A"))


def synthetic_probs(k: int, n: int, variants, seed: int) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    probs = {}
    for v in variants:
        logits = rng.normal(size=(n, k)) + QUALITY[v] * np.eye(k)[y]
        e = np.exp(logits - logits.max(1, keepdims=True))
        probs[v] = e / e.sum(1, keepdims=True)
    return y, probs


def make_report(
    k: int = 2,
    variants=("B", "A", "A1", "R"),
    lang: str = "en",
    n: int = 300,
    seed: int = 0,
    bootstrap: int = 300,
    with_speed: bool = True,
    labels=None,
) -> dict:
    y, probs = synthetic_probs(k, n, variants, seed)
    labels = labels or (["neg", "pos"] if k == 2 else [f"class_{c}" for c in range(k)])
    cfg = CompareConfig(adapter="out/adapter", data="data/test.csv", lang=lang, bootstrap=bootstrap, seed=seed)
    speed = {
        v: {
            "qps": q,
            "tokens_per_s": 30.0 * q,
            "latency_ms_p50": 800.0 / q,
            "latency_ms_p95": 1100.0 / q,
            "seconds": n / q,
            "peak_memory_bytes": 1_350_000_000,
        }
        for v, q in (("A", 41.0), ("B", 38.5))
        if v in variants and with_speed
    }
    data = {
        "n": n,
        "n_available": 4 * n,
        "labels": labels,
        "source": "data/test.csv",
        "label_counts": {labels[c]: int((y == c).sum()) for c in range(k)},
        "token_ids_sha256": "ab" * 32,
        "tokenize_seconds": 0.42,
        "indices": list(range(0, 4 * n, 4)),
    }
    environment = {
        "torch": "2.13.0",
        "transformers": "5.24.0",
        "peft": "0.21.2",
        "python": "3.11.2",
        "device": "cpu",
        "dtype": "float32",
        "peak_rss_bytes": 2_480_000_000,
        "world_size": 1,
    }
    heads = {v: ("3f" * 32 if v in ("A", "B") else f"{i:02x}" * 32) for i, v in enumerate(variants)}
    passes = [
        {"what": "frozen base, evaluation set (serves A, A1, R)", "examples": n},
        {"what": "LoRA merged model, evaluation set (B)", "examples": n},
    ]
    report = build_report(
        ReportInput(
            cfg=cfg,
            variants=list(variants),
            y=y,
            probs=probs,
            heads=heads,
            speed=speed,
            data=data,
            environment=environment,
            names=NAMES[lang],
            deltas=DELTAS,
            passes=passes,
            notes=["A1 probe data: 600 examples of data/test.csv kept disjoint from the evaluation sample"],
            head_name="score",
            task_checks=[{"check": "unrecorded", "file": "lorafair_run.json", "data": "data/test.csv"}],
        )
    )
    report["timing"] = {"total_seconds": 131.0}
    return report


def add_issue8_keys(report: dict) -> dict:
    """The keys another branch adds to report.json, with values a real run could give."""
    report["data"].update(positive_label="pos", dropped_rows=3, truncated=12, truncated_share=0.04)
    report["head"].update(modules=["score"], features="last non-pad token of the final hidden state")
    report["fidelity"] = {
        "merged_vs_unmerged_max_abs_logit_diff": 2.4e-06,
        "prediction_flips": 0,
        "checked_examples": 64,
        "merge_dtype": "float32",
    }
    return report
