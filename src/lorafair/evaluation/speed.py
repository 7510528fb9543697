"""Deployment speed of A and B, like for like: report["speed"].

After merging, A (frozen base + head) and B (base + merged LoRA + the same head) do the same FLOPs per example, so
their speed is only comparable when both run every layer over the same examples in the same batches. B's own
evaluation pass does not: by default it starts from the frozen pass's output of the last unadapted layer (the
shared trunk, models/trunk.py), and A's pass may have been served from the feature cache (its seconds are then
the first run's). Both are lorafair's own cost, never the models' speed. So the first min(SAMPLE, n) examples of
the evaluation sample, batched by length as the evaluation pass batches, run through A (before the merge) and
through the merged B on all layers, no shared trunk; the full B pass must predict exactly as B's evaluation pass
did on them (to fp tolerance), a check on the shared trunk itself.

    report["speed"] = {"like_for_like": {examples, batches, A, B, difference, b_vs_shared_trunk} | None,
                       "reason": why none (absent when measured), "a_pass": {cached, seconds, examples},
                       "b_pass": {shared_layers, total_layers, seconds, examples}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lorafair.models.inference import PassResult, length_sorted_batches

if TYPE_CHECKING:
    from lorafair.evaluation.plan import ComparePlan, Session

SAMPLE = 64


def sample_batches(encoded, batch_size: int, limit: int = SAMPLE) -> tuple[np.ndarray, list[np.ndarray]]:
    """The first min(limit, n) examples (the evaluation sample is already drawn at random) batched by length."""
    idx = np.arange(min(limit, len(encoded.input_ids)), dtype=np.int64)
    return idx, [idx[b] for b in length_sorted_batches(encoded.lengths[idx], batch_size)]


def reason_not_measured(plan: ComparePlan) -> str | None:
    if not {"A", "B"} <= set(plan.variants):
        return "needs_a_and_b"
    if plan.ctx.enabled:  # ranks run shares of the batches side by side: no single-process deployment timing
        return "distributed"
    return None


def time_a(plan: ComparePlan, session: Session, state: dict) -> None:
    """A's like-for-like sample, on the frozen base (before B's merge changes the weights)."""
    idx, batches = sample_batches(session.encoded, plan.cfg.batch_size)
    result = session.run(session.encoded, batches, "frozen base (A), like-for-like sample", ctx=plan.ctx)
    state.update(idx=idx, batches=batches, A=result)


def time_b(plan: ComparePlan, session: Session, state: dict, lora_pass: PassResult) -> None:
    """The merged B on every layer (no shared trunk) over A's sample; it must predict as B's evaluation pass did."""
    idx, batches = state["idx"], state["batches"]
    result = session.run(
        session.encoded, batches, "LoRA merged (B), all layers, like-for-like sample", capture_head=False, ctx=plan.ctx
    )
    full, shared = result.logits[idx].astype(np.float64), lora_pass.logits[idx].astype(np.float64)
    state["B"] = result
    state["b_vs_shared_trunk"] = {
        "max_abs_logit_diff": float(np.abs(full - shared).max()) if len(idx) else 0.0,
        "prediction_mismatches": int((full.argmax(1) != shared.argmax(1)).sum()),
    }


def figures(result: PassResult, n: int) -> dict:
    return {**result.speed(n), "examples": n}


def like_for_like(state: dict) -> dict | None:
    if "B" not in state:
        return None
    n = len(state["idx"])
    a, b = figures(state["A"], n), figures(state["B"], n)
    return {
        "examples": n,
        "batches": len(state["batches"]),
        "A": a,
        "B": b,
        "difference": b["qps"] / a["qps"] - 1 if a["qps"] and b["qps"] else None,
        "b_vs_shared_trunk": state["b_vs_shared_trunk"],
    }


def section(plan: ComparePlan, state: dict, passes: list) -> dict:
    """report["speed"]: the like-for-like figures, and the evaluation passes' seconds as lorafair's own cost."""
    by_kind = {p["kind"]: p for p in passes}
    out: dict = {"like_for_like": like_for_like(state)}
    if out["like_for_like"] is None:
        out["reason"] = reason_not_measured(plan) or "not_run"
    if "frozen_eval" in by_kind:
        frozen = by_kind["frozen_eval"]
        seconds = None if frozen["cached"] else frozen["seconds"]  # a cache hit's seconds are the first run's
        out["a_pass"] = {"cached": frozen["cached"], "seconds": seconds, "examples": frozen["examples"]}
    if "lora_eval" in by_kind:
        lora = by_kind["lora_eval"]
        out["b_pass"] = {k: lora[k] for k in ("shared_layers", "total_layers", "seconds", "examples")}
    return out


def variant_speeds(speed_section: dict) -> dict:
    """Per-variant speed blocks: only like-for-like figures, or a full pass that was timed in this run."""
    lfl = speed_section.get("like_for_like")
    if lfl:
        return {"A": lfl["A"], "B": lfl["B"]}
    return {}
