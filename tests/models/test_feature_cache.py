"""The frozen-feature cache: hits exactly when nothing that decides the frozen pass changed.

Every test has its own empty cache folder (conftest). A hit must give the report a no-cache run gives.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lorafair.cli import main
from lorafair.models import feature_cache

from conftest import make_adapter, make_top_layer_adapter


def _compare(setup, out, *extra, adapter=None) -> dict:
    argv = ["compare", "--adapter", str(adapter or setup.adapter), "--data", str(setup.data), "--num-samples", "24"]
    assert main([*argv, "--bootstrap", "0", "--output", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _cached(report) -> list[bool]:
    return [bool(p.get("cached")) for p in report["forward_passes"] if p["kind"].startswith("frozen")]


def _probs(out, variant) -> np.ndarray:
    with open(out / "predictions.csv", encoding="utf-8") as handle:
        return np.array(
            [[float(v) for k, v in row.items() if k.startswith(f"prob_{variant}_")] for row in csv.DictReader(handle)]
        )


def test_another_adapter_of_the_same_base_hits_and_reports_the_same(llama_setup, tmp_path):
    other = make_adapter(llama_setup.base, tmp_path / "other-adapter", "llama", seed=7)  # another head and LoRA
    first = _compare(llama_setup, tmp_path / "first")
    assert _cached(first) == [False, False]
    assert len(list(feature_cache.cache_dir().glob("*.npz"))) == 2  # evaluation set and probe set

    again = _compare(llama_setup, tmp_path / "again", adapter=other)
    fresh = _compare(llama_setup, tmp_path / "fresh", "--no-cache", adapter=other)
    assert _cached(again) == [True, True] and _cached(fresh) == [False, False]
    for variant in ("A", "A1", "R", "B"):  # A: the other head on the cached features, as in a full pass
        np.testing.assert_allclose(_probs(tmp_path / "again", variant), _probs(tmp_path / "fresh", variant), atol=1e-6)
    assert again["variants"]["A"]["metrics"] == fresh["variants"]["A"]["metrics"]
    assert again["head"]["sha256"] == fresh["head"]["sha256"] != first["head"]["sha256"]
    layers = [[r["cka"] for r in rep["analysis"]["layers"]] for rep in (again, fresh)]
    np.testing.assert_allclose(layers[0], layers[1], atol=1e-6)


def test_a_hit_also_replays_the_shared_trunk_for_an_adapter_on_the_same_layers(llama_setup, tmp_path):
    first = make_top_layer_adapter(llama_setup.base, tmp_path / "top-a")
    other = make_top_layer_adapter(llama_setup.base, tmp_path / "top-b", seed=5)  # other LoRA, same layer 1
    _compare(llama_setup, tmp_path / "first", adapter=first)
    assert len(list(feature_cache.cache_dir().glob("*.npz"))) == 4  # features and layer-0 output of both sets
    again = _compare(llama_setup, tmp_path / "again", adapter=other)
    fresh = _compare(llama_setup, tmp_path / "fresh", "--no-cache", adapter=other)
    assert _cached(again) == [True, True]
    (merged,) = [p for p in again["forward_passes"] if p["kind"] == "lora_eval"]
    assert merged["shared_layers"] == 1  # layer 0 replayed from the cache, not run
    np.testing.assert_allclose(_probs(tmp_path / "again", "B"), _probs(tmp_path / "fresh", "B"), atol=1e-6)
    for ours, reference in zip(again["analysis"]["layers"], fresh["analysis"]["layers"], strict=True):
        assert ours["cka"] == pytest.approx(reference["cka"], abs=1e-6)
        assert ours["cosine"] == pytest.approx(reference["cosine"], abs=1e-6)
        # B's per-layer probes are trained on the probe subset B ran again, its trunk replayed from the cache
        assert ours["probe_accuracy"] == reference["probe_accuracy"]


@pytest.fixture(scope="module")
def warm_cache(llama_setup, tmp_path_factory):
    """One compare's cache entries (B and A, no analysis), copied into each test's own cache folder."""
    import os

    folder = tmp_path_factory.mktemp("warm-features")
    previous = os.environ.get("LORAFAIR_FEATURE_CACHE")
    os.environ["LORAFAIR_FEATURE_CACHE"] = str(folder)
    try:
        _compare(llama_setup, tmp_path_factory.mktemp("warm") / "out", *FAST)
    finally:
        os.environ["LORAFAIR_FEATURE_CACHE"] = previous or ""
    return folder


FAST = ["--variants", "B,A", "--no-analysis"]


def _use(warm_cache) -> None:
    import shutil

    for entry in warm_cache.glob("*.npz"):
        shutil.copy(entry, feature_cache.cache_dir() / entry.name)


@pytest.mark.parametrize(
    "extra,hit",
    [
        (FAST, True),
        ([*FAST, "--max-length", "8"], False),
        ([*FAST, "--dtype", "bfloat16"], False),
        (["--variants", "B,A"], False),  # analysis on: per-layer states are part of the entry
        ([*FAST, "--num-samples", "20"], False),  # other examples: other token ids (a later flag wins)
    ],
    ids=["same", "max-length", "dtype", "layer-pooling", "other-examples"],
)
def test_only_a_change_to_what_decides_the_frozen_pass_misses(llama_setup, warm_cache, tmp_path, extra, hit):
    feature_cache.cache_dir().mkdir(parents=True, exist_ok=True)
    _use(warm_cache)
    report = _compare(llama_setup, tmp_path / "second", *extra)
    assert _cached(report)[0] is hit


def test_another_base_misses(llama_setup, warm_cache, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    feature_cache.cache_dir().mkdir(parents=True, exist_ok=True)
    _use(warm_cache)
    base = AutoModelForSequenceClassification.from_pretrained(str(llama_setup.base))
    with torch.no_grad():
        base.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3  # one weight of the trunk
    changed = tmp_path / "changed-base"
    base.save_pretrained(str(changed))
    AutoTokenizer.from_pretrained(str(llama_setup.base)).save_pretrained(str(changed))
    report = _compare(llama_setup, tmp_path / "second", *FAST, "--base-model", str(changed))
    assert _cached(report) == [False]


def test_a_corrupted_entry_is_ignored_and_rebuilt(llama_setup, tmp_path):
    _compare(llama_setup, tmp_path / "first", "--variants", "A")
    (entry,) = feature_cache.cache_dir().glob("*.npz")
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])  # a run killed mid-write without the rename would leave this
    report = _compare(llama_setup, tmp_path / "second", "--variants", "A")
    assert _cached(report) == [False]
    assert feature_cache.load(entry.stem) is not None  # rewritten whole
    flipped = bytearray(entry.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF  # bit rot inside an array: the checksum catches it
    entry.write_bytes(bytes(flipped))
    assert feature_cache.load(entry.stem) is None and not entry.exists()


def test_no_cache_writes_nothing(llama_setup, tmp_path):
    _compare(llama_setup, tmp_path / "out", "--no-cache")
    assert not list(feature_cache.cache_dir().glob("*.npz"))


def test_the_cache_folder_stays_under_its_bound(tmp_path, monkeypatch):
    import os

    def entry(i):
        return feature_cache.Entry(np.full((10, 100), i, np.float32), None, np.ones(2), 7, "last_non_pad")

    size = feature_cache.store("probe", entry(9)).stat().st_size
    feature_cache.cache_dir().joinpath("probe.npz").unlink()
    monkeypatch.setenv("LORAFAIR_FEATURE_CACHE_BYTES", str(3 * size + size // 2))  # room for three entries
    entries = []
    for i in range(5):
        path = feature_cache.store(f"k{i}", entry(i))
        os.utime(path, (1000 + i, 1000 + i))  # distinct ages, oldest first
        entries.append(path)
    assert [p.exists() for p in entries] == [False, False, True, True, True]
    assert feature_cache.load("k4").features[0, 0] == 4 and feature_cache.load("k4").tokens == 7
    too_big = feature_cache.Entry(np.zeros((100, 100), np.float32), None, np.ones(1), 1, "first")
    assert feature_cache.store("huge", too_big) is None
