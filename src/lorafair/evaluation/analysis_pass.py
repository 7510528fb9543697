"""The layer-wise and weight-space analysis inside `lorafair compare`: the glue between models and numbers.

The numbers themselves come from the torch-free `analysis` (CKA, cosine, probes) and `weight_delta`
(ΔW, effective rank, intruders) modules; this one reads the base weights and LoRA tensors out of the
model and the adapter, decides where the layer features are pooled, and assembles
`report["analysis"]` = {"layers": [...], "weights": [...], "summary": {...}, "notes": [...], ...}; the notes
are records with a "kind" (what was computed, at what cost), worded by report/words.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from lorafair.core.names import ADAPTER_HEAD_VARIANTS
from lorafair.stats import representations as analysis
from lorafair.stats import weight_delta

log = logging.getLogger(__name__)


def single_threaded_blas():
    """Small eigendecompositions and probe fits run on one BLAS thread.

    Measured on the 2-core machine under load ~6 (other processes busy): a 576 x 576 symmetric eigh took
    21 s with OpenBLAS's 2 threads fighting for the cores and 0.7 s on one; these matrices are too small
    for threads to pay off anywhere.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


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
    return {
        path: (p["lora_A"], p["lora_B"])
        for path, p in sorted(pairs.items(), key=lambda kv: _natural(kv[0]))
        if "lora_A" in p and "lora_B" in p
    }


def _natural(name: str) -> list:
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def weight_records(model, adapter, *, max_dim: int | None) -> tuple[list[dict], list[dict]]:
    """analysis.weights for every adapted module of the (still unmerged) base `model`, plus note records."""
    notes = []
    config = adapter.config or {}
    if config.get("use_dora"):  # DoRA merges with a learned magnitude, not as scale·B·A
        return [], [{"kind": "analysis_dora"}]
    modules = dict(model.named_modules())
    records = []
    for path, (lora_a, lora_b) in adapted_modules(adapter).items():
        target = modules.get(path)
        if target is None or getattr(target, "weight", None) is None:
            notes.append({"kind": "analysis_module_missing", "module": path})
            continue
        conv1d = type(target).__name__ == "Conv1D"  # GPT-2 stores W transposed; peft merges with fan_in_fan_out
        rank = int(lora_a.shape[0])
        record = weight_delta.module_record(
            path,
            target.weight.detach().float().cpu().numpy(),
            lora_a.float().numpy(),
            lora_b.float().numpy(),
            weight_delta.lora_scaling(config, path, rank),
            fan_in_fan_out=conv1d,
            max_dim=max_dim,
        )
        record["layer"], record["kind"] = weight_delta.layer_and_kind(path)
        records.append(record)
    skipped = [r for r in records if r.get("intruders_skipped")]
    if skipped:  # their norms and effective ranks are exact
        notes.append(
            {"kind": "analysis_intruders_skipped", "skipped": len(skipped), "modules": len(records), "max_dim": max_dim}
        )
    return records, notes


def build(
    eval_a: np.ndarray,
    eval_b: np.ndarray,
    *,
    weights: list[dict],
    pooling: str,
    probe: dict | None,
    notes: list[dict],
    seconds: dict,
) -> dict:
    """report["analysis"] from the pooled hidden states and the weight records."""
    started = time.perf_counter()
    with single_threaded_blas():
        layers = analysis.layer_records(eval_a, eval_b, probe=probe)
    seconds["layer_metrics_and_probes"] = time.perf_counter() - started
    seconds["total"] = sum(v for k, v in seconds.items() if k != "total")
    num_layers, n, d = eval_a.shape
    held = {"kind": "analysis_layers", "layers": num_layers, "examples": n, "dim": d, "pooling": pooling}
    notes = [{**held, "bytes": 2 * int(eval_a.nbytes)}, *notes, _probe_note(probe)]
    notes.append({"kind": "analysis_cost", "seconds": dict(seconds)})  # beyond the comparison's own passes
    return {
        "layers": layers,
        "weights": weights,
        "summary": analysis.summarise(layers, weights),
        "pooling": pooling,
        "probe": None if probe is None else _probe_info(probe),
        "notes": notes,
        "seconds": seconds,
    }


def _probe_note(probe: dict | None) -> dict:
    """How the per-layer probes were fitted (on how many of A1's probe examples), or that they were not."""
    if probe is None:  # they need variant A1 and its probe data
        return {"kind": "analysis_probes_off"}
    examples = int(len(probe["train_y"]))
    return {
        "kind": "analysis_probes",
        "C": probe["C"],
        "examples": examples,
        "probe_examples": probe.get("of", examples),
    }


def _probe_info(probe: dict) -> dict:
    return {"C": probe["C"], "train_examples": int(len(probe["train_y"])), "C_from": "A1"}  # A1's cross-validated C


def _with_shared_layers(layers_b, layers_a, shared: int):
    """hidden_states[0..shared-1] of a pass that skipped the shared layers: take them from A (identical)."""
    if shared and layers_b is not None:
        layers_b[:shared] = layers_a[:shared]
    return layers_b


@dataclass
class Collector:
    """Gathers what `run_compare`'s passes produce for the analysis; each step is one call from compare.

    collector = Collector.start(cfg, variants, model, distributed=ctx.enabled)
    run_pass(..., layer_pool=collector.pool)      # frozen pass, probe pass, LoRA pass
    collector.frozen_eval(frozen); collector.probe_data(...); collector.weights(model, adapter)  # before merging
    collector.lora_eval(lora_pass); collector.lora_probe(run)                                  # after merging
    report["analysis"] = collector.report()
    """

    pool: str | None = None  # None: analysis off, run_pass captures nothing extra
    probe_limit: int = 250
    max_dim: int | None = 1024
    seed: int = 0
    batch_size: int = 16
    notes: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    eval_a: np.ndarray | None = None
    eval_b: np.ndarray | None = None
    probe: dict | None = None
    probe_encoded: object = None
    weight_list: list[dict] = field(default_factory=list)

    @classmethod
    def start(cls, cfg, variants, model, *, distributed: bool = False) -> Collector:
        off = cls(notes=[])
        if getattr(cfg, "no_analysis", False):
            return off
        if not set(ADAPTER_HEAD_VARIANTS) <= set(variants):
            log.info("analysis skipped: it compares the frozen (A) and LoRA (B) passes, and both are needed")
            return off
        if distributed:
            log.warning("analysis skipped: layer features are not gathered across processes yet")
            return off
        return cls(
            pool=layer_pooling(model),
            probe_limit=cfg.analysis_probe_samples,
            max_dim=cfg.analysis_max_dim,
            seed=cfg.seed,
            batch_size=cfg.batch_size,
        )

    @property
    def enabled(self) -> bool:
        return self.pool is not None

    def frozen_eval(self, result) -> None:
        if self.enabled:
            self.eval_a = result.layers

    def probe_subset(self, labels) -> np.ndarray | None:
        """Indices of the A1 probe examples the analysis uses (None: analysis off); seeded, stratified."""
        if not self.enabled:
            return None
        from lorafair.data import examples as data_mod

        if 0 < self.probe_limit < len(labels):
            return np.sort(data_mod.stratified_sample(np.asarray(labels), self.probe_limit, self.seed))
        return np.arange(len(labels))

    def probe_data(self, encoded, labels, result, C: float) -> None:
        """A's layer features of the A1 probe data; B's are computed on the same (sub)set in `lora_probe`."""
        if not self.enabled or result.layers is None:
            return
        from lorafair.models.inference import Encoded

        keep = self.probe_subset(labels)  # all of A1's probe examples, or a subset so the extra LoRA pass stays cheap
        types = encoded.token_type_ids
        self.probe_encoded = Encoded(
            [encoded.input_ids[i] for i in keep], None if types is None else [types[i] for i in keep]
        )
        self.probe = {
            "keep": keep,
            "train_a": result.layers[:, keep],
            "train_y": np.asarray(labels)[keep],
            "C": float(C),
            "seed": self.seed,
            "of": len(labels),  # A1's probe examples (len(keep) < this: a subset)
        }

    def weights(self, model, adapter) -> None:
        """Read ΔW against the base weights: call before the LoRA deltas are merged into them."""
        if not self.enabled:
            return
        started = time.perf_counter()
        with single_threaded_blas():
            self.weight_list, notes = weight_records(model, adapter, max_dim=self.max_dim)
        self.notes.append({"kind": "analysis_weights", "modules": len(self.weight_list)})  # how ΔW was computed
        self.notes.extend(notes)
        self.seconds["weights"] = time.perf_counter() - started

    def lora_eval(self, result, shared: int = 0) -> None:
        """`shared`: B skipped layers 0..shared-1 (shared trunk); their hidden states are A's, exactly."""
        if self.enabled:
            self.eval_b = _with_shared_layers(result.layers, self.eval_a, shared)

    def lora_probe(self, run, shared: int = 0) -> None:
        """`run(encoded, batches, keep) -> PassResult`: the extra LoRA pass over the probe (sub)set."""
        if not self.enabled or self.probe is None:
            return
        from lorafair.models.inference import length_sorted_batches

        started = time.perf_counter()
        batches = length_sorted_batches(self.probe_encoded.lengths, self.batch_size)
        result = run(self.probe_encoded, batches, self.probe["keep"])
        self.probe["train_b"] = _with_shared_layers(result.layers, self.probe["train_a"], shared)
        self.seconds["lora_probe_pass"] = time.perf_counter() - started
        examples, seconds = len(self.probe_encoded.input_ids), self.seconds["lora_probe_pass"]
        self.notes.append({"kind": "analysis_lora_probe_pass", "examples": examples, "seconds": seconds})

    def report(self, eval_y) -> dict | None:
        if not self.enabled or self.eval_a is None or self.eval_b is None:
            return None
        probe = None
        if self.probe is not None and self.probe.get("train_b") is not None:
            probe = {**self.probe, "eval_y": np.asarray(eval_y)}
        return build(
            self.eval_a,
            self.eval_b,
            weights=self.weight_list,
            pooling=self.pool,
            probe=probe,
            notes=self.notes,
            seconds=self.seconds,
        )
