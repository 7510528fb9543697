"""Merge fidelity: B is timed as the merged model, but its predictions must be the trained LoRA model's.

Before merging, the unmerged `PeftModel` runs a few whole evaluation batches; B's merged pass runs the
same batches (same padding), so the difference measures the merge and nothing else. numpy only.

In bf16 (models/dtype_probe.py picks it on a CPU where it is clearly faster), the same batches also run through
the unmerged model upcast to fp32: `dtype_flips` counts the predictions bf16 itself changed.
"""

from __future__ import annotations

import numpy as np

CHECKED_EXAMPLES = 64  # enough to catch a broken merge; cheap, as the shortest batches are taken


def check_batches(batches: list, limit: int = CHECKED_EXAMPLES) -> list:
    """The shortest whole batches of the (length-sorted, longest first) batch list, up to `limit` examples."""
    chosen, total = [], 0
    for batch in reversed(batches):
        if total >= limit:
            break
        take = batch[: limit - total]  # cut only when one batch alone exceeds the limit
        chosen.append(take)
        total += len(take)
    return chosen


def measure(unmerged_logits: np.ndarray, merged_logits: np.ndarray, *, merge_dtype: str, model_dtype: str) -> dict:
    """report.json["fidelity"]: max |logit difference| and prediction flips of merged vs unmerged B."""
    unmerged = np.asarray(unmerged_logits, dtype=np.float64)
    merged = np.asarray(merged_logits, dtype=np.float64)
    n = int(unmerged.shape[0])
    return {
        "merged_vs_unmerged_max_abs_logit_diff": float(np.abs(unmerged - merged).max()) if n else None,
        "prediction_flips": int((unmerged.argmax(axis=1) != merged.argmax(axis=1)).sum()) if n else 0,
        "checked_examples": n,
        "merge_dtype": merge_dtype,
        "model_dtype": model_dtype,
    }


def dtype_flips(low_logits: np.ndarray, fp32_logits: np.ndarray) -> dict:
    """report.json["fidelity"]["bf16_vs_fp32"]: the same examples and weights in bf16 and in fp32."""
    low, full = np.asarray(low_logits, dtype=np.float64), np.asarray(fp32_logits, dtype=np.float64)
    n = int(low.shape[0])
    return {
        "checked": n,
        "flips": int((low.argmax(axis=1) != full.argmax(axis=1)).sum()) if n else 0,
        "max_abs_logit_diff": float(np.abs(low - full).max()) if n else None,
    }
