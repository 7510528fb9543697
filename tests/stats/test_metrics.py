"""lorafair.stats.metrics against scikit-learn and against slow references written here."""

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from lorafair.stats.metrics import (
    METRIC_NAMES,
    compute_metrics,
    confusion_matrix,
    per_class_report,
    reliability_bins,
    roc_points,
    weighted_metric_arrays,
)


def _random_task(seed, n, k, tied=False):
    rng = np.random.default_rng(seed)
    if tied:  # coarse probabilities: many tied scores and argmax ties
        raw = rng.integers(1, 4, size=(n, k)).astype(float)
        probs = raw / raw.sum(axis=1, keepdims=True)
    else:
        probs = rng.dirichlet(np.ones(k) * 0.7, size=n)
    # labels correlated with the probabilities, so metrics are not all at chance level
    y = np.array([rng.choice(k, p=0.5 * row + 0.5 / k) for row in probs])
    return y, probs


def _slow_ece(y, probs, n_bins=15):
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf > lo) & (conf <= hi) if b else (conf <= hi)
        if inside.any():
            total += inside.mean() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    return total


def _sklearn_metrics(y, probs, pos_label=1):
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    if k == 2:
        kw = dict(average="binary", pos_label=pos_label)
        auc = skm.roc_auc_score(y == pos_label, probs[:, pos_label])
        brier = skm.brier_score_loss(y == pos_label, probs[:, pos_label])
    else:
        kw = dict(average="macro")
        auc = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=range(k))
        brier = skm.brier_score_loss(y, probs, labels=range(k))
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred, **kw),
        "precision": skm.precision_score(y, pred, **kw),
        "recall": skm.recall_score(y, pred, **kw),
        "auc_roc": auc,
        "log_loss": skm.log_loss(y, probs, labels=range(k)),
        "brier": brier,
        "ece": _slow_ece(y, probs),
    }


def test_metric_names_fixed():
    assert METRIC_NAMES == ("accuracy", "f1", "precision", "recall", "auc_roc", "log_loss", "brier", "ece")


@pytest.mark.parametrize(
    "k,pos_label,tied", [(2, 1, False), (2, 0, False), (2, 1, True), (3, 1, False), (3, 1, True), (5, 1, False)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_compute_metrics_equals_sklearn(k, pos_label, tied, seed):
    y, probs = _random_task(seed, 300, k, tied)
    got = compute_metrics(y, probs, pos_label=pos_label)
    want = _sklearn_metrics(y, probs, pos_label)
    assert list(got) == list(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert got[name]["value"] == pytest.approx(want[name], abs=1e-12), name
    json.dumps(got)  # JSON-able as is


def test_log_loss_with_hard_zero_and_one_probabilities_matches_sklearn():
    y = np.array([0, 1, 1, 0, 1])
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.3, 0.7], [0.5, 0.5]])
    want = skm.log_loss(y, probs, labels=[0, 1])
    assert compute_metrics(y, probs)["log_loss"]["value"] == pytest.approx(want, rel=1e-12)
    assert weighted_metric_arrays(y, probs, np.ones((1, 5)))["log_loss"][0] == pytest.approx(want, rel=1e-12)


def test_undefined_binary_metrics_are_none_with_reason_and_silent():
    y = np.zeros(6, dtype=int)  # no positive example at all
    probs = np.tile([0.8, 0.2], (6, 1))  # and nothing predicted positive
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any sklearn warning leaking out fails the test
        got = compute_metrics(y, probs)
    for name in ("f1", "precision", "recall", "auc_roc"):
        assert got[name]["value"] is None and got[name]["reason"], name
    assert got["accuracy"]["value"] == 1.0
    assert got["brier"]["value"] == pytest.approx(0.04)

    y = np.array([0, 1, 1, 0])
    probs = np.tile([0.9, 0.1], (4, 1))  # positives exist but none predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compute_metrics(y, probs)
    assert got["precision"]["value"] is None
    assert got["recall"]["value"] == 0.0 and got["f1"]["value"] == 0.0
    assert got["auc_roc"]["value"] == 0.5


def test_multiclass_absent_class_and_never_predicted_class():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=50)
    probs[:, 2] *= 0.01  # class 2 is never predicted...
    probs /= probs.sum(axis=1, keepdims=True)
    y = rng.integers(0, 2, size=50)  # ...and absent from y_true: no OvR AUC for it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compute_metrics(y, probs)
    assert got["auc_roc"]["value"] is None and "2" in got["auc_roc"]["reason"]
    pred = probs.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got["precision"]["value"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    # now class 2 is present in y_true but never predicted: sklearn's macro counts its precision as 0
    y[:5] = 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = skm.precision_score(y, pred, average="macro")
    assert compute_metrics(y, probs)["precision"]["value"] == pytest.approx(want, abs=1e-12)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        compute_metrics([0, 1], np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError):
        compute_metrics([0, 2], np.array([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError):
        compute_metrics([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]]))


def test_confusion_matrix_and_per_class_report_match_sklearn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 80)
    pred = rng.integers(0, 3, 80)
    pred[pred == 1] = 0  # class 1 never predicted
    y[y == 2] = 0  # and class 2 absent from y_true ...
    y[0] = 3  # ... while class 3 is there and class 3 is never predicted either
    assert confusion_matrix(y, pred, 4) == skm.confusion_matrix(y, pred, labels=range(4)).tolist()
    report = per_class_report(y, pred, 4, ["a", "b", "c", "d"])
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(4), zero_division=np.nan)
    for c, row in enumerate(report):
        assert row["name"] == "abcd"[c]
        assert row["support"] == s[c]
        for key, ref in (("precision", p[c]), ("recall", r[c]), ("f1", f[c])):
            assert (row[key] is None) == bool(np.isnan(ref)), (c, key)
            if row[key] is not None:
                assert row[key] == pytest.approx(ref, abs=1e-12)
    assert report[1]["precision"] is None  # never predicted
    assert report[2]["recall"] is None  # no support
    json.dumps(report)


def test_roc_points_binary_thinned_keeps_endpoints_and_auc():
    y, probs = _random_task(5, 1000, 2)
    fpr, tpr, _ = skm.roc_curve(y, probs[:, 1])
    assert len(fpr) > 50
    pts = roc_points(y, probs, max_points=50)
    assert 2 <= len(pts["fpr"]) <= 50 and len(pts["fpr"]) == len(pts["tpr"])
    assert (pts["fpr"][0], pts["tpr"][0]) == (fpr[0], tpr[0])
    assert (pts["fpr"][-1], pts["tpr"][-1]) == (1.0, 1.0)
    full = set(zip(fpr.tolist(), tpr.tolist()))
    assert all(pt in full for pt in zip(pts["fpr"], pts["tpr"]))  # a subset of the real curve
    assert pts["auc"] == pytest.approx(skm.roc_auc_score(y, probs[:, 1]), abs=1e-12)
    small = roc_points(y[:20], probs[:20])
    f20, t20, _ = skm.roc_curve(y[:20], probs[:20, 1])
    assert small["fpr"] == f20.tolist() and small["tpr"] == t20.tolist()
    json.dumps(pts)
    assert roc_points(np.ones(5, int), probs[:5]) is None


def test_roc_points_multiclass_one_vs_rest():
    y, probs = _random_task(6, 200, 3)
    pts = roc_points(y, probs)
    assert set(pts["per_class"]) == {"0", "1", "2"}
    for c in range(3):
        assert pts["per_class"][str(c)]["auc"] == pytest.approx(skm.roc_auc_score(y == c, probs[:, c]), abs=1e-12)
    y[y == 2] = 0
    assert set(roc_points(y, probs)["per_class"]) == {"0", "1"}


def test_reliability_bins_give_the_ece_and_put_edges_right():
    y, probs = _random_task(8, 400, 3)
    bins = reliability_bins(y, probs)
    assert len(bins["bin_edges"]) == 16 and sum(bins["count"]) == 400
    ece = sum(c / 400 * abs(a - f) for c, a, f in zip(bins["count"], bins["accuracy"], bins["confidence"]) if c)
    assert ece == pytest.approx(compute_metrics(y, probs)["ece"]["value"], abs=1e-12)
    assert ece == pytest.approx(_slow_ece(y, probs), abs=1e-12)
    for c, a, f in zip(bins["count"], bins["accuracy"], bins["confidence"]):
        assert (c == 0) == (a is None) == (f is None)
    # confidence 1.0 lands in the last bin, 0.5 in (7/15, 8/15]
    edge = reliability_bins([0, 1], np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert edge["count"][14] == 1 and edge["count"][7] == 1
    json.dumps(bins)


def _as_arrays(metrics):
    return {k: (np.nan if v["value"] is None else v["value"]) for k, v in metrics.items()}


@pytest.mark.parametrize("k,pos_label,tied", [(2, 1, False), (2, 0, True), (3, 1, False), (4, 1, True)])
def test_weighted_ones_equal_compute_metrics(k, pos_label, tied):
    y, probs = _random_task(11, 257, k, tied)
    got = weighted_metric_arrays(y, probs, np.ones((2, len(y))), pos_label=pos_label)
    want = _as_arrays(compute_metrics(y, probs, pos_label=pos_label))
    for name in METRIC_NAMES:
        assert got[name].shape == (2,)
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("k,pos_label,tied", [(2, 1, False), (2, 0, True), (3, 1, True), (3, 1, False)])
def test_weighted_counts_equal_metrics_of_repeated_sample(k, pos_label, tied):
    y, probs = _random_task(12, 40, k, tied)
    rng = np.random.default_rng(0)
    # sparse counts: some resamples lose a class, so undefined (nan) cases get exercised too
    counts = rng.poisson(0.6, size=(60, 40))
    counts[0] = 0
    counts[0, y == 0] = 2  # one class only: AUC undefined
    got = weighted_metric_arrays(y, probs, counts, pos_label=pos_label)
    for r in range(1, len(counts)):
        idx = np.repeat(np.arange(40), counts[r])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            want = _as_arrays(compute_metrics(y[idx], probs[idx], pos_label=pos_label))
        for name in METRIC_NAMES:
            np.testing.assert_allclose(got[name][r], want[name], rtol=0, atol=1e-12, err_msg=f"{name} row {r}")
    assert np.isnan(got["auc_roc"][0])
    idx = np.repeat(np.arange(40), counts[0])
    assert got["accuracy"][0] == pytest.approx(compute_metrics(y[idx], probs[idx], pos_label)["accuracy"]["value"])


def test_weighted_auc_handles_large_inputs_without_quadratic_memory():
    # 20k examples x 50 resamples: an O(n^2) pairwise AUC would need 400M cells per resample
    y, probs = _random_task(13, 20_000, 2)
    w = np.random.default_rng(1).poisson(1.0, size=(50, 20_000))
    got = weighted_metric_arrays(y, probs, w)["auc_roc"]
    assert got[3] == pytest.approx(skm.roc_auc_score(y, probs[:, 1], sample_weight=w[3]), abs=1e-12)


def test_weighted_macro_skips_classes_missing_from_a_resample_like_sklearn():
    y, probs = _random_task(14, 90, 4)
    pred = probs.argmax(axis=1)
    counts = np.ones((2, 90))
    counts[0, (y == 3) | (pred == 3)] = 0  # class 3 neither true nor predicted in resample 0
    counts[1, y == 3] = 0  # class 3 predicted but never true in resample 1
    got = weighted_metric_arrays(y, probs, counts)
    for r in range(2):
        keep = counts[r] > 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
                assert got[name][r] == pytest.approx(fn(y[keep], pred[keep], average="macro"), abs=1e-12), (name, r)
        assert np.isnan(got["auc_roc"][r])  # OvR AUC needs every class
