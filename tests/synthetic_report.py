"""Real `build_report` outputs from synthetic labels and probabilities (no model, no torch).

The renderer tests feed these to console / Markdown / HTML so that the report they format always has
the shape `build_report` gives it (schema 2: statements as records); `add_issue8_keys` adds the keys a real
run writes beside them (positive class, data loss, head modules and features, fidelity). Reports of schema 1,
written before records, are kept as files in tests/report/schema1/.
"""

from __future__ import annotations

import numpy as np

from lorafair.config import CompareConfig
from lorafair.report.build import ReportInput, build_report

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
    **extra,
) -> dict:
    """A report of a real `build_report` on synthetic probabilities; `extra`: more ReportInput fields (texts, ...)."""
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
        "dropped_rows": 0,
        "truncated": 0,
        "truncated_share": 0.0,
    }
    environment = {
        "torch": "2.13.0",
        "transformers": "5.24.0",
        "peft": "0.21.2",
        "python": "3.11.2",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "device": "cpu",
        "dtype": "float32",
        "peak_rss_bytes": 2_480_000_000,
        "world_size": 1,
    }
    heads = {v: ("3f" * 32 if v in ("A", "B") else f"{i:02x}" * 32) for i, v in enumerate(variants)}
    passes = [
        {"kind": "frozen_eval", "examples": n, "cached": False, "seconds": n / 41.0},
        {"kind": "lora_eval", "examples": n, "shared_layers": 0, "total_layers": 2, "seconds": n / 38.5},
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
            deltas=DELTAS,
            passes=passes,
            notes=[{"kind": "probe_eval_rest", "examples": 600, "data": "data/test.csv"}],
            head_name="score",
            speed_section=_speed_section(speed, n),
            task_checks=[{"kind": "unrecorded", "file": "lorafair_run.json", "data": "data/test.csv"}],
            **extra,
        )
    )
    report["timing"] = {"total_seconds": 131.0}
    return report


def add_issue8_keys(report: dict) -> dict:
    """The keys another branch adds to report.json, with values a real run could give."""
    report["data"].update(positive_label="pos", dropped_rows=3, truncated=12, truncated_share=0.04)
    features = {
        "kind": "features",
        "pooling": "last_non_pad",
        "module": "score",
        "model_type": "llama",
        "model_class": "LlamaForSequenceClassification",
        "classifier_pooling": "cls",
    }
    report["head"].update(modules=["score"], features=features)
    report["fidelity"] = {
        "merged_vs_unmerged_max_abs_logit_diff": 2.4e-06,
        "prediction_flips": 0,
        "checked_examples": 64,
        "merge_dtype": "float32",
        "model_dtype": "float32",
    }
    return report


def _speed_section(speed: dict, n: int) -> dict:
    """report["speed"] as evaluation/speed.py writes it: A and B timed like for like on 64 examples."""
    if set(speed) != {"A", "B"}:
        return {"like_for_like": None, "reason": "needs_a_and_b"}
    timed = {v: {**block, "examples": 64} for v, block in speed.items()}
    return {
        "like_for_like": {
            "examples": 64,
            "batches": 8,
            "A": timed["A"],
            "B": timed["B"],
            "difference": timed["B"]["qps"] / timed["A"]["qps"] - 1,
            "b_vs_shared_trunk": {"max_abs_logit_diff": 1.2e-6, "prediction_mismatches": 0},
        },
        "a_pass": {"cached": False, "seconds": n / 41.0, "examples": n},
        "b_pass": {"shared_layers": 0, "total_layers": 2, "seconds": n / 38.5, "examples": n},
    }
