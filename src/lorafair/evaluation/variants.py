"""The variant runners of one comparison: the frozen pass (A, and the features of A1 and R), then B.

Each runner takes the plan and the loaded session (see compare.py) and returns a `VariantResult` (logits,
head hash, speed); `run_variants` calls them in the order that keeps peak memory at one model: the frozen
variants first, as they share one pass, then B, which merges the LoRA deltas into the weights in place.
The sweep (sweep.py) calls the same runners once per adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lorafair.core.names import FROZEN_VARIANTS, OWN_HEAD_VARIANTS
from lorafair.evaluation import analysis_pass as analysis_run
from lorafair.evaluation import beyond_task, fidelity, frozen_pass, probe_data
from lorafair.models import heads, modeling
from lorafair.models.inference import PassResult, length_sorted_batches, run_pass, tokenize

if TYPE_CHECKING:
    from lorafair.evaluation.plan import ComparePlan, Session


@dataclass
class VariantResult:
    logits: np.ndarray
    head_sha256: str | None
    speed: dict | None = None


@dataclass
class Outcome:
    """What the runners produced: per-variant results, the forward passes run, and notes for the report."""

    results: dict = field(default_factory=dict)
    passes: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    feature_pooling: str | None = None  # how the frozen pass pooled the head's input (see inference.pool_head_input)
    fidelity: dict | None = None  # merged vs unmerged B
    analysis: analysis_run.Collector = field(default_factory=analysis_run.Collector)  # off until run_variants
    beyond: beyond_task.Collector = field(default_factory=beyond_task.Collector)  # --ood-data; off until run_variants


def run_frozen(plan: ComparePlan, session: Session, outcome: Outcome) -> PassResult:
    """One frozen pass over the evaluation set: A's logits and the pooled features of A1 and R."""
    frozen, session.trunk_eval, cached = frozen_pass.run(
        plan, session, outcome, session.encoded, session.batches, "frozen base (A)", record=True
    )
    outcome.analysis.frozen_eval(frozen)
    outcome.passes.append(frozen_pass.entry("frozen_eval", len(plan.eval_idx), frozen, cached))
    outcome.feature_pooling = frozen.feature_pooling
    if set(OWN_HEAD_VARIANTS) & set(plan.variants):  # they are only fair on exactly what A's head consumed: prove it
        heads.check_features_reproduce_head(
            session.model, stack_names(plan, session), frozen.features, frozen.logits, frozen.feature_pooling
        )
    return frozen


def stack_names(plan: ComparePlan, session: Session) -> list[str]:
    return heads.stack_modules(session.model, plan.adapter.head_modules)


def run_variant_a(plan: ComparePlan, session: Session, frozen: PassResult) -> VariantResult:
    return VariantResult(frozen.logits, session.head_hash_a, frozen.speed(len(plan.eval_idx)))


def run_variant_r(plan: ComparePlan, session: Session, frozen: PassResult) -> VariantResult:
    """R: the whole head stack freshly initialised by the model's own `_init_weights` (seeded), on the features."""
    import torch

    fresh = modeling.random_head(session.model, plan.adapter, seed=plan.cfg.seed)
    with torch.inference_mode():
        logits = heads.apply_head(
            getattr(session.model.config, "model_type", ""),
            fresh,
            torch.from_numpy(frozen.features),
            frozen.feature_pooling,
        )
    tensors = {
        f"{name}.{key}": param
        for name, module in zip(stack_names(plan, session), fresh)
        for key, param in module.named_parameters()
    }
    return VariantResult(logits.float().numpy(), modeling.tensor_sha256(tensors))


def run_variant_a1(plan: ComparePlan, session: Session, frozen: PassResult, outcome: Outcome) -> VariantResult | None:
    """A1: a linear probe fitted on a frozen pass over the probe data, applied to the evaluation features."""
    import torch

    from lorafair.stats.probe import fit_linear_probe

    probe_ex, probe_y, probe_note = probe_data.probe_examples(plan)
    outcome.notes.append(probe_note)
    if probe_ex is None:
        return cross_fitted_a1(plan, frozen, outcome) if probe_note["kind"] == "probe_cross_fitted" else None
    cfg = plan.cfg
    probe_enc = tokenize(session.tokenizer, probe_ex.texts, probe_ex.text_pairs, max_length=cfg.max_length)
    probe_batches = length_sorted_batches(probe_enc.lengths, cfg.batch_size)
    keep = outcome.analysis.probe_subset(probe_y)  # the examples the analysis sends through B again
    probe_pass, session.trunk_probe, cached = frozen_pass.run(
        plan,
        session,
        outcome,
        probe_enc,
        probe_batches,
        "frozen base (probe data)",
        warmup=False,
        record=keep is not None,
        keep=keep,
        trained=True,  # the adapter's training rows: `lorafair train` may have recorded their lower layers
    )
    outcome.passes.append(frozen_pass.entry("frozen_probe", len(probe_y), probe_pass, cached))
    probe = fit_linear_probe(probe_pass.features, probe_y, plan.adapter.num_labels, seed=cfg.seed)
    outcome.notes.append({"kind": "probe_fit", "C": float(probe.C), "cv_accuracy": float(probe.cv_accuracy)})
    outcome.analysis.probe_data(probe_enc, probe_y, probe_pass, probe.C)
    head_hash = modeling.tensor_sha256(
        {
            "weight": torch.from_numpy(np.ascontiguousarray(probe.weight)),
            "bias": torch.from_numpy(np.ascontiguousarray(probe.bias)),
        }
    )
    return VariantResult(probe.logits(frozen.features), head_hash)


def cross_fitted_a1(plan: ComparePlan, frozen: PassResult, outcome: Outcome) -> VariantResult:
    """A1 without probe data: cross-fitted on the evaluation features, each example scored by a probe that never saw
    it (stats/probe.cross_fitted_probe); its head hash covers every fold's head."""
    import time

    import torch

    from lorafair.stats.probe import cross_fitted_probe

    started = time.perf_counter()
    fitted = cross_fitted_probe(frozen.features, plan.y, plan.adapter.num_labels, seed=plan.cfg.seed)
    outcome.notes.append(
        {
            "kind": "probe_fold_fits",
            "C": [float(h.C) for h in fitted.heads],
            "cv_accuracy": [float(h.cv_accuracy) for h in fitted.heads],
            "seconds": time.perf_counter() - started,
        }
    )
    tensors = {
        f"fold{k}.{name}": torch.from_numpy(np.ascontiguousarray(getattr(head, name)))
        for k, head in enumerate(fitted.heads)
        for name in ("weight", "bias")
    }
    return VariantResult(fitted.logits, modeling.tensor_sha256(tensors))


def a1_absent_note(plan: ComparePlan) -> dict:
    """The report says when it has no A1, and why: not asked for, or no data to fit it on."""
    return {"kind": "a1_absent", "reason": "no_probe_data" if "A1" in plan.variants else "not_requested"}


def run_variant_b(plan: ComparePlan, session: Session, outcome: Outcome) -> VariantResult:
    """B: merge the LoRA deltas into the loaded model in place (the frozen weights are not needed any more).

    The unmerged LoRA model first runs a few whole batches, so that the report can show the merged
    (timed) B predicts like the model that was trained.
    """
    outcome.analysis.weights(session.model, plan.adapter)  # ΔW against the base weights, before they change
    outcome.beyond.frozen_pass(plan, session, outcome)  # the base on the out-of-domain text, before the merge
    unmerged, checked, head_hash = _merge_checked(plan, session, outcome)
    lora_pass = _lora_eval_pass(plan, session, outcome)
    _lora_probe_pass(plan, session, outcome)
    outcome.beyond.lora_pass(plan, session, outcome)
    outcome.fidelity = fidelity.measure(
        unmerged.logits[checked],
        lora_pass.logits[checked],
        merge_dtype="float32",
        model_dtype=str(plan.dtype).replace("torch.", ""),
    )
    return VariantResult(lora_pass.logits, head_hash, lora_pass.speed(len(plan.eval_idx)))


def _merge_checked(plan: ComparePlan, session: Session, outcome: Outcome) -> tuple[PassResult, np.ndarray, str]:
    """A few whole batches through the unmerged LoRA model, then the merge in place: (unmerged pass, the
    examples it checked, B's head hash, which must be the head installed in A)."""
    peft_model = modeling.attach_lora(session.model, plan.adapter)
    checked = fidelity.check_batches(session.batches)
    unmerged = run_pass(
        peft_model, session.encoded, checked, warmup=False, desc="LoRA unmerged (fidelity)", **session.pass_kw
    )
    session.model = modeling.merge_attached(peft_model, plan.adapter)
    del peft_model
    head_hash = modeling.tensor_sha256(modeling.head_tensors(session.model, plan.adapter))
    if head_hash != session.head_hash_a:
        raise RuntimeError(
            f"head of B ({head_hash[:12]}) differs from the adapter's head installed in A "
            f"({session.head_hash_a[:12]}): the comparison would not be fair"
        )
    idx = np.concatenate(checked) if checked else np.empty(0, dtype=np.int64)
    seconds = float(sum(unmerged.batch_seconds))
    outcome.passes.append({"kind": "lora_unmerged", "examples": len(idx), "seconds": seconds})
    return unmerged, idx, head_hash


def _lora_eval_pass(plan: ComparePlan, session: Session, outcome: Outcome) -> PassResult:
    """The merged model over the evaluation set, the shared trunk's layers taken from the frozen pass."""
    shared = session.trunk_plan.shared if session.trunk_eval is not None else 0
    result = session.run(
        session.encoded,
        session.batches,
        "LoRA merged (B)",
        capture_head=False,
        ctx=plan.ctx,
        layer_pool=outcome.analysis.pool,
        trunk=session.trunk_eval.replayer(session.model) if shared else None,
    )
    outcome.passes.append(
        {
            "kind": "lora_eval",
            "examples": len(plan.eval_idx),
            "shared_layers": shared,
            "total_layers": session.trunk_plan.total,
            "seconds": float(sum(result.batch_seconds)),
        }
    )
    outcome.analysis.lora_eval(result, shared)
    return result


def _lora_probe_pass(plan: ComparePlan, session: Session, outcome: Outcome) -> None:
    """The analysis's extra pass of the merged model over its subset of the probe data (nothing when it is off)."""
    trunk_probe = session.trunk_probe
    outcome.analysis.lora_probe(
        lambda enc, bat, keep: session.run(
            enc,
            bat,
            "LoRA merged (probe data, analysis)",
            capture_head=False,
            warmup=False,
            ctx=plan.ctx,
            layer_pool=outcome.analysis.pool,
            trunk=trunk_probe.replayer(session.model, keep) if trunk_probe is not None else None,
        ),
        session.trunk_plan.shared if trunk_probe is not None else 0,
    )


def _trunk_note(session: Session) -> dict:
    """How many layers B's pass shared with the frozen pass, and why (a note record; models/trunk.py's reasons)."""
    shared_plan = session.trunk_plan
    note = {
        "kind": "shared_trunk",
        "shared": shared_plan.shared,
        "total": shared_plan.total,
        "reason": shared_plan.reason,
        "detail": shared_plan.detail,
    }
    if shared_plan.shared and session.trunk_eval is None:  # a cached frozen pass without the layer's output
        note.update(shared=0, reason="cached_without_trunk", detail=shared_plan.shared - 1)
    return note


def run_variants(plan: ComparePlan, session: Session) -> Outcome:
    """Frozen variants first (they share one pass), then B, which changes the weights in place."""
    outcome, wanted = Outcome(), set(plan.variants)
    outcome.analysis = analysis_run.Collector.start(
        plan.cfg, plan.variants, session.model, distributed=plan.ctx.enabled
    )
    outcome.beyond = beyond_task.Collector.start(plan, session)
    if wanted & set(FROZEN_VARIANTS):
        frozen = run_frozen(plan, session, outcome)
        if "A" in wanted:
            outcome.results["A"] = run_variant_a(plan, session, frozen)
        if "R" in wanted:
            outcome.results["R"] = run_variant_r(plan, session, frozen)
        if "A1" in wanted:
            a1 = run_variant_a1(plan, session, frozen, outcome)
            if a1 is not None:
                outcome.results["A1"] = a1
        del frozen
    if "A1" not in outcome.results:
        outcome.notes.append(a1_absent_note(plan))
    if "B" in wanted:
        outcome.results["B"] = run_variant_b(plan, session, outcome)
        outcome.notes.append(_trunk_note(session))
    return outcome
