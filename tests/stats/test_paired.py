"""lorafair.stats.paired against scipy, statsmodels and a slow DeLong written here.

Its speed (10,000 resamples of 500 examples, 3 variants) is measured by benchmarks/run_bench.py, not asserted here.
"""

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from lorafair.stats.metrics import METRIC_NAMES, compute_metrics
from lorafair.stats.paired import delong_test, mcnemar_exact, paired_bootstrap, relative_gain


def _variants(seed, n, k=2):
    """Three variants scored on the same examples; B is better than A, A1 is correlated with A."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    signal = np.eye(k)[y]
    noise = rng.normal(size=(n, k))

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return y, {
        "A": softmax(0.8 * signal + noise),
        "A1": softmax(0.8 * signal + noise + 0.3 * rng.normal(size=(n, k))),
        "B": softmax(1.6 * signal + noise + 0.5 * rng.normal(size=(n, k))),
    }


@pytest.fixture(scope="module")
def boot300():
    y, probs = _variants(0, 300)
    res = paired_bootstrap(y, probs, [("B", "A"), ("A1", "A")], n_resamples=10_000, seed=1)
    return y, probs, res


def _scipy_ci(data, statistic):
    r = sps.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=10_000,
        random_state=np.random.default_rng(123),
    )
    return r.confidence_interval.low, r.confidence_interval.high


def test_accuracy_ci_agrees_with_scipy_bootstrap(boot300):
    y, probs, res = boot300
    correct = probs["B"].argmax(axis=1) == y
    lo, hi = _scipy_ci((correct.astype(float),), lambda c, axis: c.mean(axis=axis))
    assert res["variants"]["B"]["accuracy"] == pytest.approx([lo, hi], abs=0.01)


def test_paired_delta_cis_agree_with_scipy_bootstrap(boot300):
    y, probs, res = boot300
    cb = (probs["B"].argmax(axis=1) == y).astype(float)
    ca = (probs["A"].argmax(axis=1) == y).astype(float)
    lo, hi = _scipy_ci((cb, ca), lambda b, a, axis: b.mean(axis=axis) - a.mean(axis=axis))
    assert res["deltas"]["B-A"]["accuracy"] == pytest.approx([lo, hi], abs=0.01)
    # a second, continuous metric: log loss is a mean of per-example losses
    nll_b = -np.log(probs["B"][np.arange(300), y])
    nll_a = -np.log(probs["A"][np.arange(300), y])
    lo, hi = _scipy_ci((nll_b, nll_a), lambda b, a, axis: b.mean(axis=axis) - a.mean(axis=axis))
    assert res["deltas"]["B-A"]["log_loss"] == pytest.approx([lo, hi], abs=0.01)
    # pairing matters: the paired delta CI is much narrower than an unpaired one would be
    unpaired = sps.bootstrap(
        (cb, ca),
        lambda b, a, axis: b.mean(axis=axis) - a.mean(axis=axis),
        paired=False,
        vectorized=True,
        method="percentile",
        n_resamples=2000,
        random_state=np.random.default_rng(0),
    ).confidence_interval
    a1 = res["deltas"]["A1-A"]["accuracy"]
    c1 = (probs["A1"].argmax(axis=1) == y).astype(float)
    unpaired_a1 = sps.bootstrap(
        (c1, ca),
        lambda b, a, axis: b.mean(axis=axis) - a.mean(axis=axis),
        paired=False,
        vectorized=True,
        method="percentile",
        n_resamples=2000,
        random_state=np.random.default_rng(0),
    ).confidence_interval
    assert a1[1] - a1[0] < 0.7 * (unpaired_a1.high - unpaired_a1.low)
    # B - A too, against the normal approximations: paired 2 z sd(cb - ca) / sqrt(n); unpaired adds the variances
    n, z = len(y), sps.norm.ppf(0.975)
    paired_width = 2 * z * np.std(cb - ca) / np.sqrt(n)
    unpaired_width = 2 * z * np.sqrt(cb.var() / n + ca.var() / n)
    assert unpaired.high - unpaired.low == pytest.approx(unpaired_width, rel=0.1)  # the reference is what it claims
    ba = res["deltas"]["B-A"]["accuracy"]
    assert ba[1] - ba[0] == pytest.approx(paired_width, rel=0.1)
    assert ba[1] - ba[0] < 0.75 * (unpaired.high - unpaired.low)


def test_cis_contain_point_estimates(boot300):
    y, probs, res = boot300
    points = {v: compute_metrics(y, p) for v, p in probs.items()}
    for v in probs:
        for m in METRIC_NAMES:
            lo, hi = res["variants"][v][m]
            assert lo <= points[v][m]["value"] <= hi, (v, m)
    for m in METRIC_NAMES:
        lo, hi = res["deltas"]["B-A"][m]
        assert lo <= points["B"][m]["value"] - points["A"][m]["value"] <= hi, m
    assert set(res["deltas"]) == {"B-A", "A1-A"}
    assert res["undefined_resamples"] == {}


def test_identical_variants_have_exactly_zero_delta():
    y, probs = _variants(2, 120, k=3)
    same = {"X": probs["A"], "Y": probs["A"].copy()}
    res = paired_bootstrap(y, same, [("X", "Y")], n_resamples=500, seed=0)
    for m in METRIC_NAMES:
        assert res["deltas"]["X-Y"][m] == [0.0, 0.0], m


def test_seed_reproducible_and_chunking_does_not_change_results():
    y, probs = _variants(3, 77)
    a = paired_bootstrap(y, probs, [("B", "A")], n_resamples=900, seed=5, chunk_size=1000)
    b = paired_bootstrap(y, probs, [("B", "A")], n_resamples=900, seed=5, chunk_size=7)
    c = paired_bootstrap(y, probs, [("B", "A")], n_resamples=900, seed=6)
    again = paired_bootstrap(y, probs, [("B", "A")], n_resamples=900, seed=5, chunk_size=1000)
    assert a == again
    # chunks see the same resamples; only BLAS summation order may move the last bits
    for group in ("variants", "deltas"):
        for name in a[group]:
            for m in METRIC_NAMES:
                np.testing.assert_allclose(a[group][name][m], b[group][name][m], rtol=1e-12, atol=1e-14)
    assert a["variants"] != c["variants"]


def test_undefined_metrics_are_counted_and_all_nan_gives_none():
    rng = np.random.default_rng(4)
    y = np.zeros(30, int)
    y[0] = 1  # a single positive: many resamples miss it, AUC/recall undefined there
    probs = rng.dirichlet([1, 1], size=30)
    res = paired_bootstrap(y, {"A": probs}, [], n_resamples=2000, seed=0)
    missed = res["undefined_resamples"]["A"]["auc_roc"]
    assert 0.25 * 2000 < missed < 0.45 * 2000  # P(miss) = (29/30)^30 ~ 0.36
    assert res["undefined_resamples"]["A"]["recall"] == missed
    res = paired_bootstrap(np.zeros(30, int), {"A": probs}, [], n_resamples=200, seed=0)
    assert res["variants"]["A"]["auc_roc"] == [None, None]
    assert res["undefined_resamples"]["A"]["auc_roc"] == 200


def test_unknown_variant_in_delta_raises():
    y, probs = _variants(0, 20)
    with pytest.raises(ValueError):
        paired_bootstrap(y, probs, [("B", "nope")], n_resamples=10)


@pytest.mark.parametrize(
    "b,c,a,d",
    [
        (0, 0, 5, 3),
        (0, 1, 4, 4),
        (1, 0, 0, 0),
        (5, 5, 10, 2),
        (3, 10, 20, 7),
        (10, 3, 1, 1),
        (0, 25, 3, 0),
        (40, 41, 9, 9),
        (100, 60, 50, 50),
        (7, 0, 0, 12),
    ],
)
def test_mcnemar_exact_matches_statsmodels(b, c, a, d):
    # a: both right, b: ref right / new wrong, c: ref wrong / new right, d: both wrong
    ref = np.array([1] * a + [1] * b + [0] * c + [0] * d, bool)
    new = np.array([1] * a + [0] * b + [1] * c + [0] * d, bool)
    perm = np.random.default_rng(b * 100 + c).permutation(ref.size)
    got = mcnemar_exact(ref[perm], new[perm])
    assert (got["b"], got["c"]) == (b, c)
    want = mcnemar([[a, b], [c, d]], exact=True).pvalue
    assert got["p_value"] == pytest.approx(want, rel=1e-10, abs=1e-300)


def _slow_delong(y, s1, s2):
    """DeLong et al. 1988 from the pairwise kernel, O(m * n)."""
    comps = []
    for s in (s1, s2):
        x, z = s[y == 1][:, None], s[y == 0][None, :]
        psi = (x > z) + 0.5 * (x == z)
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    m, n = (y == 1).sum(), (y == 0).sum()
    s10 = np.cov(np.stack([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.stack([comps[0][2], comps[1][2]]))
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (comps[0][0] - comps[1][0]) / np.sqrt(var)
    return comps[0][0], comps[1][0], cov, z, 2 * sps.norm.sf(abs(z))


@pytest.mark.parametrize("rounded", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_slow_reference(seed, rounded):
    rng = np.random.default_rng(seed)
    n = 400
    y = (rng.random(n) < 0.35).astype(int)
    s1 = y * 0.8 + rng.normal(size=n)
    s2 = 0.6 * s1 + y * 0.3 + rng.normal(size=n)  # correlated with s1
    if rounded:  # heavy ties within and across classes
        s1, s2 = np.round(s1), np.round(s2 * 2) / 2
    got = delong_test(y, s1, s2)
    auc1, auc2, cov, z, p = _slow_delong(y, s1, s2)
    assert got["auc_1"] == pytest.approx(roc_auc_score(y, s1), abs=1e-12)
    assert got["auc_2"] == pytest.approx(roc_auc_score(y, s2), abs=1e-12)
    assert got["auc_1"] == pytest.approx(auc1, abs=1e-12)
    assert got["var_1"] == pytest.approx(cov[0, 0], rel=1e-9)
    assert got["var_2"] == pytest.approx(cov[1, 1], rel=1e-9)
    assert got["cov"] == pytest.approx(cov[0, 1], rel=1e-9)
    assert got["z"] == pytest.approx(z, rel=1e-8)
    assert got["p_value"] == pytest.approx(p, rel=1e-7)


def test_delong_degenerate_cases():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    s = rng.normal(size=50)
    same = delong_test(y, s, s.copy())
    assert same["z"] == 0.0 and same["p_value"] == 1.0
    assert same["auc_1"] == same["auc_2"]
    with pytest.raises(ValueError):
        delong_test(np.ones(10, int), s[:10], s[:10])
    # a perfect and a constant scorer: both variance estimates are 0 but the AUCs differ
    yy = np.array([0, 0, 0, 1, 1, 1])
    out = delong_test(yy, yy.astype(float), np.zeros(6))
    assert (out["auc_1"], out["auc_2"], out["p_value"]) == (1.0, 0.5, 0.0)


def test_relative_gain():
    assert relative_gain(0.05, 0.8) == pytest.approx(0.0625)
    assert relative_gain(0.05, 0) is None
    assert relative_gain(0.05, None) is None
    assert relative_gain(None, 0.5) is None
