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
"""

from __future__ import annotations

import hashlib

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


def weights_key(model, stack: list[str], base_folder, installed: dict) -> str:
    """The base's weights fingerprint, remembered beside the cache entries like compare's."""
    memo = None if feature_cache.unusable() else feature_cache.cache_dir() / "weight-files.json"
    return weights_fingerprint.of_base(model, stack, base_folder, installed, memo)


def load(key: str, plan: trunk.TrunkPlan) -> trunk.TrunkStates | None:
    found = feature_cache.load_arrays(key)
    if found is None or found[1].get("shared") != plan.shared:
        return None
    return trunk.TrunkStates.from_arrays(plan, *found)


def store(key: str, states: trunk.TrunkStates):
    """The entry's path, or None when it exceeds the cache bound; an OSError (a full disk) propagates."""
    return feature_cache.store_arrays(key, *states.to_arrays())


def types_sha(token_types) -> str | None:
    """The token type ids' hash, as compare's frozen-pass key has it (None: no token types)."""
    if token_types is None:
        return None
    return hashlib.sha256(repr(token_types).encode()).hexdigest()
