"""The frozen base's passes: read from the feature cache when possible, else run (recording the shared trunk).

    result, trunk_states, cached = frozen_pass.run(plan, session, outcome, encoded, batches, "frozen base (A)")

A cache hit gives the same PassResult a pass would: the cached features and per-layer states, A's logits
from the installed head applied to the features (exactly what the head computes inside the model), and
the batch timings measured when the entry was made, and the shared trunk's recorded output when the pass
that made the entry recorded it for the same lowest LoRA layer (else B runs every layer).

The cache never fails a run: an unusable folder (decided once, in the plan) or an entry that cannot be
written (a full disk) is one warning and a note in the report, and the run goes on without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np

from lorafair.models import feature_cache, heads, trunk, trunk_cache, weights_fingerprint
from lorafair.models.inference import Encoded, PassResult

log = logging.getLogger(__name__)


def run(
    plan, session, outcome, encoded: Encoded, batches, desc: str, *, warmup=True, record=False, keep=None, trained=False
):
    """(PassResult, TrunkStates or None, cached?) of the frozen model over `encoded`; `trained`: look for the
    trunk states `lorafair train --lora-layers` recorded on these very token ids (then only layers k.. run)."""
    pool = outcome.analysis.pool
    if plan.cache_off:
        _note_once(outcome, {"kind": "cache_off", **plan.cache_off})
    key = cache_key(plan, session, encoded, pool)
    entry = feature_cache.load(key) if key else None
    if entry is not None and (pool is None or entry.layers is not None):
        states = cached_trunk(plan, session, encoded, key, keep) if record else None
        return from_entry(session, entry), states, True
    states, recorder = trunk_recorder(plan, session, encoded, outcome, keep) if record else (None, None)
    replay = trained_trunk(plan, session, encoded) if trained and key else None
    context = recorder
    if replay is not None:
        context = trunk_cache.Replay(replay.states.replayer(session.model, replay.index_map), recorder)
    result = session.run(encoded, batches, desc, warmup=warmup, ctx=plan.ctx, layer_pool=pool, trunk=context)
    if replay is not None:
        _lower_layers_from_training(result, replay, pool, session)
    if key and result.features is not None:
        _store(outcome, key, result, states, session, keep)
    return result, states, False


def _store(outcome, key: str, result: PassResult, states, session, keep) -> None:
    """Keep the pass for later runs; a failed write (a full disk) costs a later run the pass, not this run."""
    entry = feature_cache.Entry(
        result.features, result.layers, np.asarray(result.batch_seconds), result.tokens, result.feature_pooling
    )
    try:
        feature_cache.store(key, entry)
        if states is not None:  # B of a later run with the same lowest LoRA layer can replay them too
            feature_cache.store_arrays(_trunk_key(key, session.trunk_plan, keep), *states.to_arrays())
    except OSError as error:
        note = {
            "kind": "cache_write_failed",
            "folder": str(feature_cache.cache_dir()),
            "error": error.strerror or str(error),
        }
        if _note_once(outcome, note):
            log.warning(
                "feature cache: an entry could not be written to '%s' (%s); this run is complete, "
                "a later one runs the frozen pass again",
                note["folder"],
                note["error"],
            )


def _note_once(outcome, note: dict) -> bool:
    """Add the note record to the report's notes unless it is there already; whether it was added."""
    if note in outcome.notes:
        return False
    outcome.notes.append(note)
    return True


def _trunk_key(key: str, shared_plan: trunk.TrunkPlan, keep) -> str:
    kept = None if keep is None else hashlib.sha256(np.asarray(sorted(keep), dtype=np.int64).tobytes()).hexdigest()
    return feature_cache.entry_key(frozen_pass=key, shared_layers=shared_plan.shared, kept=kept)


def _trunk_bytes(session, encoded: Encoded, keep) -> int:
    lengths = encoded.lengths if keep is None else encoded.lengths[np.asarray(keep, dtype=np.int64)]
    return trunk.estimated_bytes(lengths, int(session.model.config.get_text_config().hidden_size))


def _wants_trunk(plan, session) -> bool:
    return "B" in plan.variants and session.trunk_plan is not None and session.trunk_plan.shared > 0


def cached_trunk(plan, session, encoded: Encoded, key: str, keep=None):
    """The shared layers' recorded output from the cache (a frozen-pass hit), or None: then B runs whole."""
    if not _wants_trunk(plan, session):
        return None
    if _trunk_bytes(session, encoded, keep) > trunk.memory_budget():
        return None
    found = feature_cache.load_arrays(_trunk_key(key, session.trunk_plan, keep))
    return trunk.TrunkStates.from_arrays(session.trunk_plan, *found) if found is not None else None


def entry(kind: str, examples: int, result: PassResult, cached: bool) -> dict:
    """A report["forward_passes"] record: which pass (frozen_eval, frozen_probe), on how many examples, whether
    it came from the feature cache, its seconds (0 when cached), and how many lower layers it replayed from the
    states `lorafair train` recorded (when it did)."""
    seconds = 0.0 if cached else float(sum(result.batch_seconds))
    record = {"kind": kind, "examples": examples, "cached": cached, "seconds": seconds}
    if result.trained_trunk_layers:
        record["trained_trunk_layers"] = result.trained_trunk_layers
    return record


def cache_key(plan, session, encoded: Encoded, layer_pool: str | None) -> str | None:
    """None when the cache is off (--no-cache, several processes, an unusable folder)."""
    if plan.cfg.no_cache or plan.ctx.enabled or plan.cache_off:
        return None
    stack = heads.stack_modules(session.model, plan.adapter.head_modules)
    if session.weights_key is None:
        memo = feature_cache.cache_dir() / "weight-files.json"
        session.weights_key = weights_fingerprint.of_base(
            session.model, stack, plan.base_model, plan.adapter.head, memo
        )
    return feature_cache.entry_key(
        base=session.weights_key,
        model_type=getattr(session.model.config, "model_type", ""),
        token_ids=encoded.sha256(),
        token_types=trunk_cache.types_sha(encoded.token_type_ids),
        pad_token_id=session.pass_kw["pad_token_id"],
        padding_side=session.pass_kw["padding_side"],
        max_length=plan.cfg.max_length,
        dtype=str(plan.dtype),
        device=str(plan.device).split(":")[0],
        head_stack=stack,
        layer_pool=layer_pool,
    )


def from_entry(session, cached: feature_cache.Entry) -> PassResult:
    import torch

    first = next(session.head[0].parameters())
    features = torch.from_numpy(np.ascontiguousarray(cached.features)).to(first.device, first.dtype)
    with torch.inference_mode():
        logits = heads.apply_head(
            getattr(session.model.config, "model_type", ""), session.head, features, cached.feature_pooling
        )
    return PassResult(
        logits.float().cpu().numpy(),
        cached.features,
        list(map(float, cached.batch_seconds)),
        cached.tokens,
        feature_pooling=cached.feature_pooling,
        layers=cached.layers,
    )


def trunk_recorder(plan, session, encoded: Encoded, outcome, keep=None):
    """(TrunkStates, recorder) of the shared layers' output for B's later pass, or (None, None)."""
    shared = session.trunk_plan
    if not _wants_trunk(plan, session):
        return None, None
    need = _trunk_bytes(session, encoded, keep)
    if need > trunk.memory_budget():
        outcome.notes.append({"kind": "trunk_too_large", "bytes": int(need)})
        session.trunk_plan = dataclasses.replace(shared, shared=0, reason="too_large")
        return None, None
    states = trunk.TrunkStates(shared)
    return states, states.recorder(session.model, keep)


# -- the A1 probe pass on the trunk states `lorafair train` recorded (training/trunk_reuse.py) ------------------
def trained_trunk(plan, session, encoded: Encoded) -> trunk_cache.Trained | None:
    """The states a `lorafair train --lora-layers` run recorded on these token ids (all of its rows, or some of
    them: a probe sample), or None.

    Found as training lists them (models/trunk_cache.py): the base weights fingerprint (the same one the frozen
    pass's key uses), the lowest LoRA layer k of this adapter, dtype and device type, then each row's token ids.
    """
    if plan.cfg.no_shared_trunk:
        return None
    shared = trunk.plan_trunk(session.model, plan.adapter.lora)
    if shared.shared == 0:
        return None
    index = trunk_cache.index_key(
        base=session.weights_key,
        model_type=getattr(session.model.config, "model_type", ""),
        shared=shared.shared,
        dtype=str(plan.dtype),
        device=str(plan.device),
    )
    digests = trunk_cache.row_digests(encoded.input_ids, encoded.token_type_ids)
    found = trunk_cache.load_rows(index, digests, shared)
    if found is not None:
        log.info("%s: layers 0-%d replayed from the training's recorded states", "frozen probe pass", shared.shared - 1)
    return found


def _lower_layers_from_training(result: PassResult, replay: trunk_cache.Trained, pool, session) -> None:
    """The replayed pass skipped layers 0..k-1: its pooled states of layers 0..k-2 come from the training."""
    result.trained_trunk_layers = replay.states.plan.shared
    if result.layers is not None and not replay.pooled.fill(result.layers, pool, session.pass_kw["pad_token_id"]):
        raise RuntimeError("the training's recorded lower-layer states do not fit this pass")
