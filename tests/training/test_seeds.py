"""`train --seeds`, the same data budget for A1, and the across-seed summary (two-level bootstrap)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, f1_score

from lorafair.cli import main
from lorafair.report import words
from lorafair.stats import multi_adapter as sweep_stats

from conftest import toy_rows, write_csv


@pytest.fixture(scope="module")
def seed_runs(llama_setup, tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    train = write_csv(toy_rows(48, seed=21), root / "train.csv")
    out = root / "runs"
    code = main(
        [
            "train",
            "--base-model",
            str(llama_setup.base),
            "--data",
            str(train),
            "--seeds",
            "0,1,2",
            "--output",
            str(out),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--lora-r",
            "2",
            "--lora-alpha",
            "4",
            "--eval-fraction",
            "0.25",
            "--max-length",
            "32",
            "--learning-rate",
            "0.01",
            "--quiet",
        ]
    )
    assert code == 0
    return out, train


def test_train_seeds_gives_one_adapter_per_seed_on_the_same_data(seed_runs):
    out, _ = seed_runs
    runs = [json.loads((out / f"seed-{k}" / "lorafair_run.json").read_text()) for k in range(3)]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    assert len({json.dumps(r["train_data"]["indices"]) for r in runs}) == 1  # same split, same rows
    assert len({r["train_data"]["indices_sha256"] for r in runs}) == 1
    assert len({json.dumps(r["eval_data"]["indices"]) for r in runs}) == 1
    rows = runs[0]["train_data"]["indices"]
    assert len(rows) == 36 and sorted(set(rows) | set(runs[0]["eval_data"]["indices"])) == list(range(48))
    weights = [load_file(str(out / f"seed-{k}" / "adapter_model.safetensors")) for k in range(3)]
    key = next(k for k in weights[0] if "lora_A" in k)
    assert not np.allclose(weights[0][key].numpy(), weights[1][key].numpy())  # only the seed differs, and it matters


@pytest.fixture(scope="module")
def seed_compare(seed_runs, tmp_path_factory):
    out, _ = seed_runs
    root = tmp_path_factory.mktemp("seed-compare")
    data = write_csv(toy_rows(40, seed=22), root / "test.csv")
    report_dir = root / "report"
    code = main(
        [
            "compare",
            "--adapter",
            str(out),
            "--data",
            str(data),
            "--bootstrap",
            "400",
            "--output",
            str(report_dir),
            "--quiet",
        ]
    )
    assert code == 0
    return report_dir, data


def test_across_seeds_mean_equals_mean_of_per_seed_deltas(seed_compare):
    report_dir, _ = seed_compare
    top = json.loads((report_dir / "report.json").read_text())
    assert [a["name"] for a in top["adapters"]] == ["seed-0", "seed-1", "seed-2"]
    assert [a["config"]["seed"] for a in top["adapters"]] == [0, 1, 2]
    for key in ("B-A", "B-A1", "A1-A"):
        own = [
            json.loads((report_dir / "adapters" / f"seed-{k}" / "report.json").read_text())["deltas"][key]
            for k in range(3)
        ]
        for metric in ("accuracy", "f1", "log_loss"):
            summary = top["across_seeds"][key][metric]
            per_seed = [d[metric]["value"] for d in own]
            assert summary["n_seeds"] == 3
            assert summary["per_seed"] == pytest.approx(per_seed, abs=1e-12)
            assert summary["mean"] == pytest.approx(np.mean(per_seed), abs=1e-12)
            assert summary["sd"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
            assert summary["ci"][0] <= summary["mean"] <= summary["ci"][1]
    assert any("Across 3 seeds" in line for line in top["conclusion"])


def test_probe_trained_on_the_adapters_training_examples(seed_compare, seed_runs):
    report_dir, _ = seed_compare
    own = json.loads((report_dir / "adapters" / "seed-0" / "report.json").read_text())
    assert any("probe trained on the adapter's 36 training examples" in n for n in own["notes"])
    probe_pass = [p for p in own["forward_passes"] if "probe" in p["what"]]
    assert [p["examples"] for p in probe_pass] == [36]


def _probs(correct: np.ndarray, y: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Binary probabilities whose argmax is right exactly where `correct` is True."""
    pred = np.where(correct, y, 1 - y)
    probs = np.full((len(y), 2), 1 - confidence)
    probs[np.arange(len(y)), pred] = confidence
    return probs


def test_across_seeds_unit_mean_sd_and_two_level_ci():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    shared = {"A1": _probs(rng.random(200) < 0.7, y)}
    per_seed = [{"B": _probs(rng.random(200) < p, y), "A": _probs(rng.random(200) < 0.6, y)} for p in (0.8, 0.85, 0.75)]
    out = sweep_stats.across_seeds(y, per_seed, shared, (("B", "A"), ("B", "A1")), n_resamples=2000, seed=1, alpha=0.05)
    for key, (new, ref) in {"B-A": ("B", "A"), "B-A1": ("B", "A1")}.items():
        expected = []
        for run in per_seed:
            run = {**shared, **run}
            expected.append(accuracy_score(y, run[new].argmax(1)) - accuracy_score(y, run[ref].argmax(1)))
        s = out[key]["accuracy"]
        assert s["per_seed"] == pytest.approx(expected) and s["mean"] == pytest.approx(np.mean(expected))
        assert s["sd"] == pytest.approx(np.std(expected, ddof=1))
        f1 = [
            f1_score(y, {**shared, **r}[new].argmax(1)) - f1_score(y, {**shared, **r}[ref].argmax(1)) for r in per_seed
        ]
        assert out[key]["f1"]["mean"] == pytest.approx(np.mean(f1))
    # two levels: the CI is wider than the spread of examples alone when the seeds disagree
    lo, hi = out["B-A"]["accuracy"]["ci"]
    assert lo < out["B-A"]["accuracy"]["mean"] < hi and hi - lo > 0.05
    lines = words.across_seed_lines(out, "en")
    assert any(line.endswith(": robust across seeds.") for line in lines)


def test_fewer_than_three_seeds_leave_the_variance_unknown():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 50)
    per_seed = [{"B": _probs(rng.random(50) < 0.9, y), "A": _probs(rng.random(50) < 0.5, y)} for _ in range(2)]
    out = sweep_stats.across_seeds(y, per_seed, {}, (("B", "A"),), n_resamples=200, seed=0, alpha=0.05)
    lines = words.across_seed_lines(out, "en")
    assert lines and all("seed variance is unknown" in line for line in lines)


def test_seed_set_needs_distinct_seeds_and_one_configuration():
    cfg = {"lora_r": 8, "seed": 0, "output": "a"}
    runs = [{"seed": k, "train_config": {**cfg, "seed": k, "output": f"seed-{k}"}} for k in range(3)]
    assert sweep_stats.seed_set(runs)
    assert not sweep_stats.seed_set(runs[:1])
    assert not sweep_stats.seed_set(runs + [{"seed": 3, "train_config": {**cfg, "lora_r": 16}}])
    assert not sweep_stats.seed_set([runs[0], runs[0]])
    assert not sweep_stats.seed_set(runs + [{"seed": None, "train_config": {}}])
