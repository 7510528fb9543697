"""Classification metrics of one variant, plus their weighted, vectorised form for the bootstrap.

`compute_metrics` is the reference: it calls scikit-learn wherever sklearn has the metric, so the
numbers in report.json are the ones a reader can reproduce with sklearn. `weighted_metric_arrays`
re-derives every metric from per-example sums, so that R bootstrap resamples (given as an (R, n)
matrix of resample counts) cost a handful of (R, n) array operations instead of R sklearn calls.
The tests pin the two against each other.

Conventions: labels are int ids 0..K-1, `probs` is (n, K) with rows summing to 1, the predicted
label is argmax(probs) (ties -> lowest index). Binary (K == 2) metrics are about `pos_label`;
multi-class precision/recall/F1 are macro averages, AUC is one-vs-rest macro.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from lorafair.core.names import METRIC_NAMES

N_ECE_BINS = 15
# sklearn (>= 1.5) clips probabilities to [eps, 1 - eps] with eps = machine epsilon of the dtype
# (2.2e-16 for float64; the old fixed 1e-15 is gone). We do the same so log loss matches it exactly.
_CLIP = float(np.finfo(np.float64).eps)


def _check(y_true, probs, pos_label: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate and convert; these are programming errors (the caller builds the arrays)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] < 1:
        raise ValueError(f"probs must have shape (n >= 1, K >= 2), got {p.shape}")
    y = np.asarray(y_true)
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true must have shape ({p.shape[0]},), got {y.shape}")
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(y == np.round(y)):
            raise ValueError("y_true must hold integer label ids")
    y = y.astype(np.intp)
    k = p.shape[1]
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"label ids must lie in 0..{k - 1}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be finite and lie in [0, 1]")
    if not np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-4):
        raise ValueError("rows of probs must sum to 1")
    if k == 2 and pos_label not in (0, 1):
        raise ValueError(f"pos_label must be 0 or 1 for a binary task, got {pos_label}")
    return y, p, k


def _defined(value) -> dict:
    return {"value": float(value)}


def _undefined(reason: str) -> dict:
    return {"value": None, "reason": reason}


def _ece_bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin i holds confidences in (i/n_bins, (i+1)/n_bins]; 0 goes to bin 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], confidence, side="left")


def compute_metrics(y_true, probs, pos_label: int = 1) -> dict[str, dict]:
    """Every metric of METRIC_NAMES as {"value": float} or {"value": None, "reason": str}.

    Values equal sklearn's: accuracy_score; precision/recall/f1_score (average="binary" with
    pos_label, or "macro" -- sklearn's default label set, i.e. classes seen in y_true or y_pred,
    a class never predicted counting precision 0); roc_auc_score on probs[:, pos_label] (or
    multi_class="ovr", macro); log_loss(labels=range(K)). Brier: binary = mean (p_pos - y_pos)^2,
    multi-class = mean over examples of sum_k (p_k - onehot_k)^2. ECE: 15 equal-width bins of the
    top-1 confidence, sum over bins of (count/n) * |accuracy - confidence|.
    Undefined binary cases (no positive predicted / present, one class for AUC) give None.
    """
    y, p, k = _check(y_true, probs, pos_label)
    y_pred = np.argmax(p, axis=1)
    # Undefined cases are screened out first, so the warnings sklearn would raise are only noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"accuracy": _defined(accuracy_score(y, y_pred))}
        if k == 2:
            out.update(_binary_metrics(y, y_pred, p, pos_label))
            brier = np.mean((p[:, pos_label] - (y == pos_label)) ** 2)
        else:
            out.update(_multiclass_metrics(y, y_pred, p, k))
            brier = np.mean(np.sum((p - np.eye(k)[y]) ** 2, axis=1))
        out["log_loss"] = _defined(log_loss(y, p, labels=np.arange(k)))
    out["brier"] = _defined(brier)
    out["ece"] = _defined(_ece_from_bins(reliability_bins(y, p)))
    return {name: out[name] for name in METRIC_NAMES}


def _binary_metrics(y, y_pred, p, pos_label: int) -> dict[str, dict]:
    """F1, precision, recall, AUC about `pos_label` (sklearn's average="binary"), None where 0/0."""
    is_pos, pred_pos = y == pos_label, y_pred == pos_label
    kw = dict(average="binary", pos_label=pos_label, zero_division=0)
    out: dict[str, dict] = {}
    if not pred_pos.any() and not is_pos.any():
        out["f1"] = _undefined("no positive example and none predicted positive")
    else:
        out["f1"] = _defined(f1_score(y, y_pred, **kw))
    if not pred_pos.any():
        out["precision"] = _undefined("no example is predicted as the positive class")
    else:
        out["precision"] = _defined(precision_score(y, y_pred, **kw))
    if not is_pos.any():
        out["recall"] = _undefined("no example of the positive class in y_true")
    else:
        out["recall"] = _defined(recall_score(y, y_pred, **kw))
    if is_pos.all() or not is_pos.any():
        out["auc_roc"] = _undefined("y_true holds only one class")
    else:
        out["auc_roc"] = _defined(roc_auc_score(is_pos, p[:, pos_label]))
    return out


def _multiclass_metrics(y, y_pred, p, k: int) -> dict[str, dict]:
    """Macro F1, precision, recall and one-vs-rest macro AUC (None if a class is absent from y_true)."""
    kw = dict(average="macro", zero_division=0)
    out = {
        "f1": _defined(f1_score(y, y_pred, **kw)),
        "precision": _defined(precision_score(y, y_pred, **kw)),
        "recall": _defined(recall_score(y, y_pred, **kw)),
    }
    missing = np.setdiff1d(np.arange(k), y)
    if missing.size:
        out["auc_roc"] = _undefined(
            f"class(es) {missing.tolist()} absent from y_true; one-vs-rest AUC needs every class"
        )
    else:
        # = roc_auc_score(multi_class="ovr", average="macro"), minus its sum-to-1 check
        out["auc_roc"] = _defined(np.mean([roc_auc_score(y == c, p[:, c]) for c in range(k)]))
    return out


def confusion_matrix(y_true, y_pred, num_labels: int) -> list[list[int]]:
    """Counts with rows = true label, columns = predicted label."""
    t = np.asarray(y_true, dtype=np.intp)
    q = np.asarray(y_pred, dtype=np.intp)
    if t.shape != q.shape or t.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D arrays of the same length")
    if t.size and (min(t.min(), q.min()) < 0 or max(t.max(), q.max()) >= num_labels):
        raise ValueError(f"label ids must lie in 0..{num_labels - 1}")
    cm = np.bincount(t * num_labels + q, minlength=num_labels * num_labels)
    return cm.reshape(num_labels, num_labels).tolist()


def per_class_report(y_true, y_pred, num_labels: int, label_names=None) -> list[dict]:
    """Per class: name, precision, recall, f1, support; None where the ratio is 0/0.

    F1 = 2 TP / (2 TP + FP + FN), so it is 0 (not None) for a class that is present but never
    predicted -- the same as sklearn's precision_recall_fscore_support(zero_division=nan).
    """
    cm = np.asarray(confusion_matrix(y_true, y_pred, num_labels))
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    names = list(label_names) if label_names is not None else [str(i) for i in range(num_labels)]
    if len(names) != num_labels:
        raise ValueError(f"{len(names)} label names for {num_labels} labels")

    def ratio(a, b):
        return float(a / b) if b > 0 else None

    return [
        {
            "name": names[c],
            "precision": ratio(tp[c], predicted[c]),
            "recall": ratio(tp[c], support[c]),
            "f1": ratio(2 * tp[c], support[c] + predicted[c]),
            "support": int(support[c]),
        }
        for c in range(num_labels)
    ]


def _thin(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> tuple[list, list]:
    """Keep at most max_points points, evenly spaced along the curve, both endpoints included."""
    if len(fpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [float(v) for v in fpr], [float(v) for v in tpr]


def _roc(is_pos: np.ndarray, score: np.ndarray, max_points: int) -> dict | None:
    if is_pos.all() or not is_pos.any():
        return None
    fpr, tpr, _ = roc_curve(is_pos, score)
    fpr_l, tpr_l = _thin(fpr, tpr, max_points)
    return {"fpr": fpr_l, "tpr": tpr_l, "auc": float(roc_auc_score(is_pos, score))}


def roc_points(y_true, probs, pos_label: int = 1, max_points: int = 200) -> dict | None:
    """ROC curve(s) for plotting, as JSON-able lists.

    Binary: {"fpr", "tpr", "auc"}, None if y_true holds one class. Multi-class:
    {"per_class": {"0": {...}, ...}} one-vs-rest; classes absent from y_true are left out,
    None if no class has a curve.
    """
    if max_points < 2:
        raise ValueError("max_points must be >= 2 to keep both endpoints")
    y, p, k = _check(y_true, probs, pos_label)
    if k == 2:
        return _roc(y == pos_label, p[:, pos_label], max_points)
    curves = {str(c): _roc(y == c, p[:, c], max_points) for c in range(k)}
    curves = {c: v for c, v in curves.items() if v is not None}
    return {"per_class": curves} if curves else None


def reliability_bins(y_true, probs, n_bins: int = N_ECE_BINS) -> dict:
    """Reliability diagram data on top-1 confidence: equal-width bins (i/n, (i+1)/n].

    ECE = sum over bins of count/n * |accuracy - confidence| (empty bins contribute nothing).
    """
    y, p, _ = _check(y_true, probs)
    conf = p.max(axis=1)
    correct = (np.argmax(p, axis=1) == y).astype(np.float64)
    idx = _ece_bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    correct_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    return {
        "bin_edges": [float(e) for e in np.linspace(0.0, 1.0, n_bins + 1)],
        "confidence": [float(s / c) if c else None for s, c in zip(conf_sum, count)],
        "accuracy": [float(s / c) if c else None for s, c in zip(correct_sum, count)],
        "count": [int(c) for c in count],
    }


def _ece_from_bins(bins: dict) -> float:
    n = sum(bins["count"])
    return float(sum(c / n * abs(a - f) for c, a, f in zip(bins["count"], bins["accuracy"], bins["confidence"]) if c))


# ---------------------------------------------------------------- weighted (bootstrap) core ---


def _weighted_auc(is_pos: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC for every row of w: sum over (pos i, neg j) of w_i w_j psi / (W+ W-),
    psi = 1 if s_i > s_j, 1/2 if tied.

    One sort of the negatives' scores, shared by all rows; a running sum of negative weights then
    gives, for each positive, the negative weight strictly below its score (C[lo]) and up to and
    including it (C[hi]); their mean counts ties as 1/2. O(R * n) memory, never O(n^2).
    """
    neg = np.flatnonzero(~is_pos)
    pos = np.flatnonzero(is_pos)
    order = neg[np.argsort(score[neg], kind="stable")]
    neg_scores = score[order]
    lo = np.searchsorted(neg_scores, score[pos], side="left")
    hi = np.searchsorted(neg_scores, score[pos], side="right")
    cum = np.zeros((w.shape[0], order.size + 1))
    np.cumsum(w[:, order], axis=1, out=cum[:, 1:])
    below = 0.5 * (cum[:, lo] + cum[:, hi])  # (R, n_pos)
    w_pos = w[:, pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.einsum("rp,rp->r", w_pos, below) / (w_pos.sum(axis=1) * cum[:, -1])


def weighted_metric_arrays(y_true, probs, weights, pos_label: int = 1) -> dict[str, np.ndarray]:
    """Every metric for each row of `weights` (R, n): row r counts how often each example appears
    in resample r. Returns {metric: array (R,)}, nan where a metric is undefined in that resample.

    Same definitions as compute_metrics (a row of ones reproduces it; integer counts reproduce it
    on the explicitly repeated sample), but every metric is a ratio of weighted per-example sums,
    so all R rows are done with matrix products -- no Python loop over R.
    """
    y, p, k = _check(y_true, probs, pos_label)
    w = _check_weights(weights, y.shape[0])
    y_pred = np.argmax(p, axis=1)
    correct = (y_pred == y).astype(np.float64)
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 -> nan is the point
        out = {"accuracy": w @ correct / total}
        if k == 2:
            out.update(_weighted_binary(y, y_pred, p, w, pos_label))
            sq_err = (p[:, pos_label] - (y == pos_label)) ** 2
        else:
            out.update(_weighted_multiclass(y, y_pred, p, w, k))
            sq_err = np.sum((p - np.eye(k)[y]) ** 2, axis=1)
        nll = -np.log(np.clip(p[np.arange(y.size), y], _CLIP, 1 - _CLIP))
        out["log_loss"] = w @ nll / total
        out["brier"] = w @ sq_err / total
        # ECE = sum_b |sum_{i in b} w_i (correct_i - conf_i)| / sum_i w_i
        conf = p.max(axis=1)
        in_bin = np.eye(N_ECE_BINS)[_ece_bin_index(conf, N_ECE_BINS)]  # (n, bins)
        out["ece"] = np.abs(w @ (in_bin * (correct - conf)[:, None])).sum(axis=1) / total
    return {name: out[name] for name in METRIC_NAMES}


def _check_weights(weights, n: int) -> np.ndarray:
    """(R, n) non-negative resample counts; one row (n,) becomes (1, n)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must have shape (R, {n}), got {w.shape}")
    if w.size and w.min() < 0:
        raise ValueError("weights must be non-negative")
    return w


def _weighted_binary(y, y_pred, p, w, pos_label: int) -> dict[str, np.ndarray]:
    """F1, precision, recall, AUC about `pos_label` per row of w; nan where 0/0 (caller's errstate)."""
    t = (y == pos_label).astype(np.float64)
    f = (y_pred == pos_label).astype(np.float64)
    tp, n_true, n_pred = w @ (t * f), w @ t, w @ f
    return {
        "f1": 2 * tp / (n_true + n_pred),
        "precision": tp / n_pred,
        "recall": tp / n_true,
        "auc_roc": _weighted_auc(t.astype(bool), p[:, pos_label], w),
    }


def _weighted_multiclass(y, y_pred, p, w, k: int) -> dict[str, np.ndarray]:
    """Macro F1, precision, recall and one-vs-rest macro AUC per row of w."""
    onehot_true, onehot_pred = np.eye(k)[y], np.eye(k)[y_pred]
    tp = w @ (onehot_true * onehot_pred)  # (R, K)
    n_true, n_pred = w @ onehot_true, w @ onehot_pred
    # sklearn's macro: average over classes seen in y_true or y_pred, 0/0 counted as 0
    seen = (n_true + n_pred) > 0
    n_seen = seen.sum(axis=1)

    def macro(per_class):
        return np.where(seen, np.nan_to_num(per_class, nan=0.0), 0.0).sum(axis=1) / n_seen

    return {
        "f1": macro(2 * tp / (n_true + n_pred)),
        "precision": macro(tp / n_pred),
        "recall": macro(tp / n_true),
        # a class absent from a resample makes its AUC nan, and so the macro mean (as sklearn)
        "auc_roc": np.mean([_weighted_auc(y == c, p[:, c], w) for c in range(k)], axis=0),
    }
