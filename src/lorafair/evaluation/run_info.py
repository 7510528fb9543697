"""The report's descriptive sections of one comparison: data, head, environment and timing.

The sweep reports through the same functions, so a sweep's per-adapter report.json reads like a compare's.
"""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING

from lorafair.core.peak_memory import peak_rss_bytes
from lorafair.evaluation.variants import stack_names
from lorafair.models import heads

if TYPE_CHECKING:
    from lorafair.evaluation.plan import ComparePlan, Session
    from lorafair.evaluation.variants import Outcome


def timing(clock: list, passes: list) -> dict:
    """Seconds per phase, and how much of them the forward passes took (the rest is fixed cost)."""
    phases = {name: end - start for (_, start), (name, end) in zip(clock, clock[1:])}
    forward = sum(p.get("seconds", 0.0) for p in passes)
    return {"total_seconds": clock[-1][1] - clock[0][1], "phases": phases, "forward_pass_seconds": forward}


def data_info(plan: ComparePlan, token_sha: str, token_seconds: float, truncated: int) -> dict:
    y, names = plan.y, plan.label_names
    return {
        "n": int(len(y)),
        "n_available": len(plan.examples),
        "labels": names,
        "source": str(plan.data_path),
        "label_counts": {names[k]: int((y == k).sum()) for k in range(len(names))},
        "token_ids_sha256": token_sha,
        "tokenize_seconds": token_seconds,
        "indices": [int(i) for i in plan.eval_idx],
        "dropped_rows": int(plan.examples.dropped),
        "truncated": int(truncated),
        "truncated_share": truncated / len(y) if len(y) else 0.0,
    }


def head_section(plan: ComparePlan, session: Session, outcome: Outcome) -> dict:
    """report["head"]: every saved module and tensor A and B run, their hash, and what A1/R's features are."""
    model, adapter = session.model, plan.adapter
    features = features_record(model, stack_names(plan, session), outcome.feature_pooling)
    return {
        "modules": heads.in_model_order(model, adapter.head_modules),
        "tensors": sorted(adapter.head),
        "sha256": session.head_hash_a,
        "features": features,
    }


def features_record(model, stack: list[str], pooling: str | None) -> dict | None:
    """What A1 and R are given (report/words words it): where the head's input is pooled, and for a head that
    receives a pooled vector, which model pooled it. None when no frozen pass ran (B only)."""
    if not pooling:
        return None
    return {
        "kind": "features",
        "pooling": pooling,  # last_non_pad, first or vector (models/pooling.pool_head_input)
        "module": stack[0] if stack else None,  # the head module whose input the features are
        "model_type": getattr(model.config, "model_type", ""),
        "model_class": type(model).__name__,
        "classifier_pooling": getattr(model.config, "classifier_pooling", "cls"),
    }


def environment_info(plan: ComparePlan) -> dict:
    import torch

    return {
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(plan.device),
        "dtype": str(plan.dtype).replace("torch.", ""),
        "dtype_choice": plan.dtype_choice or {"dtype": str(plan.dtype).replace("torch.", ""), "source": "option"},
        "peak_rss_bytes": peak_rss_bytes(),  # VmHWM: this process's own peak, however launched
        "world_size": plan.ctx.world_size,
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
