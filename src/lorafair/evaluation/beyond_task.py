"""What LoRA changed beyond the task (`--ood-data`): the frozen and LoRA backbones on out-of-domain text.

    report["beyond_task"] = {"data": {...}, "pooling", "layers": [{"layer", "cka", "cosine"}],
                             "lm": {"kl_mean", "perplexity_base", "perplexity_lora", "tokens", ...} | None,
                             "reason": None | {"kind": "lm_skipped" | "ood_skipped", "reason", "detail"},
                             "notes": [...], "seconds": {...}}

Two extra passes over the sampled texts: the frozen base before B merges (`frozen_pass`), the merged LoRA model
after (`lora_pass`). Layer-wise linear CKA and mean cosine of A and B compare the hidden states pooled where the
head pools, as report["analysis"] does on the task's data. The frozen pass records the shared trunk (layers below
the lowest LoRA layer, identical in A and B) so B's pass runs only the adapted layers. For decoders whose base
checkpoint has a language-model head, the final hidden states of both passes (tokens x d, never logits) give the
per-token KL(base || base+LoRA) and both perplexities (models/lm_head.py, stats/next_token.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lorafair.data import examples as data_mod
from lorafair.evaluation.analysis_pass import _with_shared_layers, layer_pooling, single_threaded_blas
from lorafair.models import lm_head, trunk
from lorafair.stats import next_token
from lorafair.stats import representations as similarity

log = logging.getLogger(__name__)


@dataclass
class OodPlan:
    """The out-of-domain texts, read and sampled in the plan (a bad --ood-data fails before any weight loads)."""

    spec: str
    path: Path
    texts: list[str]
    indices: np.ndarray  # of the sampled texts in the file's non-empty texts
    available: int
    dropped: int  # rows without a text


def plan_ood(cfg) -> OodPlan | None:
    """None unless --ood-data is given (and not --no-ood)."""
    if cfg.no_ood or not cfg.ood_data:
        return None
    from lorafair.assets import builtin

    path = Path(builtin.resolve_data(cfg.ood_data, None))
    texts, dropped = data_mod.load_texts(path, text_column=cfg.text_column, encoding=cfg.encoding)
    keep = data_mod.random_sample(len(texts), cfg.ood_samples, cfg.seed)
    return OodPlan(cfg.ood_data, path, [texts[i] for i in keep], keep, len(texts), dropped)


@dataclass
class Collector:
    """The two OOD passes and their figures; off (every call a no-op) without --ood-data.

    collector = Collector.start(plan, session)
    collector.frozen_pass(plan, session, outcome)   # before the LoRA deltas are merged
    collector.lora_pass(plan, session, outcome)     # after
    report["beyond_task"] = collector.report()
    """

    ood: OodPlan | None = None
    pool: str | None = None
    reason: dict | None = None  # why there is no LM figure, or no OOD figure at all
    head: lm_head.LmHead | None = None
    encoded: object = None
    batches: list = field(default_factory=list)
    trunk_states: trunk.TrunkStates | None = None
    layers_a: np.ndarray | None = None
    final_a: dict | None = None
    layers: list = field(default_factory=list)
    lm: dict | None = None
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    @classmethod
    def start(cls, plan, session) -> Collector:
        if plan.ood is None:
            return cls()
        why = "no_lora_variant" if "B" not in plan.variants else "distributed" if plan.ctx.enabled else None
        if why:  # B's pass is what is compared; sharded passes do not gather layer states
            log.warning("out-of-domain analysis skipped (%s)", why)
            return cls(ood=plan.ood, reason={"kind": "ood_skipped", "reason": why, "detail": None})
        pool = layer_pooling(session.model)
        head, reason = None, {"kind": "lm_skipped", "reason": "encoder", "detail": None}
        if pool == "last":  # a causal decoder: its classifier reads the final hidden states the LM head reads
            head, reason = lm_head.find_lm_head(plan.base_model, session.model)
        return cls(ood=plan.ood, pool=pool, reason=reason, head=head)

    @property
    def enabled(self) -> bool:
        return self.pool is not None

    def frozen_pass(self, plan, session, outcome) -> None:
        """The frozen base over the OOD texts: pooled layer states, the trunk's output, the final hidden states."""
        if not self.enabled:
            return
        from lorafair.models.inference import length_sorted_batches, tokenize

        started = time.perf_counter()
        self.encoded = tokenize(session.tokenizer, self.ood.texts, None, max_length=plan.cfg.max_length)
        self.batches = length_sorted_batches(self.encoded.lengths, plan.cfg.batch_size)
        self.seconds["tokenize"] = time.perf_counter() - started
        self.trunk_states = self._trunk_states(session)
        recorder = self.trunk_states.recorder(session.model) if self.trunk_states else None
        capture = lm_head.FinalStates(session.head[0]) if self.head else None
        result = self._run(plan, session, "frozen base (OOD text)", lm_head.Together(recorder, capture))
        self.layers_a, self.final_a = result.layers, capture.rows if capture else None
        self._pass_record(outcome, "ood_frozen", result, 0, session)

    def _trunk_states(self, session) -> trunk.TrunkStates | None:
        """Record the shared layers' output for B's pass, unless there are none or it would not fit in memory."""
        shared = session.trunk_plan
        if shared is None or not shared.shared:
            return None
        hidden = int(session.model.config.get_text_config().hidden_size)
        need = trunk.estimated_bytes(self.encoded.lengths, hidden)
        if need > trunk.memory_budget():
            self.notes.append({"kind": "ood_trunk_too_large", "bytes": int(need)})
            return None
        return trunk.TrunkStates(shared)

    def _run(self, plan, session, desc: str, contexts: lm_head.Together):
        return session.run(
            self.encoded,
            self.batches,
            desc,
            capture_head=False,
            warmup=False,
            ctx=plan.ctx,
            layer_pool=self.pool,
            trunk=contexts if contexts.parts else None,
        )

    def _pass_record(self, outcome, kind: str, result, shared: int, session) -> None:
        seconds = float(sum(result.batch_seconds))
        self.seconds[kind.removeprefix("ood_") + "_pass"] = seconds
        total = session.trunk_plan.total if session.trunk_plan is not None else None
        record = {"kind": kind, "examples": len(self.ood.texts), "seconds": seconds}
        if kind == "ood_lora":
            record.update(shared_layers=shared, total_layers=total)
        outcome.passes.append(record)

    def lora_pass(self, plan, session, outcome) -> None:
        """The merged LoRA model over the same texts (shared layers replayed), then the figures."""
        if not self.enabled:
            return
        from lorafair.models import modeling

        shared = self.trunk_states.plan.shared if self.trunk_states is not None else 0
        replayer = self.trunk_states.replayer(session.model) if shared else None
        head_module = modeling.head_stack(session.model, plan.adapter)[0]  # the merged model's own module
        capture = lm_head.FinalStates(head_module) if self.head else None
        result = self._run(plan, session, "LoRA merged (OOD text)", lm_head.Together(replayer, capture))
        self._pass_record(outcome, "ood_lora", result, shared, session)
        self.trunk_states = None  # the recorded output is not needed any more
        started = time.perf_counter()
        with single_threaded_blas():
            records = similarity.layer_records(self.layers_a, _with_shared_layers(result.layers, self.layers_a, shared))
        self.layers = [{k: r[k] for k in ("layer", "cka", "cosine")} for r in records]
        self.seconds["layer_metrics"] = time.perf_counter() - started
        total = session.trunk_plan.total if session.trunk_plan is not None else None
        self.notes.append({"kind": "ood_shared_trunk", "shared": shared, "total": total})
        if capture is not None:
            self._next_token(plan, capture.rows)

    def _next_token(self, plan, rows_b: dict) -> None:
        """KL(base || base+LoRA) and both perplexities from the final hidden states of the two passes."""
        started = time.perf_counter()
        weight, bias = self.head.load()
        figures = lm_head.next_token_figures(
            self.final_a, rows_b, self.encoded.input_ids, weight, bias, device=plan.device, dtype=plan.dtype
        )
        self.final_a = None
        self.lm = next_token.lm_summary(*figures)
        if self.lm is None:
            self.reason = {"kind": "lm_skipped", "reason": "no_next_token", "detail": None}
        else:
            vocab = int(weight.shape[0])
            self.lm["lm_head"] = {"tensor": self.head.key, "tied": self.head.tied, "vocab_size": vocab}
            self.reason = None
        self.seconds["next_token"] = time.perf_counter() - started

    def report(self) -> dict | None:
        """report["beyond_task"]; None without --ood-data."""
        if self.ood is None:
            return None
        self.seconds["total"] = sum(v for k, v in self.seconds.items() if k != "total")
        notes = [*self.notes, {"kind": "ood_cost", "seconds": dict(self.seconds)}] if self.enabled else self.notes
        return {
            "data": self._data(),
            "pooling": self.pool,
            "layers": self.layers,
            "lm": self.lm,
            "reason": self.reason,
            "notes": notes,
            "seconds": self.seconds,
        }

    def _data(self) -> dict:
        ood, encoded = self.ood, self.encoded
        data = {
            "source": ood.spec,
            "path": str(ood.path),
            "n": len(ood.texts),
            "n_available": ood.available,
            "dropped_rows": ood.dropped,
            "indices": [int(i) for i in ood.indices],
        }
        if encoded is not None:
            data.update(
                tokens=int(encoded.lengths.sum()), truncated=int(encoded.truncated), token_ids_sha256=encoded.sha256()
            )
        return data
