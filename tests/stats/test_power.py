"""Power of the paired accuracy test: MDE and sample sizes checked against simulation and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from lorafair.stats import power


def _simulated_rejection_rate(n, psi, delta, alpha=0.05, tables=2000, seed=0):
    """Draw paired tables (b, c, agreements) with the given discordance and true delta; run the exact test."""
    rng = np.random.default_rng(seed)
    p_new_right, p_ref_right = (psi + delta) / 2, (psi - delta) / 2
    counts = rng.multinomial(n, [p_new_right, p_ref_right, 1 - psi], size=tables)
    p_values = {}  # scipy's test once per distinct (c, b + c)
    for c, b, _ in counts:
        if (c, b + c) not in p_values:
            p_values[c, b + c] = 1.0 if b + c == 0 else binomtest(int(c), int(b + c), 0.5).pvalue
    return float(np.mean([p_values[c, b + c] < alpha for c, b, _ in counts]))


@pytest.mark.parametrize("n,psi", [(500, 0.2), (500, 0.06), (150, 0.3)])
def test_mde_reaches_80_percent_power_in_simulation(n, psi):
    mde = power.mde(n, psi, alpha=0.05)
    connor = (norm.ppf(0.975) + norm.ppf(0.8)) * np.sqrt(psi / n)
    assert mde == pytest.approx(connor, rel=0.15)  # near Connor's small-effect approximation
    rate = _simulated_rejection_rate(n, psi, mde)
    assert abs(rate - 0.80) <= 0.05, rate
    # and half the MDE is clearly underpowered, so the check above can fail
    assert _simulated_rejection_rate(n, psi, mde / 2, seed=1) < 0.5


def test_rejection_region_equals_scipy_binomtest():
    for m in range(1, 80):
        k = int(power._rejection_bound(np.array([m]), 0.05)[0])
        rejected = [c for c in range(m + 1) if binomtest(c, m, 0.5).pvalue < 0.05]
        expected = [c for c in range(m + 1) if c <= k or c >= m - k] if k >= 0 else []
        assert rejected == expected, m


def test_n_for_3pp_detects_3pp_and_fewer_do_not():
    psi = 0.12
    n = power.n_for_effect(0.03, psi)
    assert power.exact_power(n, psi, 0.03) >= 0.8
    assert _simulated_rejection_rate(n, psi, 0.03, tables=1000) == pytest.approx(0.8, abs=0.06)
    assert power.exact_power(int(n * 0.9), psi, 0.03) < 0.8
    assert n >= power.connor_n(0.03, psi) * 0.99


def test_no_discordant_pairs_gives_no_mde():
    fields = power.power_fields([0, 0], 500, 0.05)
    assert fields["mde"] is None and fields["mde_reason"] == "too_few_discordant"
    assert fields["n_for_3pp"] == power.n_for_effect(0.03, 0.03)  # psi raised to the effect itself


def _report(value, ci, discordant, n=500):
    return {
        "data": {"n": n, "n_available": 800},
        "deltas": {"B-A": {"accuracy": {"value": value, "ci": ci, "p_value": 0.3, "discordant": discordant}}},
    }


def test_underpowered_record():
    report = _report(0.01, [-0.02, 0.04], [45, 50])
    power.annotate_report(report, 0.05)
    entry = report["deltas"]["B-A"]["accuracy"]
    assert entry["psi"] == pytest.approx(95 / 500) and entry["mde"] > 0.01
    [record] = report["power"]
    assert record["kind"] == "underpowered" and record["delta"] == "B-A" and record["value"] == 0.01
    assert record["n_needed"] == power.n_for_effect(0.01, 95 / 500)
    assert record["growth"] == pytest.approx(record["n_needed"] / 500) and record["exceeds_data"]


def test_significant_or_well_powered_delta_is_not_underpowered():
    report = _report(0.08, [0.04, 0.12], [20, 60])
    power.annotate_report(report, 0.05)
    assert report["power"] == []
    assert report["deltas"]["B-A"]["accuracy"]["mde"] < 0.08
