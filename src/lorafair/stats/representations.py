"""Where LoRA changed the features, layer by layer: linear CKA, cosine and linear probes (torch-free).

Input: the pooled hidden states of every layer (transformers' `hidden_states[l]`, 0 = embeddings,
L = the last), of the frozen base (A) and of the LoRA model (B), for the same examples in the same
order. Output: `report["analysis"]["layers"]`, one record per layer.

- `cka`: linear CKA (Kornblith et al. 2019) on column-centred features; 1 when B's features are A's up to
  an orthogonal transform and an isotropic scaling, and exactly 1 where LoRA has not changed them.
- `cosine`: mean per-example cosine similarity of the raw (uncentred) features.
- `probe_accuracy`: a logistic-regression probe per layer and model, fitted on probe-training features
  and scored on the evaluation features; one regularisation strength C for every layer of both models,
  so a difference between A and B comes from the features, not from re-tuning.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lorafair.stats.probe import MAX_ITER

CKA_CHANGED = 0.99  # the console names the first layer whose CKA falls below this


def linear_cka(x, y) -> float | None:
    """Linear CKA = ||Ycᵀ Xc||²_F / (||Xcᵀ Xc||_F ||Ycᵀ Yc||_F), Xc, Yc column-centred (n x d each).

    Identical inputs give exactly 1.0 (not 1 - rounding), so "LoRA changed nothing here" reads as 1.
    None when either side has no variance (CKA is undefined there).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same examples on both sides, got {x.shape[0]} and {y.shape[0]} rows")
    if x.shape == y.shape and np.array_equal(x, y):
        return 1.0 if np.any(x != x[:1]) else None
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    # The n x n Gram form costs O(n² d) instead of O(n d²): cheaper whenever there are fewer examples than dims.
    if x.shape[0] < max(x.shape[1], y.shape[1]):
        kx, ky = xc @ xc.T, yc @ yc.T
        cross, norm_x, norm_y = np.sum(kx * ky), np.linalg.norm(kx), np.linalg.norm(ky)
    else:
        cross = np.linalg.norm(yc.T @ xc) ** 2
        norm_x, norm_y = np.linalg.norm(xc.T @ xc), np.linalg.norm(yc.T @ yc)
    if norm_x == 0 or norm_y == 0:
        return None
    return float(min(cross / (norm_x * norm_y), 1.0))


def mean_cosine(x, y) -> float | None:
    """Mean over examples of cos(x_i, y_i); rows that are equal count as exactly 1, zero rows are skipped."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    valid = norms > 0
    if not valid.any():
        return None
    cos = np.einsum("ij,ij->i", x, y)[valid] / norms[valid]
    cos[np.all(x[valid] == y[valid], axis=1)] = 1.0
    return float(np.clip(cos, -1.0, 1.0).mean())


def probe_accuracy(train_x, train_y, eval_x, eval_y, *, C: float, seed: int = 0) -> float:
    """Accuracy on (eval_x, eval_y) of standardise + logistic regression (C fixed) fitted on (train_x, train_y).

    The same pipeline as the A1 probe (lorafair.stats.probe), so at the last layer, on A1's data and with A1's
    C, it reproduces A1's predictions.
    """
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a layer-wise probe is a read-out, not a headline
        model.fit(np.asarray(train_x, dtype=np.float64), np.asarray(train_y))
    predicted = model.predict(np.asarray(eval_x, dtype=np.float64))
    return float(np.mean(predicted == np.asarray(eval_y)))


def layer_records(eval_a, eval_b, *, probe=None) -> list[dict]:
    """One record per layer: {"layer", "cka", "cosine", "probe_accuracy": {"A", "B"}}.

    eval_a, eval_b: (L + 1, n, d) pooled hidden states of A and B on the evaluation set.
    probe: None, or a dict with "train_a", "train_b" ((L + 1, m, d) probe-training features), "train_y",
    "eval_y", "C" and "seed"; without it the probe accuracies are None.
    """
    eval_a, eval_b = np.asarray(eval_a), np.asarray(eval_b)
    if eval_a.shape != eval_b.shape or eval_a.ndim != 3:
        raise ValueError(f"A and B hidden states must both be (layers, n, d), got {eval_a.shape} and {eval_b.shape}")
    records = []
    for layer in range(eval_a.shape[0]):
        accuracy = {"A": None, "B": None}
        if probe is not None:
            for variant, train in (("A", probe["train_a"]), ("B", probe["train_b"])):
                evaluated = eval_a if variant == "A" else eval_b
                accuracy[variant] = probe_accuracy(
                    train[layer],
                    probe["train_y"],
                    evaluated[layer],
                    probe["eval_y"],
                    C=probe["C"],
                    seed=probe.get("seed", 0),
                )
        records.append(
            {
                "layer": layer,
                "cka": linear_cka(eval_a[layer], eval_b[layer]),
                "cosine": mean_cosine(eval_a[layer], eval_b[layer]),
                "probe_accuracy": accuracy,
            }
        )
    return records


def summarise(layers: list[dict], weights: list[dict], top: int = 3) -> dict:
    """The few facts the console leads with, picked from the records (so every renderer shows the same)."""
    changed = [r["layer"] for r in layers if r.get("cka") is not None and r["cka"] < CKA_CHANGED]
    gains = [
        (r["probe_accuracy"]["B"] - r["probe_accuracy"]["A"], r["layer"])
        for r in layers
        if r["probe_accuracy"].get("A") is not None and r["probe_accuracy"].get("B") is not None
    ]
    best_gain = max(gains, key=lambda g: (g[0], -g[1])) if gains else None
    ranked = sorted(
        (w for w in weights if w.get("delta_norm_ratio") is not None), key=lambda w: -w["delta_norm_ratio"]
    )[:top]
    counted = [w["intruders"] for w in weights if w.get("intruders") is not None]
    return {
        "first_layer_cka_below": {"threshold": CKA_CHANGED, "layer": changed[0] if changed else None},
        "largest_probe_gain": None if best_gain is None else {"layer": best_gain[1], "gain": best_gain[0]},
        "top_modules_by_delta_norm_ratio": [
            {"module": w["module"], "delta_norm_ratio": w["delta_norm_ratio"]} for w in ranked
        ],
        "total_intruders": int(sum(counted)) if counted else None,
        "modules_with_intruders_counted": len(counted),
    }
