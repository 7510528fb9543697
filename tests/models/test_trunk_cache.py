"""models/trunk_cache.py: the training's recorded trunk states in the feature cache, read back as written."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lorafair.models import trunk, trunk_cache  # noqa: E402

KEY_PARTS = dict(base="b", model_type="llama", token_ids="t", token_types=None, shared=2, dtype="torch.float32")


def test_the_key_changes_with_every_part_and_ignores_the_device_index():
    key = trunk_cache.states_key(**KEY_PARTS, device="cuda:0")
    assert key == trunk_cache.states_key(**KEY_PARTS, device="cuda:1")
    for part, other in [("base", "c"), ("token_ids", "u"), ("shared", 3), ("dtype", "autocast:torch.bfloat16")]:
        assert trunk_cache.states_key(**{**KEY_PARTS, part: other}, device="cuda") != key, part


def test_states_and_pooled_lower_layers_round_trip_through_the_cache():
    plan = trunk.TrunkPlan(2, 3, "model.layers", "lowest")
    rng = np.random.default_rng(0)
    rows = {0: torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32)), 1: torch.zeros(5, 4)}
    pooled = trunk_cache.LowerLayers.empty(2, 1, 4, pad_token_id=7)
    pooled.first[:] = rng.normal(size=pooled.first.shape)
    pooled.last[:] = rng.normal(size=pooled.last.shape)
    key = trunk_cache.states_key(**KEY_PARTS, device="cpu")
    assert trunk_cache.store(key, trunk.TrunkStates(plan, rows, tuple_len=None), pooled) is not None
    found = trunk_cache.load(key, plan)
    for example, values in rows.items():
        assert torch.equal(found.states.rows[example], values)
    assert np.array_equal(found.pooled.first, pooled.first) and np.array_equal(found.pooled.last, pooled.last)
    assert found.pooled.pad_token_id == 7
    assert trunk_cache.load(key, trunk.TrunkPlan(1, 3, "model.layers", "lowest")) is None  # another k


def test_fill_puts_layers_0_to_k_minus_2_at_hidden_states_1_to_k_minus_1():
    n, k, d, total = 3, 3, 2, 4
    pooled = trunk_cache.LowerLayers.empty(n, k - 1, d, pad_token_id=0)
    pooled.last[:] = np.arange(n * (k - 1) * d).reshape(n, k - 1, d)
    states = np.full((total + 1, n, d), -1.0)
    assert pooled.fill(states, "last", pad_token_id=0)
    for layer in range(k - 1):  # hidden_states[layer + 1] is the output of layer `layer`
        for example in range(n):
            assert list(states[layer + 1, example]) == list(pooled.last[example, layer])
    assert (states[0] == -1).all() and (states[k:] == -1).all()  # embeddings and layers k-1.. are the pass's own
    assert not pooled.fill(states, "last", pad_token_id=5)  # "last" found with another pad token
    assert not pooled.fill(np.zeros((total + 1, n + 1, d)), "first", pad_token_id=0)  # other examples


def test_load_rows_maps_a_sample_of_the_recorded_rows_and_misses_a_row_never_recorded():
    plan = trunk.TrunkPlan(2, 3, "model.layers", "lowest")
    ids = [[5, 6, 7], [8], [9, 10], [5, 6]]
    rows = {i: torch.full((len(r), 2), float(i)) for i, r in enumerate(ids)}
    pooled = trunk_cache.LowerLayers.empty(4, 1, 2, pad_token_id=0)
    pooled.last[:, 0, 0] = np.arange(4)
    parts = {k: v for k, v in KEY_PARTS.items() if k not in ("token_ids", "token_types")}
    index = trunk_cache.index_key(**parts, device="cpu")
    key = trunk_cache.states_key(**KEY_PARTS, device="cpu")
    digests = trunk_cache.row_digests(ids)
    trunk_cache.store(key, trunk.TrunkStates(plan, rows, None), pooled, digests=digests, index=index)
    found = trunk_cache.load_rows(index, trunk_cache.row_digests([[9, 10], [5, 6, 7]]), plan)
    assert found.index_map.tolist() == [2, 0]  # hand-mapped: [9, 10] is row 2, [5, 6, 7] row 0
    assert found.pooled.last[:, 0, 0].tolist() == [2.0, 0.0]
    assert torch.equal(found.states.rows[2], rows[2])
    assert trunk_cache.load_rows(index, trunk_cache.row_digests([[5, 6, 7], [5, 6, 7, 8]]), plan) is None
    assert trunk_cache.load_rows(index, digests, trunk.TrunkPlan(1, 3, "model.layers", "lowest")) is None
