"""stats/diagnosis: each rule fires on a report built to fire it, stays silent on one built not to, at its threshold's
edge; the training loss's trend against scipy's Theil-Sen and linear fits and a hand-counted Mann-Kendall test."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from scipy.stats import linregress, theilslopes
from synthetic_report import make_report

from lorafair.data.run_metadata import RunMetadata
from lorafair.report import schema
from lorafair.report.build import add_diagnosis
from lorafair.stats import diagnosis


@pytest.fixture(scope="module")
def base_report():
    return make_report(seed=3, bootstrap=200)


def _kinds(report: dict) -> list[str]:
    return [r["kind"] for r in diagnosis.diagnose(report)]


def _set_delta(report: dict, key: str, value: float, ci, p: float, mde=None, n3: int = 1000) -> dict:
    report["deltas"][key]["accuracy"].update(value=value, ci=ci, p_value=p, mde=mde, n_for_3pp=n3)
    return report["deltas"][key]["accuracy"]


# -- A1 ------------------------------------------------------------------------------------------------------------
def test_a1_absent_and_cross_fitted_are_said(base_report):
    r = copy.deepcopy(base_report)
    assert "a1_absent" not in _kinds(r) and "a1_cross_fitted" not in _kinds(r)  # A1 fitted on separate data
    r["variants"]["A1"]["cross_fitted"] = True
    r["notes"].append({"kind": "probe_cross_fitted", "folds": 5, "examples": 300, "data": "data/test.csv"})
    assert diagnosis.diagnose(r)[0] == {"kind": "a1_cross_fitted", "folds": 5, "examples": 300}
    del r["variants"]["A1"]
    r["notes"].append({"kind": "a1_absent", "reason": "not_requested"})
    assert diagnosis.diagnose(r)[0] == {"kind": "a1_absent", "reason": "not_requested"}


@pytest.mark.parametrize(
    ("value", "ci", "p", "fires"),
    [
        (0.03, [0.01, 0.05], 0.01, True),  # exactly 3 pp, significant: the edge fires
        (0.0299, [0.01, 0.05], 0.01, False),  # just below 3 pp
        (0.08, [-0.01, 0.17], 0.01, False),  # large, but the CI holds 0
        (0.08, [0.01, 0.17], 0.06, False),  # large, but McNemar does not reject at alpha = 0.05
        (-0.08, [-0.17, -0.01], 0.001, False),  # the probe significantly worse than A's head
    ],
)
def test_head_coadapted_needs_a_large_significant_a1_gain(base_report, value, ci, p, fires):
    r = copy.deepcopy(base_report)
    _set_delta(r, "A1-A", value, ci, p)
    found = [x for x in diagnosis.diagnose(r) if x["kind"] == "head_coadapted"]
    assert bool(found) == fires
    if fires:
        assert found[0] == {"kind": "head_coadapted", "value": value, "ci": ci, "p_value": p, "threshold": 0.03}


@pytest.mark.parametrize(
    ("value", "mde", "kind"),
    [
        (0.01, 0.03, "probe_suffices"),  # MDE exactly 3 pp: adequately powered
        (0.01, 0.0301, "b_a1_underpowered"),  # MDE just above 3 pp and above |B - A1|
        (0.01, None, "b_a1_underpowered"),  # too few discordant pairs for any MDE
        (0.05, 0.05, None),  # MDE above 3 pp but not above the observed difference: neither
        (-0.02, 0.025, "probe_suffices"),
    ],
)
def test_b_a1_not_significant_is_either_underpowered_or_a_probe_suffices(base_report, value, mde, kind):
    r = copy.deepcopy(base_report)
    _set_delta(r, "B-A1", value, [value - 0.06, value + 0.06], 0.4, mde=mde, n3=2545)
    found = [x for x in diagnosis.diagnose(r) if x["kind"] in ("probe_suffices", "b_a1_underpowered")]
    assert [x["kind"] for x in found] == ([kind] if kind else [])
    if kind == "b_a1_underpowered":
        assert found[0]["n_for_3pp"] == 2545 and found[0]["n"] == r["data"]["n"] and found[0]["mde"] == mde
    _set_delta(r, "B-A1", 0.09, [0.02, 0.16], 0.001, mde=mde)  # significant: LoRA added something, nothing to say
    assert not [x for x in diagnosis.diagnose(r) if x["kind"] in ("probe_suffices", "b_a1_underpowered")]


# -- layers, weights, beyond the task -----------------------------------------------------------------------------
def _with_layers(report: dict, probe_a: list[float]) -> dict:
    layers = [
        {"layer": i, "cka": 0.9, "cosine": 0.9, "probe_accuracy": {"A": a, "B": None}} for i, a in enumerate(probe_a)
    ]
    report["analysis"] = {"layers": layers, "weights": []}
    return report


def test_linear_at_layer_names_the_first_layer_reaching_b(base_report):
    r = copy.deepcopy(base_report)
    b = r["variants"]["B"]["metrics"]["accuracy"]["value"]
    _with_layers(r, [b - 0.2, b - 0.001, b, b + 0.01])  # layer 2 equals B's accuracy: the edge fires
    assert [x for x in diagnosis.diagnose(r) if x["kind"] == "linear_at_layer"] == [
        {"kind": "linear_at_layer", "layer": 2, "probe_accuracy": b, "b_accuracy": b}
    ]
    _with_layers(r, [b - 0.2, b - 0.001, None])
    assert "linear_at_layer" not in _kinds(r)


def _weight(effective_rank, rank=8) -> dict:
    return {"module": "m", "rank": rank, "effective_rank": effective_rank}


@pytest.mark.parametrize(
    ("ranks", "fires"),
    [
        ([1, 4, 2], True),  # 4 = r / 2 in the worst module: the edge fires, k = 4
        ([1, 5, 2], False),  # one module needs 5 of 8
        ([None, None], False),  # every ΔW zero: no energy to speak of
        ([2, None], True),
    ],
)
def test_low_rank_needs_every_module_well_below_r(base_report, ranks, fires):
    r = copy.deepcopy(base_report)
    r["analysis"] = {"layers": [], "weights": [_weight(k) for k in ranks]}
    found = [x for x in diagnosis.diagnose(r) if x["kind"] == "low_rank"]
    assert bool(found) == fires
    if fires:
        defined = [k for k in ranks if k is not None]
        assert found[0] == {"kind": "low_rank", "k": max(defined), "r": 8, "modules": len(defined), "energy": 0.9}


@pytest.mark.parametrize(("kl", "fires"), [(0.1, True), (0.0999, False), (2.3, True)])
def test_backbone_changed_at_a_tenth_of_a_nat(base_report, kl, fires):
    r = copy.deepcopy(base_report)
    r["beyond_task"] = {"lm": {"kl_mean": kl}}
    found = [x for x in diagnosis.diagnose(r) if x["kind"] == "backbone_changed"]
    assert bool(found) == fires
    if fires:
        assert found[0]["perplexity_factor"] == pytest.approx(2.718281828**kl)
    r["beyond_task"] = {"lm": None}
    assert "backbone_changed" not in _kinds(r)


# -- the training loss ---------------------------------------------------------------------------------------------
def _log(steps, losses) -> list[dict]:
    history = [
        {"loss": float(v), "step": int(s), "epoch": s / 50, "learning_rate": 1e-4} for s, v in zip(steps, losses)
    ]
    return history + [{"train_runtime": 9.0, "train_loss": float(np.mean(losses)), "step": int(steps[-1]), "epoch": 4}]


def _mann_kendall_p_less(x, y) -> float:
    """One-sided exact p of Kendall's tau < 0, by counting every permutation of y (no ties)."""
    order = np.argsort(x)
    y = np.asarray(y)[order]

    def s_stat(values):
        return sum(np.sign(values[j] - values[i]) for i, j in itertools.combinations(range(len(values)), 2))

    observed = s_stat(y)
    counts = [s_stat(np.array(p)) <= observed for p in itertools.permutations(y)]
    return sum(counts) / len(counts)


def test_the_trend_is_theil_sen_with_an_exact_mann_kendall_p():
    rng = np.random.default_rng(7)
    steps = np.arange(1, 201)
    losses = 2.0 * np.exp(-steps / 120) + rng.normal(0, 0.01, len(steps))
    trend = diagnosis.loss_trend(steps.astype(float), losses, 200.0)
    window = steps > 180
    x, y = steps[window], losses[window]
    assert trend["points"] == 20 and trend["from_step"] == 180 and trend["to_step"] == 200
    assert trend["slope"] == pytest.approx(theilslopes(y, x).slope, rel=1e-12)
    assert np.sign(trend["slope"]) == np.sign(linregress(x, y).slope) == -1
    assert trend["relative_drop"] == pytest.approx(-trend["slope"] * 20 / np.median(y))
    assert trend["falling"]
    few = np.arange(181, 188).astype(float)  # 7 points, all in the window of 200 steps: 7! orderings to count
    p = diagnosis.loss_trend(few, y[:7], 200.0)
    assert p["points"] == 7
    assert p["p_value"] == pytest.approx(_mann_kendall_p_less(few, y[:7]), abs=1e-9)


def test_a_flat_noisy_loss_is_not_falling_and_too_few_points_give_no_trend():
    rng = np.random.default_rng(1)
    steps = np.arange(1, 201).astype(float)
    flat = 0.7 + rng.normal(0, 0.05, 200)
    trend = diagnosis.loss_trend(steps, flat, 200.0)
    assert trend["slope"] == pytest.approx(theilslopes(flat[180:], steps[180:]).slope)
    assert not trend["falling"]
    one = diagnosis.loss_trend(np.array([10.0, 20, 30, 40, 50]), np.array([5.0, 4, 3, 2, 1]), 50.0)
    assert one["points"] == 1 and one["slope"] is None and not one["falling"]  # steps > 45: step 50 alone
    sparse = diagnosis.loss_trend(np.arange(1.0, 51), np.linspace(2, 1, 50), 50.0)  # steps 46..50: exactly 5
    assert sparse["points"] == 5 and sparse["falling"]
    sparse = diagnosis.loss_trend(np.arange(1.0, 50), np.linspace(2, 1, 49), 50.0)  # steps 46..49: 4
    assert sparse["points"] == 4 and sparse["slope"] is None and not sparse["falling"]


def test_a_significant_but_negligible_fall_is_not_train_longer():
    steps = np.arange(1.0, 201)
    losses = 0.5 - 1e-5 * steps  # strictly falling (p tiny) but 0.04% of the loss over the window
    trend = diagnosis.loss_trend(steps, losses, 200.0)
    assert trend["p_value"] < 1e-6 and trend["relative_drop"] == pytest.approx(20e-5 / np.median(losses[180:]))
    assert not trend["falling"]
    edge = 0.01 * 0.5 / 20  # a slope whose fall over the 20-step window is 1% of a loss of ~0.5
    losses = 0.5 + edge * (190.5 - steps)  # median over steps 181..200 is exactly 0.5
    assert diagnosis.loss_trend(steps, losses, 200.0)["relative_drop"] == pytest.approx(0.01)
    assert diagnosis.loss_trend(steps, 0.5 + 0.99 * edge * (190.5 - steps), 200.0)["falling"] is False
    assert diagnosis.loss_trend(steps, 0.5 + 1.01 * edge * (190.5 - steps), 200.0)["falling"] is True


def test_training_summary_and_train_longer_from_a_run_record(base_report):
    steps = np.arange(1, 201)
    falling = _log(steps, 2.0 * np.exp(-steps / 100))
    meta = RunMetadata.from_dict(
        {"global_step": 200, "log_history": falling, "metrics": {"train": {}, "eval": {"accuracy": 0.81}}}
    )
    summary = diagnosis.training_summary(meta)
    assert summary["steps"] == 200 and summary["epochs"] == 4 and summary["logged_losses"] == 200
    assert summary["first_loss"] == pytest.approx(2.0 * math.exp(-0.01)) and summary["eval_accuracy"] == 0.81
    assert summary["last_loss"] == pytest.approx(2.0 * math.exp(-2.0))
    r = copy.deepcopy(base_report)
    add_diagnosis(r, meta)
    schema.validate(r)
    record = next(x for x in r["diagnosis"] if x["kind"] == "train_longer")
    window = 2.0 * np.exp(-steps[180:] / 100)
    assert record["slope"] == pytest.approx(theilslopes(window, steps[180:]).slope)
    assert record["points"] == 20 and record["p_value"] < 0.05
    plateau = RunMetadata.from_dict({"global_step": 200, "log_history": _log(steps, np.full(200, 0.3))})
    r = copy.deepcopy(base_report)
    add_diagnosis(r, plateau)
    assert r["training"]["trend"]["slope"] == 0 and "train_longer" not in _kinds(r)
    assert diagnosis.training_summary(None) is None
    r = copy.deepcopy(base_report)
    add_diagnosis(r, None)
    assert "training" not in r and "train_longer" not in _kinds(r)
    schema.validate(r)
