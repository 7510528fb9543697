"""Each seed's LoRA factors as numpy arrays, read from its saved tensors, for stats/seed_agreement.

Nothing is loaded into a model: `modeling.read_adapter` already holds every adapter's LoRA tensors. The scaling
is the one peft merges with (weight_delta.lora_scaling: alpha / r or alpha / sqrt(r), rank and alpha patterns).
"""

from __future__ import annotations

import numpy as np

from lorafair.evaluation.analysis_pass import adapted_modules
from lorafair.stats import weight_delta


def _factors(adapter, module: str, lora_a, lora_b) -> tuple[np.ndarray, np.ndarray, float]:
    a = lora_a.float().numpy().astype(np.float64)
    b = lora_b.float().numpy().astype(np.float64)
    return a, b, weight_delta.lora_scaling(adapter.config or {}, module, int(a.shape[0]))


def lora_factors(adapters: list) -> tuple[dict[str, list[tuple]], list[dict]]:
    """{module: [(A (r x in), B (out x r), scaling) per adapter]} for the modules every adapter adapts alike
    (same shape of ΔW), in the first adapter's order, and note records for what was left out."""
    if any((adapter.config or {}).get("use_dora") for adapter in adapters):
        return {}, [{"kind": "seed_weights_dora"}]  # DoRA's update is not scaling·B·A
    pairs = [adapted_modules(adapter) for adapter in adapters]
    per_module = {}
    for module, (lora_a, lora_b) in pairs[0].items():
        shape = (lora_b.shape[0], lora_a.shape[1])
        others = [p.get(module) for p in pairs[1:]]
        if all(o is not None and (o[1].shape[0], o[0].shape[1]) == shape for o in others):
            per_module[module] = [_factors(adapter, module, *p[module]) for adapter, p in zip(adapters, pairs)]
    every = set().union(*(set(p) for p in pairs))
    left_out = len(every - set(per_module))
    return per_module, ([{"kind": "seed_weights_unshared", "modules": left_out}] if left_out else [])
