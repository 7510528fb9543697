"""Recorded trunk states in the feature cache, keyed by what decides them alone (training writes, compare reads).

`lorafair train --lora-layers N` records, once per training example, the output of layer k-1 (the layers
below the lowest LoRA layer never change while training). The entry is keyed by

    base        the frozen weights outside the head stack (weights_fingerprint.of_base, as compare keys them)
    token ids   the SHA-256 of every example's ids, in order (models/inference.Encoded.sha256)
    shared      k, the number of layers whose output was recorded
    dtype       the dtype the layers ran in ("torch.float32"; bf16 autocast gets its own name, so a compare
                that runs the model in plain bf16 never takes it for its own)
    device      cpu / cuda

and nothing else: a real token's output does not depend on the head, on padding (it is recorded at real
tokens only, the positions starting at each example's first token) or on the option values that led to the
ids. So `compare`'s A1 pass over the adapter's own training rows finds it and runs only layers k.. .

A compare usually probes a sample of the training rows (the default demo: 1,000 of 2,000), whose ids hash
to another key. So an index entry (keyed by the same parts less the token ids) lists the entries recorded for a
base, k, dtype and device with each one's per-row digests: `load_rows` finds the entry that holds every wanted
row (all of them included) and maps each wanted example to its recorded one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from lorafair.models import feature_cache, trunk, weights_fingerprint


def states_key(*, base: str, model_type: str, token_ids: str, token_types, shared: int, dtype: str, device: str) -> str:
    return feature_cache.entry_key(
        entry="trunk_states",
        base=base,
        model_type=model_type,
        token_ids=token_ids,
        token_types=token_types,
        shared=int(shared),
        dtype=dtype,
        device=device.split(":")[0],
    )


INDEX_ENTRIES = 32  # trunk-state entries an index lists (each with one 16-byte digest per row)


def index_key(*, base: str, model_type: str, shared: int, dtype: str, device: str) -> str:
    """The entry listing the trunk-state entries recorded for one base, k, dtype and device, whatever the rows."""
    return feature_cache.entry_key(
        entry="trunk_states_index",
        base=base,
        model_type=model_type,
        shared=int(shared),
        dtype=dtype,
        device=device.split(":")[0],
    )


def row_digests(input_ids, token_types=None) -> np.ndarray:
    """(n, 16) bytes: each example's token ids (and token types) hashed on their own."""
    digests = np.empty((len(input_ids), 16), dtype=np.uint8)
    for i, ids in enumerate(input_ids):
        digest = hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes())
        if token_types is not None:
            digest.update(b"|" + np.asarray(token_types[i], dtype=np.int64).tobytes())
        digests[i] = np.frombuffer(digest.digest()[:16], dtype=np.uint8)
    return digests


def weights_key(model, stack: list[str], base_folder, installed: dict) -> str:
    """The base's weights fingerprint, remembered beside the cache entries like compare's."""
    memo = None if feature_cache.unusable() else feature_cache.cache_dir() / "weight-files.json"
    return weights_fingerprint.of_base(model, stack, base_folder, installed, memo)


@dataclass
class LowerLayers:
    """Outputs of layers 0..k-2 pooled per example, (n, k-1, d), at position 0 and at the last non-pad token:
    compare's layer-wise analysis pools every layer, and a replayed pass does not compute these."""

    first: np.ndarray
    last: np.ndarray
    pad_token_id: int | None  # the one `last` was found with

    @classmethod
    def empty(cls, n: int, layers: int, hidden: int, pad_token_id: int | None) -> LowerLayers:
        shape = (n, max(layers, 0), hidden)
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), pad_token_id)

    def fill(self, layer_states: np.ndarray, pool: str, pad_token_id: int) -> bool:
        """Put them into a replayed pass's (L + 1, n, d) pooled states (indices 1..k-1); False if they do not fit."""
        pooled = self.last if pool == "last" else self.first
        if (pool == "last" and pad_token_id != self.pad_token_id) or pooled.shape[0] != layer_states.shape[1]:
            return False
        layer_states[1 : 1 + pooled.shape[1]] = pooled.transpose(1, 0, 2).astype(layer_states.dtype)
        return True


@dataclass
class Trained:
    """A training's recorded trunk states as read back (states: TrunkStates; pooled: LowerLayers)."""

    states: trunk.TrunkStates
    pooled: LowerLayers  # in the order of the examples asked for
    index_map: np.ndarray | None = None  # example i asked for is recorded example index_map[i] (None: the same)


def load(key: str, plan: trunk.TrunkPlan) -> Trained | None:
    found = feature_cache.load_arrays(key)
    if found is None or found[1].get("shared") != plan.shared:
        return None
    arrays, meta = found
    pooled = LowerLayers(arrays.pop("pooled_first"), arrays.pop("pooled_last"), meta.get("pad_token_id"))
    return Trained(trunk.TrunkStates.from_arrays(plan, arrays, meta), pooled)


def load_rows(index: str, digests: np.ndarray, plan: trunk.TrunkPlan) -> Trained | None:
    """The newest entry listed in `index` that recorded every row of `digests` (row_digests), mapped to them.

    The rows are matched on the index's digests, so only the entry that holds them all is read."""
    listed = feature_cache.load_arrays(index)
    if listed is None:
        return None
    recorded, meta = listed
    for key in reversed(meta.get("entries", [])):
        index_map = _positions(recorded.get(_index_name(key)), digests)
        found = feature_cache.load_arrays(key) if index_map is not None else None
        if found is None or found[1].get("shared") != plan.shared:
            continue
        arrays, entry_meta = found
        first, last = arrays.pop("pooled_first")[index_map], arrays.pop("pooled_last")[index_map]
        pooled = LowerLayers(first, last, entry_meta.get("pad_token_id"))
        return Trained(trunk.TrunkStates.from_arrays(plan, arrays, entry_meta), pooled, index_map)
    return None


def _positions(recorded: np.ndarray | None, wanted: np.ndarray) -> np.ndarray | None:
    """For each wanted digest its row among the recorded ones; None unless every one is there."""
    if recorded is None:
        return None
    position = {row.tobytes(): i for i, row in enumerate(recorded)}
    found = [position.get(row.tobytes()) for row in wanted]
    return None if None in found else np.asarray(found, dtype=np.int64)


def store(key: str, states: trunk.TrunkStates, pooled: LowerLayers, *, digests=None, index: str | None = None):
    """The entry's path, or None when it exceeds the cache bound; an OSError (a full disk) propagates.

    `digests` (row_digests of the recorded rows, in example order) and `index` (index_key) list the entry in the
    index, so that a compare that probes some of the rows finds them (load_rows)."""
    arrays, meta = states.to_arrays()
    arrays.update(pooled_first=pooled.first, pooled_last=pooled.last)
    path = feature_cache.store_arrays(key, arrays, {**meta, "pad_token_id": pooled.pad_token_id})
    if path is not None and index is not None and digests is not None:
        _list_in_index(index, key, np.asarray(digests, dtype=np.uint8))
    return path


def _list_in_index(index: str, key: str, digests: np.ndarray) -> None:
    """Add `key` and its rows' digests to the index entry (newest last, at most INDEX_ENTRIES; entries trimmed
    from the cache since are skipped when read)."""
    recorded, meta = feature_cache.load_arrays(index) or ({}, {})
    kept = [k for k in meta.get("entries", []) if k != key and _index_name(k) in recorded][1 - INDEX_ENTRIES :]
    arrays = {_index_name(k): recorded[_index_name(k)] for k in kept}
    arrays[_index_name(key)] = digests
    feature_cache.store_arrays(index, arrays, {"entries": [*kept, key]})


def _index_name(key: str) -> str:
    return f"rows_{key}"


class Replay:
    """run_pass's trunk context for a frozen pass on recorded states that also records (B's probe pass needs the
    shared layers' output): the replayer skips layers 0..k-1, the recorder keeps layer k-1's (replayed) output."""

    def __init__(self, replayer, recorder=None):
        self.parts = [p for p in (replayer, recorder) if p is not None]

    def __enter__(self):
        for part in self.parts:
            part.__enter__()
        return self

    def __exit__(self, *exc):
        for part in reversed(self.parts):
            part.__exit__(*exc)

    def batch(self, batch_idx, attention_mask) -> None:
        for part in self.parts:
            part.batch(batch_idx, attention_mask)


def types_sha(token_types) -> str | None:
    """The token type ids' hash, as compare's frozen-pass key has it (None: no token types)."""
    if token_types is None:
        return None
    return hashlib.sha256(repr(token_types).encode()).hexdigest()
