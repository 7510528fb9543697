"""Speed like for like (evaluation/speed.py): A and the full merged B over the same sample, never B's shared-trunk
pass or a cache hit's first-run seconds; the speed check fires only on a like-for-like difference."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from synthetic_report import make_report

from lorafair.cli import main
from lorafair.evaluation import plan as plan_mod
from lorafair.report.build import SPEED_TOLERANCE, check_records

from conftest import make_top_layer_adapter

N = 24
BATCH = 4


def _compare(setup, out, *extra, adapter=None) -> dict:
    argv = ["compare", "--adapter", str(adapter or setup.adapter), "--data", str(setup.data)]
    argv += ["--num-samples", str(N), "--batch-size", str(BATCH), "--bootstrap", "0", "--no-analysis"]
    assert main([*argv, "--output", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture
def recorded_runs(monkeypatch):
    """Every Session.run: its description, whether it replayed a trunk, and its batches."""
    calls = []
    original = plan_mod.Session.run

    def run(self, encoded, batches, desc, **kw):
        calls.append((desc, kw.get("trunk") is not None, [sorted(map(int, b)) for b in batches]))
        return original(self, encoded, batches, desc, **kw)

    monkeypatch.setattr(plan_mod.Session, "run", run)
    return calls


def test_top_layer_adapter_b_shares_the_trunk_and_is_timed_in_full_like_for_like(llama_setup, tmp_path, recorded_runs):
    adapter = make_top_layer_adapter(llama_setup.base, tmp_path / "top")
    report = _compare(llama_setup, tmp_path / "out", adapter=adapter)
    speed = report["speed"]
    assert speed["b_pass"]["shared_layers"] == 1 and speed["b_pass"]["total_layers"] == 2
    lfl = speed["like_for_like"]
    assert lfl["examples"] == min(64, N) == lfl["A"]["examples"] == lfl["B"]["examples"]
    assert lfl["batches"] == math.ceil(N / BATCH)
    # the sample's two passes: A's on the frozen base and B's on every layer (no trunk), over the same batches
    (a_call,) = [c for c in recorded_runs if "like-for-like" in c[0] and "(A)" in c[0]]
    (b_call,) = [c for c in recorded_runs if "like-for-like" in c[0] and "(B)" in c[0]]
    assert not a_call[1] and not b_call[1] and a_call[2] == b_call[2]
    assert sorted(i for b in a_call[2] for i in b) == list(range(N))
    (b_eval,) = [c for c in recorded_runs if c[0] == "LoRA merged (B)"]
    assert b_eval[1]  # B's evaluation pass did replay the trunk: its time is lorafair's cost
    assert lfl["b_vs_shared_trunk"]["prediction_mismatches"] == 0
    assert lfl["b_vs_shared_trunk"]["max_abs_logit_diff"] < 1e-4
    assert report["variants"]["B"]["speed"] == lfl["B"] and report["variants"]["A"]["speed"] == lfl["A"]
    assert report["speed_difference"] == pytest.approx(lfl["B"]["qps"] / lfl["A"]["qps"] - 1)
    assert lfl["A"]["qps"] == pytest.approx(N / lfl["A"]["seconds"])


def test_a_cached_second_compare_is_marked_cached_and_still_timed(llama_setup, tmp_path, recorded_runs):
    first = _compare(llama_setup, tmp_path / "first")
    again = _compare(llama_setup, tmp_path / "again")
    assert first["speed"]["a_pass"] == {
        "cached": False,
        "seconds": pytest.approx(first["speed"]["a_pass"]["seconds"]),
        "examples": N,
    }
    assert first["speed"]["a_pass"]["seconds"] > 0
    assert again["speed"]["a_pass"] == {"cached": True, "seconds": None, "examples": N}
    lfl = again["speed"]["like_for_like"]
    assert again["variants"]["A"]["speed"] == lfl["A"]  # this run's timing, not the first run's seconds
    assert lfl["A"]["seconds"] != first["speed"]["a_pass"]["seconds"]
    a_samples = [c for c in recorded_runs if "like-for-like" in c[0] and "(A)" in c[0]]
    assert len(a_samples) == 2  # the sample ran in the cached compare too
    speed_checks = [c for c in again["check_records"] if c["kind"] == "speed"]
    assert speed_checks == (
        [{"kind": "speed", "value": lfl["difference"], "tolerance": SPEED_TOLERANCE}]
        if abs(lfl["difference"]) > SPEED_TOLERANCE
        else []
    )


def _speed_kinds(report) -> list[dict]:
    return [c for c in check_records(report) if c["kind"] == "speed"]


def test_speed_check_fires_only_on_a_like_for_like_difference():
    report = make_report(variants=("B", "A"), bootstrap=0)
    report.pop("speed_difference", None)
    lfl = report["speed"]["like_for_like"]
    same = copy.deepcopy(report)
    same["speed"]["like_for_like"]["difference"] = 0.01
    same["speed"]["b_pass"]["seconds"] = 0.01  # a shared-trunk pass 100x faster than A's: lorafair's cost only
    same["speed"]["b_pass"]["shared_layers"] = 1
    assert _speed_kinds(same) == []
    apart = copy.deepcopy(report)
    apart["speed"]["like_for_like"]["difference"] = 0.2
    assert _speed_kinds(apart) == [{"kind": "speed", "value": 0.2, "tolerance": SPEED_TOLERANCE}]
    none = copy.deepcopy(report)
    none["speed"] = {"like_for_like": None, "reason": "needs_a_and_b"}
    none["variants"]["B"]["speed"]["qps"] = 10 * lfl["A"]["qps"]  # per-variant figures alone never fire it
    assert _speed_kinds(none) == []
    assert np.isclose(report["speed"]["like_for_like"]["difference"], 38.5 / 41.0 - 1)
