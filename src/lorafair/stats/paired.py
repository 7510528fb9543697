"""Paired statistics: every variant is scored on the same examples, so comparisons are paired.

- `paired_bootstrap`: one set of resamples shared by all variants -> percentile CIs of every metric
  and of every delta (the pairing is what makes delta CIs narrower than two separate CIs).
- `mcnemar_exact`: exact test of an accuracy difference on the discordant pairs.
- `delong_test`: DeLong's test of two correlated AUCs, fast O(n log n) version (Sun & Xu 2014).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest, norm, rankdata

from lorafair.core.names import METRIC_NAMES, delta_key
from lorafair.stats.metrics import weighted_metric_arrays

# Cap on resamples x examples per chunk (~16 MB per float64 (rows, n) array); bounds memory on
# large evaluation sets without changing results (see _resample_counts).
_MAX_CELLS_PER_CHUNK = 2_000_000


def _resample_counts(rng: np.random.Generator, n: int, rows: int) -> np.ndarray:
    """(rows, n) counts: how often each example is drawn in n draws with replacement.

    Indices come from floor(u * n) with one uniform double per draw, so the random stream is
    consumed identically however resamples are split into chunks: the resamples depend on the seed
    only (chunk size can move the last bits of a CI through BLAS summation order, nothing more).
    """
    idx = (rng.random((rows, n)) * n).astype(np.intp)
    np.minimum(idx, n - 1, out=idx)
    idx += (np.arange(rows, dtype=np.intp) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def _percentile_ci(values: np.ndarray, alpha: float) -> list:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return [None, None]
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def _check_bootstrap_args(probs_by_variant, deltas, n_resamples: int, alpha: float, chunk_size: int) -> None:
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    for pair in deltas:
        for name in pair:
            if name not in probs_by_variant:
                raise ValueError(f"delta {pair} names unknown variant {name!r}")


def paired_bootstrap(
    y_true,
    probs_by_variant: dict[str, np.ndarray],
    deltas: list[tuple[str, str]],
    n_resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    pos_label: int = 1,
    chunk_size: int = 1000,
) -> dict:
    """Percentile bootstrap CIs of every metric of every variant and of every delta.

    All variants are evaluated on the SAME resamples; delta ("X", "Y") is metric(X) - metric(Y)
    per resample. A resample where a metric is undefined (e.g. AUC with one class) is left out of
    that metric's CI; how many were left out is in "undefined_resamples" (only non-zero counts).
    Returns {"variants": {v: {metric: [lo, hi]}}, "deltas": {"X-Y": {metric: [lo, hi]}},
    "undefined_resamples": {name: {metric: count}}, "n_resamples", "alpha", "seed"}.
    [None, None] when a metric is undefined in every resample.
    """
    _check_bootstrap_args(probs_by_variant, deltas, n_resamples, alpha, chunk_size)
    y = np.asarray(y_true)
    if y.shape[0] < 1:
        raise ValueError("no examples to resample")
    draws = _metric_draws(y, probs_by_variant, n_resamples, seed, pos_label, chunk_size)
    series = dict(draws)
    for new, ref in deltas:
        series[delta_key(new, ref)] = {m: draws[new][m] - draws[ref][m] for m in METRIC_NAMES}
    cis = {name: {m: _percentile_ci(s[m], alpha) for m in METRIC_NAMES} for name, s in series.items()}
    undefined = {}
    for name, s in series.items():
        counts_nan = {m: int(np.isnan(s[m]).sum()) for m in METRIC_NAMES}
        if any(counts_nan.values()):
            undefined[name] = {m: c for m, c in counts_nan.items() if c}
    return {
        "variants": {v: cis[v] for v in probs_by_variant},
        "deltas": {delta_key(a, b): cis[delta_key(a, b)] for a, b in deltas},
        "undefined_resamples": undefined,
        "n_resamples": int(n_resamples),
        "alpha": float(alpha),
        "seed": int(seed),
    }


def _metric_draws(y, probs_by_variant, n_resamples: int, seed: int, pos_label: int, chunk_size: int) -> dict:
    """{variant: {metric: (n_resamples,) values}}, every variant scored on the same resamples (in chunks)."""
    n = y.shape[0]
    rng = np.random.default_rng(seed)
    rows = max(1, min(chunk_size, _MAX_CELLS_PER_CHUNK // n))
    draws = {v: {m: np.empty(n_resamples) for m in METRIC_NAMES} for v in probs_by_variant}
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        counts = _resample_counts(rng, n, stop - start)
        for v, probs in probs_by_variant.items():
            for m, arr in weighted_metric_arrays(y, probs, counts, pos_label).items():
                draws[v][m][start:stop] = arr
    return draws


def mcnemar_exact(correct_ref, correct_new) -> dict:
    """Exact McNemar test: two-sided binomial test of c successes in b + c discordant pairs.

    b = reference right & new wrong, c = reference wrong & new right. p = 1.0 when b + c == 0
    (no discordant pair: no evidence of any difference).
    """
    ref = np.asarray(correct_ref, dtype=bool)
    new = np.asarray(correct_new, dtype=bool)
    if ref.shape != new.shape or ref.ndim != 1:
        raise ValueError("correct_ref and correct_new must be 1-D and of the same length")
    b = int(np.sum(ref & ~new))
    c = int(np.sum(~ref & new))
    p = 1.0 if b + c == 0 else float(binomtest(c, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "n": int(ref.size), "p_value": min(p, 1.0)}


def _structural_components(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's per-example components via midranks (Sun & Xu 2014).

    v_pos[i] = fraction of negatives that positive i beats (ties 1/2), v_neg[j] = fraction of
    positives that beat negative j. Midranks within the pooled sample minus midranks within
    one's own class count exactly those comparisons, in O(n log n).
    """
    m, n = pos.size, neg.size
    pooled = rankdata(np.concatenate([pos, neg]))
    v_pos = (pooled[:m] - rankdata(pos)) / n
    v_neg = 1.0 - (pooled[m:] - rankdata(neg)) / m
    auc = float(v_pos.mean())
    return auc, v_pos, v_neg


def delong_test(y_true_binary, scores_1, scores_2) -> dict:
    """DeLong's test of AUC(scores_1) == AUC(scores_2) on the same examples (two-sided, normal).

    var = S_pos / m + S_neg / n from the covariance (ddof=1) of the structural components.
    If the variance of the difference is 0 (e.g. identical scores) z = 0, p = 1 when the AUCs are
    equal, and z = +-inf, p = 0 otherwise. Needs >= 2 examples of each class.
    """
    y = np.asarray(y_true_binary)
    s1 = np.asarray(scores_1, dtype=np.float64)
    s2 = np.asarray(scores_2, dtype=np.float64)
    if not (y.ndim == 1 and y.shape == s1.shape == s2.shape):
        raise ValueError("y_true_binary, scores_1 and scores_2 must be 1-D and of the same length")
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(f"DeLong's test needs exactly two classes in y, got {classes.tolist()}")
    is_pos = y == classes[1]  # the larger label (1 / True) is positive
    m, n = int(is_pos.sum()), int((~is_pos).sum())
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least 2 examples of each class")
    auc1, vp1, vn1 = _structural_components(s1[is_pos], s1[~is_pos])
    auc2, vp2, vn2 = _structural_components(s2[is_pos], s2[~is_pos])
    cov = np.cov(np.stack([vp1, vp2])) / m + np.cov(np.stack([vn1, vn2])) / n
    var1, var2, cov12 = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
    var_diff = var1 + var2 - 2 * cov12
    diff = auc1 - auc2
    # identical inputs give var_diff == 0 exactly; round-off can leave a tiny value of either sign
    if var_diff <= 1e-12 * max(var1 + var2, 1e-300):
        if abs(diff) <= 1e-12:
            z, p = 0.0, 1.0
        else:
            z, p = math.copysign(math.inf, diff), 0.0
    else:
        z = diff / math.sqrt(var_diff)
        p = float(2 * norm.sf(abs(z)))
    return {"auc_1": auc1, "auc_2": auc2, "var_1": var1, "var_2": var2, "cov": cov12, "z": float(z), "p_value": p}


def relative_gain(delta, reference) -> float | None:
    """delta / reference (e.g. an accuracy gain relative to the reference's accuracy)."""
    if delta is None or reference is None or reference == 0:
        return None
    return float(delta) / float(reference)
