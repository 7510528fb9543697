"""stats/flips: the paired 2x2 table, Wilson intervals, the changed examples and the accuracy slices, each against an
independent computation (hand counts, statsmodels / scipy, numpy by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from lorafair.stats import flips
from lorafair.stats.paired import mcnemar_exact


def test_paired_table_equals_a_hand_count():
    ref = [1, 1, 1, 0, 0, 1, 0, 1]
    new = [1, 0, 1, 1, 0, 1, 1, 0]
    # by hand: (1,1) x3 at 0, 2, 5; (1,0) x2 at 1, 7; (0,1) x2 at 3, 6; (0,0) x1 at 4
    assert flips.paired_table(ref, new) == {
        "both_right": 3,
        "only_new_right": 2,
        "only_reference_right": 2,
        "both_wrong": 1,
        "n": 8,
    }


def test_discordant_cells_are_the_counts_mcnemar_tests():
    rng = np.random.default_rng(4)
    ref, new = rng.random(500) < 0.7, rng.random(500) < 0.8
    table = flips.paired_table(ref, new)
    test = mcnemar_exact(ref, new)
    assert (table["only_reference_right"], table["only_new_right"]) == (test["b"], test["c"])
    b, c = table["only_reference_right"], table["only_new_right"]
    assert binomtest(c, b + c, 0.5).pvalue == pytest.approx(test["p_value"])
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    grid = [[table["both_right"], b], [c, table["both_wrong"]]]  # rows: reference right / wrong
    assert sm.mcnemar(grid, exact=True).pvalue == pytest.approx(test["p_value"])


@pytest.mark.parametrize("count,n", [(0, 50), (3, 50), (25, 50), (50, 50), (7, 1000), (1, 1)])
def test_wilson_interval_matches_statsmodels(count, n):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    lo, hi = proportion.proportion_confint(count, n, alpha=0.05, method="wilson")
    assert flips.wilson_interval(count, n, 0.05) == pytest.approx([lo, hi], abs=1e-12)
    lo, hi = proportion.proportion_confint(count, n, alpha=0.1, method="wilson")
    assert flips.wilson_interval(count, n, 0.1) == pytest.approx([lo, hi], abs=1e-12)


def test_flip_rate_of_no_example_is_undefined():
    assert flips.flip_rate(0, 0) == {"value": None, "ci": [None, None], "count": 0, "n": 0, "method": "wilson"}


def test_changed_examples_are_ordered_by_the_change_of_the_true_class_probability():
    y = np.array([0, 1, 1, 0, 1])
    # binary fractions, so that equal changes are equal exactly
    ref = np.array([[0.875, 0.125], [0.625, 0.375], [0.875, 0.125], [0.375, 0.625], [0.25, 0.75]])
    new = np.array([[0.375, 0.625], [0.375, 0.625], [0.125, 0.875], [0.625, 0.375], [0.75, 0.25]])
    out = flips.changed_examples(y, ref, new)
    # fixed (ref wrong, new right): rows 1 (+0.25), 2 (+0.75), 3 (+0.25) -> 2 first, ties kept in row order
    assert out["fixed"].tolist() == [2, 1, 3]
    # broken (ref right, new wrong): rows 0 (-0.5), 4 (-0.5) -> both, in row order
    assert out["broken"].tolist() == [0, 4]


def test_length_quartiles_follow_numpy_quantiles():
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 200, size=401)
    q1, q2, q3 = np.percentile(lengths, [25, 50, 75])
    by_hand = [lengths <= q1, (lengths > q1) & (lengths <= q2), (lengths > q2) & (lengths <= q3), lengths > q3]
    for got, want in zip(flips.length_quartiles(lengths), by_hand):
        assert np.array_equal(got, want)
    assert sum(m.sum() for m in by_hand) == lengths.size


def _probs_from_predictions(pred, k):
    return np.eye(k)[pred] * 0.8 + 0.2 / k


def test_slices_equal_numpy_by_hand():
    rng = np.random.default_rng(2)
    n, k = 600, 3
    y = rng.integers(0, k, n)
    preds = {v: np.where(rng.random(n) < q, y, rng.integers(0, k, n)) for v, q in (("B", 0.8), ("A", 0.5))}
    probs = {v: _probs_from_predictions(p, k) for v, p in preds.items()}
    lengths = rng.integers(3, 90, n)
    out = flips.slices(y, probs, [("B", "A"), ("B", "A1")], ["x", "y", "z"], lengths, 0.05, 2000, 0)
    assert [r["label"] for r in out["by_class"]] == ["x", "y", "z"]
    for c, row in enumerate(out["by_class"]):
        mask = y == c
        assert row["n"] == mask.sum()
        for v in ("B", "A"):
            assert row["accuracy"][v]["value"] == pytest.approx(np.mean(preds[v][mask] == c))
        delta = np.mean(preds["B"][mask] == c) - np.mean(preds["A"][mask] == c)
        assert list(row["deltas"]) == ["B-A"]  # A1 did not run
        assert row["deltas"]["B-A"]["value"] == pytest.approx(delta)
    q = np.percentile(lengths, [25, 50, 75])
    bins = np.digitize(lengths, q, right=True)  # an independent binning: (-inf, q1], (q1, q2], ...
    for quartile, row in enumerate(out["by_length"]):
        mask = bins == quartile
        assert (row["quartile"], row["n"]) == (quartile + 1, mask.sum())
        assert (row["min_tokens"], row["max_tokens"]) == (lengths[mask].min(), lengths[mask].max())
        for v in ("B", "A"):
            assert row["accuracy"][v]["value"] == pytest.approx(np.mean(preds[v][mask] == y[mask]))


def test_slice_delta_ci_is_near_the_normal_approximation_of_a_paired_difference():
    rng = np.random.default_rng(3)
    n = 4000
    y = np.zeros(n, dtype=int)
    preds = {"B": (rng.random(n) > 0.85).astype(int), "A": (rng.random(n) > 0.7).astype(int)}
    probs = {v: _probs_from_predictions(p, 2) for v, p in preds.items()}
    row = flips.slices(y, probs, [("B", "A")], ["neg", "pos"], None, 0.05, 4000, 0)["by_class"][0]
    diff = (preds["B"] == 0).astype(float) - (preds["A"] == 0).astype(float)
    se = diff.std(ddof=0) / np.sqrt(n)
    lo, hi = row["deltas"]["B-A"]["ci"]
    assert lo == pytest.approx(diff.mean() - 1.96 * se, abs=0.15 * se + 1e-3)
    assert hi == pytest.approx(diff.mean() + 1.96 * se, abs=0.15 * se + 1e-3)
    assert "by_length" not in flips.slices(y, probs, [("B", "A")], ["neg", "pos"], None)


def test_slices_without_bootstrap_have_no_delta_ci_and_an_empty_class_is_undefined():
    y = np.array([0, 0, 0, 0])
    probs = {v: _probs_from_predictions(np.array([0, 1, 0, 0]), 2) for v in ("B", "A")}
    out = flips.slices(y, probs, [("B", "A")], ["neg", "pos"], None, 0.05, 0, 0)
    assert out["delta_ci"] is None
    assert out["by_class"][0]["deltas"]["B-A"] == {"value": 0.0, "ci": [None, None]}
    empty = out["by_class"][1]
    assert empty["n"] == 0 and empty["accuracy"]["B"] == {"value": None, "ci": [None, None]}
    assert empty["deltas"]["B-A"]["value"] is None


def test_slice_delta_ci_equals_an_index_bootstrap_by_hand_on_a_small_slice():
    """Small slice, skewed differences: the normal approximation is off, an index-resampling bootstrap is not."""
    y = np.zeros(40, dtype=int)
    b_right = np.array([1] * 36 + [0] * 4)
    a_right = np.array([1] * 30 + [0] * 6 + [1] * 2 + [0] * 2)
    probs = {"B": _probs_from_predictions(1 - b_right, 2), "A": _probs_from_predictions(1 - a_right, 2)}
    lo, hi = flips.slices(y, probs, [("B", "A")], ["neg", "pos"], None, 0.05, 20000, 5)["by_class"][0]["deltas"]["B-A"][
        "ci"
    ]
    diff = (b_right - a_right).astype(float)
    rng = np.random.default_rng(123)
    means = diff[rng.integers(0, diff.size, size=(20000, diff.size))].mean(axis=1)
    want_lo, want_hi = np.percentile(means, [2.5, 97.5])
    assert lo == pytest.approx(want_lo, abs=0.026) and hi == pytest.approx(want_hi, abs=0.026)  # one step = 1/40
