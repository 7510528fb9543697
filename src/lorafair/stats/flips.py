"""Which examples changed: the paired 2x2 table, the negative flip rate and accuracy slices (torch-free).

- `paired_table`: both right / only the new variant right / only the reference right / both wrong. The two
  discordant cells are McNemar's b (only_reference_right) and c (only_new_right), the very counts
  `paired.mcnemar_exact` tests.
- `flip_rate`: a cell's share of all n examples with a Wilson score interval. The negative flip rate (Yan et al.
  2021) is the share the reference got right and the new variant got wrong: the regressions LoRA brought.
- `changed_examples`: the rows that flipped, with the true class's probability under both variants, ordered by its
  change (fixed: largest rise first; broken: largest fall first).
- `slices`: accuracy of every variant per true class and per input-length quartile (Wilson CIs) and the paired
  deltas on each slice (percentile bootstrap of the slice's paired correctness differences, seeded).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

CI_METHOD = "wilson"
SLICE_DELTA_CI_METHOD = "paired_bootstrap"


def paired_table(correct_ref, correct_new) -> dict:
    """The paired 2x2 table of two variants' correctness on the same examples."""
    ref = np.asarray(correct_ref, dtype=bool)
    new = np.asarray(correct_new, dtype=bool)
    if ref.shape != new.shape or ref.ndim != 1:
        raise ValueError("correct_ref and correct_new must be 1-D and of the same length")
    return {
        "both_right": int(np.sum(ref & new)),
        "only_new_right": int(np.sum(~ref & new)),
        "only_reference_right": int(np.sum(ref & ~new)),
        "both_wrong": int(np.sum(~ref & ~new)),
        "n": int(ref.size),
    }


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> list:
    """Wilson score interval of a binomial proportion; [None, None] when n == 0."""
    if n <= 0:
        return [None, None]
    z = float(norm.ppf(1 - alpha / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def flip_rate(count: int, n: int, alpha: float = 0.05) -> dict:
    """A share of all n examples with its Wilson interval."""
    return {
        "value": count / n if n else None,
        "ci": wilson_interval(count, n, alpha),
        "count": int(count),
        "n": int(n),
        "method": CI_METHOD,
    }


def true_class_probability(y, probs) -> np.ndarray:
    y = np.asarray(y, dtype=np.intp)
    return np.asarray(probs, dtype=np.float64)[np.arange(y.size), y]


def changed_examples(y, probs_ref, probs_new) -> dict:
    """{"fixed": rows, "broken": rows}: the rows (positions in the evaluation sample) the new variant got right and
    the reference wrong, by the rise of p(true) (largest first), and the reverse, by its fall (largest first)."""
    y = np.asarray(y, dtype=np.intp)
    right_ref = np.argmax(probs_ref, axis=1) == y
    right_new = np.argmax(probs_new, axis=1) == y
    change = true_class_probability(y, probs_new) - true_class_probability(y, probs_ref)
    fixed = np.flatnonzero(~right_ref & right_new)
    broken = np.flatnonzero(right_ref & ~right_new)
    return {
        "fixed": fixed[np.argsort(-change[fixed], kind="stable")],
        "broken": broken[np.argsort(change[broken], kind="stable")],
    }


def length_quartiles(lengths) -> list[np.ndarray]:
    """Row masks of the four token-length quartiles: (-inf, q25], (q25, q50], (q50, q75], (q75, inf). Ties at an
    edge fall in the lower quartile, so a quartile can be empty when many inputs share a length."""
    lengths = np.asarray(lengths)
    edges = np.quantile(lengths, [0.25, 0.5, 0.75])
    bins = np.searchsorted(edges, lengths, side="left")
    return [bins == q for q in range(4)]


def _bootstrap_mean_ci(diff: np.ndarray, n_resamples: int, seed: int, alpha: float) -> list:
    """Percentile CI of the mean of `diff` (the slice's paired correctness differences, each -1, 0 or +1) over
    bootstrap resamples. A resample of m examples holds Multinomial(m; shares of -1, 0, +1) of each value, so the
    counts are drawn directly: the same distribution as drawing m indices, in O(resamples) instead of O(resamples m).
    """
    if n_resamples < 1 or diff.size == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    m = diff.size
    shares = [np.sum(diff < 0) / m, np.sum(diff == 0) / m, np.sum(diff > 0) / m]
    counts = rng.multinomial(m, shares, size=n_resamples)
    means = (counts[:, 2] - counts[:, 0]) / m
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def slice_row(mask, correct: dict, pairs, alpha: float, n_resamples: int, seed: int) -> dict:
    """One slice: its size, each variant's accuracy (Wilson CI) and each pair's accuracy delta (bootstrap CI)."""
    n = int(np.sum(mask))
    accuracy = {}
    for v, right in correct.items():
        hits = int(np.sum(right[mask]))
        accuracy[v] = {"value": hits / n if n else None, "ci": wilson_interval(hits, n, alpha)}
    deltas = {}
    for new, ref in pairs:
        diff = correct[new][mask].astype(np.float64) - correct[ref][mask].astype(np.float64)
        deltas[f"{new}-{ref}"] = {
            "value": float(diff.mean()) if n else None,
            "ci": _bootstrap_mean_ci(diff, n_resamples, seed, alpha),
        }
    return {"n": n, "accuracy": accuracy, "deltas": deltas}


def slices(y, probs: dict, pairs, label_names, lengths=None, alpha=0.05, n_resamples=1000, seed=0) -> dict:
    """{"by_class": [...], "by_length": [...] (only with token lengths), CI methods}: see `slice_row`."""
    y = np.asarray(y, dtype=np.intp)
    correct = {v: np.argmax(p, axis=1) == y for v, p in probs.items()}
    pairs = [(a, b) for a, b in pairs if a in correct and b in correct]
    by_class = [
        {"label": str(name), **slice_row(y == k, correct, pairs, alpha, n_resamples, seed)}
        for k, name in enumerate(label_names)
    ]
    out = {
        "accuracy_ci": CI_METHOD,
        "delta_ci": SLICE_DELTA_CI_METHOD if n_resamples > 0 else None,
        "by_class": by_class,
    }
    if lengths is not None and len(lengths) == y.size and y.size:
        lengths = np.asarray(lengths)
        out["by_length"] = [
            {
                "quartile": q + 1,
                "min_tokens": int(lengths[mask].min()) if mask.any() else None,
                "max_tokens": int(lengths[mask].max()) if mask.any() else None,
                **slice_row(mask, correct, pairs, alpha, n_resamples, seed),
            }
            for q, mask in enumerate(length_quartiles(lengths))
        ]
    return out
