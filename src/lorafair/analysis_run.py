"""The layer-wise and weight-space analysis inside `lorafair compare`: the glue between models and numbers.

The numbers themselves come from the torch-free `analysis` (CKA, cosine, probes) and `weight_delta`
(ΔW, effective rank, intruders) modules; this one reads the base weights and LoRA tensors out of the
model and the adapter, decides where the layer features are pooled, and assembles
`report["analysis"]` = {"layers": [...], "weights": [...], "summary": {...}, "notes": [...], ...}.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from lorafair import analysis, weight_delta

log = logging.getLogger(__name__)

POOLING_TEXT = {"last": "the last non-pad token (where the decoder's classifier pools)",
                "first": "the first token ([CLS]; any pooler of the head itself is not applied per layer)"}


def layer_pooling(model) -> str:
    """'last' for causal decoders (their classifier pools the last non-pad token), 'first' for encoders."""
    causal = any(getattr(module, "is_causal", False) is True for module in model.modules())
    return "last" if causal else "first"


def adapted_modules(adapter) -> dict[str, tuple]:
    """{module path: (lora_A (r x in), lora_B (out x r))} for every LoRA pair the adapter holds."""
    pairs = {}
    for key, tensor in adapter.lora.items():
        path, _, kind = key.rpartition(".")
        if kind in ("lora_A", "lora_B") and tensor.dim() == 2:
            pairs.setdefault(path, {})[kind] = tensor
    return {path: (p["lora_A"], p["lora_B"]) for path, p in sorted(pairs.items(), key=lambda kv: _natural(kv[0]))
            if "lora_A" in p and "lora_B" in p}


def _natural(name: str) -> list:
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def weight_records(model, adapter, *, max_dim: int | None) -> tuple[list[dict], list[str]]:
    """analysis.weights for every adapted module of the (still unmerged) base `model`, plus notes."""
    notes = []
    config = adapter.config or {}
    if config.get("use_dora"):
        return [], ["weights: DoRA adapters merge with a learned magnitude, not as scale·B·A; not analysed"]
    modules = dict(model.named_modules())
    records = []
    for path, (lora_a, lora_b) in adapted_modules(adapter).items():
        target = modules.get(path)
        if target is None or getattr(target, "weight", None) is None:
            notes.append(f"weights: {path} not found in the base model; skipped")
            continue
        conv1d = type(target).__name__ == "Conv1D"  # GPT-2 stores W transposed; peft merges with fan_in_fan_out
        rank = int(lora_a.shape[0])
        record = weight_delta.module_record(
            path, target.weight.detach().float().cpu().numpy(), lora_a.float().numpy(), lora_b.float().numpy(),
            weight_delta.lora_scaling(config, path, rank), fan_in_fan_out=conv1d, max_dim=max_dim)
        record["layer"], record["kind"] = weight_delta.layer_and_kind(path)
        records.append(record)
    skipped = [r for r in records if r.get("intruders_skipped")]
    if skipped:
        notes.append(f"weights: intruders not computed for {len(skipped)} of {len(records)} modules whose smaller "
                     f"side exceeds {max_dim} (--analysis-max-dim); their norms and effective ranks are exact")
    return records, notes


def probe_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of the probe data that B's extra pass runs on (all of it when it fits in `limit`)."""
    from lorafair import data as data_mod

    if limit <= 0 or limit >= len(labels):
        return np.arange(len(labels))
    return np.sort(data_mod.stratified_sample(labels, limit, seed))


def build(eval_a: np.ndarray, eval_b: np.ndarray, *, weights: list[dict], pooling: str, probe: dict | None,
          notes: list[str], seconds: dict) -> dict:
    """report["analysis"] from the pooled hidden states and the weight records."""
    started = time.perf_counter()
    layers = analysis.layer_records(eval_a, eval_b, probe=probe)
    seconds["layer_metrics_and_probes"] = time.perf_counter() - started
    num_layers, n, d = eval_a.shape
    notes = [f"layers: hidden_states[0..{num_layers - 1}] (0 = embeddings) of A and B on the {n} evaluation examples, "
             f"pooled at {POOLING_TEXT[pooling]}; held in memory as 2 x {num_layers} x {n} x {d} float32 "
             f"({2 * eval_a.nbytes / 2**20:.0f} MiB)", *notes]
    if probe is None:
        notes.append("layers: per-layer probes not fitted (they need variant A1 and its probe data)")
    else:
        notes.append(f"layers: per-layer probes: standardise + logistic regression with A1's C = {probe['C']:.4g} for "
                     f"every layer of A and B, fitted on {len(probe['train_y'])} probe-data examples"
                     f"{probe.get('subset_note', '')}, scored on the evaluation set")
    return {"layers": layers, "weights": weights, "summary": analysis.summarise(layers, weights),
            "pooling": pooling, "notes": notes, "seconds": seconds}
