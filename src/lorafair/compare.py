"""Orchestrates one fair comparison and returns the report dict (report.json is its serialisation).

    lorafair compare --adapter outputs/lora_adapter --data builtin:polarity-en --num-samples 500

Recipe, torchtune-style: `plan_compare` checks everything a user can get wrong before any weight loads;
`setup_model` loads the base once and installs the adapter's head (A); one runner per variant returns its
logits, head hash and speed; `build_report` turns them into the report dict. The order keeps peak memory
at one model plus the LoRA deltas: one frozen pass (A's logits and the pooled features that R and A1
reuse) -> merge the LoRA deltas in place (B) -> one pass.
"""

from __future__ import annotations

import gc
import logging
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lorafair import analysis_run, distributed, fidelity, frozen_pass, heads, modeling, trunk
from lorafair import data as data_mod
from lorafair.config import CompareConfig, resolve_pos_label
from lorafair.errors import LorafairError
from lorafair.inference import Encoded, PassResult, length_sorted_batches, run_pass, softmax, tokenize
from lorafair.names import DELTAS, FROZEN_VARIANTS, VARIANT_IDS, VARIANT_NAMES
from lorafair.peak_memory import peak_rss_bytes

log = logging.getLogger(__name__)


def _resolve_assets(cfg: CompareConfig, base_model: str) -> tuple[str, Path]:
    """Built-in names (smollm2-135m, builtin:polarity-en) -> local folders/files; paths pass through."""
    from lorafair import assets

    return assets.resolve_model(base_model), Path(assets.resolve_data(cfg.data, cfg.split))


def resolve_device(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LorafairError(f"--device {device} asked for, but no CUDA device is available")
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    return device, getattr(torch, dtype)


def check_variants(cfg: CompareConfig) -> list[str]:
    variants = cfg.variant_list()
    unknown = [v for v in variants if v not in VARIANT_IDS]
    if unknown or not variants:
        raise LorafairError(
            f"unknown variant(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(VARIANT_IDS)}"
        )
    return [v for v in VARIANT_IDS if v in variants]


def _label_names(adapter: modeling.Adapter, base_model: str, raw_labels) -> list[str]:
    """Run metadata > the base/adapter config's id2label (if not the LABEL_i default) > sorted labels in the data."""
    if adapter.label_names:
        return list(adapter.label_names)
    try:
        from transformers import AutoConfig

        id2label = AutoConfig.from_pretrained(base_model).id2label or {}
        names = [id2label[i] for i in sorted(id2label)]
        if len(names) == adapter.num_labels and names != [f"LABEL_{i}" for i in range(len(names))]:
            return [str(n) for n in names]
    except Exception:  # no config to read: fall back to the data
        pass
    return data_mod.label_names_from_values(raw_labels)


# ---------------------------------------------------------------------------------------------- the plan
@dataclass
class ComparePlan:
    """Everything decided before any weight loads: adapter, data, evaluation sample, device."""

    cfg: CompareConfig
    variants: list[str]
    adapter: modeling.Adapter
    base_model: str
    data_path: Path
    examples: data_mod.Examples
    label_names: list[str]
    label_ids: np.ndarray
    eval_idx: np.ndarray
    device: str
    dtype: object
    ctx: distributed.Context

    @property
    def y(self) -> np.ndarray:
        return self.label_ids[self.eval_idx]


def plan_compare(cfg: CompareConfig) -> ComparePlan:
    """Read the adapter and the data, draw the evaluation sample, pick the device; fail before any load."""
    from lorafair import report_write

    variants = check_variants(cfg)
    report_write.check_output_dir(cfg.output, cfg.overwrite)
    adapter = modeling.read_adapter(cfg.adapter)
    base_model = cfg.base_model or adapter.base_model
    if not base_model:
        raise LorafairError("the adapter does not name its base model (base_model_name_or_path); pass --base-model")
    base_model, data_path = _resolve_assets(cfg, base_model)
    examples = data_mod.load_examples(
        data_path,
        split=cfg.split,
        text_column=cfg.text_column,
        text_pair_column=cfg.text_pair_column,
        label_column=cfg.label_column,
    )
    label_names = _label_names(adapter, base_model, examples.labels)
    if len(label_names) != adapter.num_labels:
        raise LorafairError(
            f"the head has {adapter.num_labels} outputs but the labels are {len(label_names)}: {', '.join(label_names)}"
        )
    resolve_pos_label(cfg.pos_label, label_names)  # a --pos-label that names no class fails here, not later
    label_ids = data_mod.encode_labels(examples.labels, label_names)
    eval_idx = data_mod.stratified_sample(label_ids, cfg.num_samples, cfg.seed)
    device, dtype = resolve_device(cfg.device, cfg.dtype)
    ctx = distributed.init(device)  # under torchrun/accelerate: each rank runs a share of the batches
    modeling.check_adapter_fits(base_model, adapter)  # fail before loading any weights
    return ComparePlan(
        cfg,
        variants,
        adapter,
        base_model,
        data_path,
        examples,
        label_names,
        label_ids,
        eval_idx,
        ctx.device(device),
        dtype,
        ctx,
    )


# ------------------------------------------------------------------------------------- model and inputs
@dataclass
class Session:
    """The one loaded model (A until `run_lora` merges B into it) and the shared tokenised batches."""

    model: object
    head: list  # the head stack's modules: their input, pooled, is the features of A1 and R
    head_hash_a: str
    tokenizer: object
    encoded: Encoded
    batches: list
    pass_kw: dict
    trunk_plan: trunk.TrunkPlan | None = None  # layers B shares with the frozen pass (see trunk.py)
    trunk_eval: trunk.TrunkStates | None = None  # their output on the evaluation set, once recorded
    trunk_probe: trunk.TrunkStates | None = None  # ... on the analysis subset of the probe data
    weights_key: str | None = None  # fingerprint of the frozen weights outside the head (feature cache key)

    def run(
        self,
        encoded: Encoded,
        batches,
        desc: str,
        *,
        capture_head: bool = True,
        warmup: bool = True,
        ctx: distributed.Context,
        layer_pool: str | None = None,
        trunk=None,
    ) -> PassResult:
        return ctx.run_pass(
            self.model,
            encoded,
            batches,
            head=self.head if capture_head else None,
            warmup=warmup,
            desc=desc,
            layer_pool=layer_pool,
            trunk=trunk,
            **self.pass_kw,
        )


def setup_model(plan: ComparePlan) -> Session:
    """Tokenise once, batch once, load the base once and install the adapter's head (variant A)."""
    cfg = plan.cfg
    if cfg.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    evaluation = plan.examples.subset(plan.eval_idx)
    tokenizer = modeling.load_tokenizer(plan.adapter.path, plan.base_model)
    encoded = tokenize(tokenizer, evaluation.texts, evaluation.text_pairs, max_length=cfg.max_length)
    batches = length_sorted_batches(encoded.lengths, cfg.batch_size)
    pass_kw = dict(
        pad_token_id=tokenizer.pad_token_id, padding_side=tokenizer.padding_side, device=plan.device, quiet=cfg.quiet
    )
    model = modeling.load_base_classifier(
        plan.base_model,
        plan.adapter.num_labels,
        dtype=plan.dtype,
        device=plan.device,
        label_names=plan.label_names,
        adapter=plan.adapter,
    )
    modeling.ensure_pad_token(tokenizer, model)
    head_hash_a = modeling.install_head(model, plan.adapter)
    session = Session(
        model, modeling.head_stack(model, plan.adapter), head_hash_a, tokenizer, encoded, batches, pass_kw
    )
    session.trunk_plan = trunk.plan_trunk(model, plan.adapter.lora, enabled=not cfg.no_shared_trunk)
    return session


# ------------------------------------------------------------------------------------- variant runners
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


def run_frozen(plan: ComparePlan, session: Session, outcome: Outcome) -> PassResult:
    """One frozen pass over the evaluation set: A's logits and the pooled features of A1 and R."""
    frozen, session.trunk_eval, cached = frozen_pass.run(
        plan, session, outcome, session.encoded, session.batches, "frozen base (A)", record=True
    )
    outcome.analysis.frozen_eval(frozen)
    outcome.passes.append(
        frozen_pass.entry("frozen base, evaluation set (serves A, A1, R)", len(plan.eval_idx), frozen, cached)
    )
    outcome.feature_pooling = frozen.feature_pooling
    if {"A1", "R"} & set(plan.variants):  # they are only fair on exactly what A's head consumed: prove it
        heads.check_features_reproduce_head(
            session.model, _stack_names(plan, session), frozen.features, frozen.logits, frozen.feature_pooling
        )
    return frozen


def _stack_names(plan: ComparePlan, session: Session) -> list[str]:
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
        for name, module in zip(_stack_names(plan, session), fresh)
        for key, param in module.named_parameters()
    }
    return VariantResult(logits.float().numpy(), modeling.tensor_sha256(tensors))


def _probe_examples(plan: ComparePlan):
    """Training data for A1 and a sentence saying where it came from; never the evaluation examples."""
    cfg, adapter = plan.cfg, plan.adapter
    meta = (adapter.run_metadata or {}).get("train_data") or {}
    source, columns = None, {}
    if cfg.probe_data:
        source, columns = cfg.probe_data, {}
    elif meta.get("path") and Path(meta["path"]).exists():
        source = meta["path"]
        columns = {k: meta[k] for k in ("text_column", "text_pair_column", "label_column", "split") if meta.get(k)}
    rows = None if cfg.probe_data or source is None else _recorded_training_rows(meta, source)
    if source is not None and Path(source).resolve() == Path(plan.data_path).resolve():
        if rows is None:
            source = None  # the evaluation file itself: fall back to its part outside the evaluation sample
        else:  # same data budget, but never an evaluation example
            rows = np.setdiff1d(rows, plan.eval_idx)
    if source is not None:
        probe = data_mod.load_examples(
            source,
            split=columns.get("split"),
            text_column=columns.get("text_column", cfg.text_column),
            text_pair_column=columns.get("text_pair_column", cfg.text_pair_column),
            label_column=columns.get("label_column", cfg.label_column),
        )
        ids = data_mod.encode_labels(probe.labels, plan.label_names)
        if rows is not None:
            return _same_budget_probe(probe, ids, rows, cfg, source, len(meta["indices"]))
        keep = data_mod.stratified_sample(ids, cfg.probe_samples, cfg.seed)
        origin = "--probe-data" if cfg.probe_data else "the adapter's recorded training data"
        return probe.subset(keep), ids[keep], f"{origin} ({source}, {len(keep)} examples)"
    keep = data_mod.split_off(plan.label_ids, plan.eval_idx, cfg.probe_samples, cfg.seed + 1)
    counts = np.bincount(plan.label_ids[keep], minlength=len(plan.label_names)) if len(keep) else np.zeros(1)
    if counts.min() < 2:  # cross-validating the probe needs two examples of every class
        return (
            None,
            None,
            (
                "too little data beside the evaluation sample (need 2 per class): A1 skipped "
                "(pass --probe-data or a smaller --num-samples)"
            ),
        )
    return (
        plan.examples.subset(keep),
        plan.label_ids[keep],
        f"{len(keep)} examples of {cfg.data} kept disjoint from the evaluation sample",
    )


def _recorded_training_rows(meta: dict, source) -> np.ndarray | None:
    """The rows `lorafair train` trained on (indices into its file), if recorded and the file is unchanged."""
    if meta.get("indices") is None or meta.get("sha256") != data_mod.file_sha256(source):
        return None
    return np.asarray(meta["indices"], dtype=np.int64)


def _same_budget_probe(probe, ids, rows, cfg: CompareConfig, source, n_trained: int):
    """A1 on the adapter's own training examples (same data budget); --probe-samples caps them, stratified."""
    if len(rows) > cfg.probe_samples > 0:
        rows = rows[data_mod.stratified_sample(ids[rows], cfg.probe_samples, cfg.seed)]
    if len(rows) == n_trained:
        note = f"probe trained on the adapter's {len(rows)} training examples ({source})"
    else:
        note = (
            f"probe trained on {len(rows)} of the adapter's {n_trained} training examples ({source}; "
            "--probe-samples or the evaluation sample left the others out)"
        )
    return probe.subset(rows), ids[rows], note


def run_variant_a1(plan: ComparePlan, session: Session, frozen: PassResult, outcome: Outcome) -> VariantResult | None:
    """A1: a linear probe fitted on a frozen pass over the probe data, applied to the evaluation features."""
    import torch

    from lorafair.probe import fit_linear_probe

    probe_ex, probe_y, probe_note = _probe_examples(plan)
    outcome.notes.append(f"A1 probe data: {probe_note}")
    if probe_ex is None:
        return None
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
    )
    outcome.passes.append(
        frozen_pass.entry("frozen base, probe-training set (A1 only)", len(probe_y), probe_pass, cached)
    )
    probe = fit_linear_probe(probe_pass.features, probe_y, plan.adapter.num_labels, seed=cfg.seed)
    outcome.notes.append(f"A1 regularisation C = {probe.C:.4g} (cross-validated accuracy {probe.cv_accuracy:.3f})")
    outcome.analysis.probe_data(probe_enc, probe_y, probe_pass, probe.C)
    head_hash = modeling.tensor_sha256(
        {
            "weight": torch.from_numpy(np.ascontiguousarray(probe.weight)),
            "bias": torch.from_numpy(np.ascontiguousarray(probe.bias)),
        }
    )
    return VariantResult(probe.logits(frozen.features), head_hash)


def run_variant_b(plan: ComparePlan, session: Session, outcome: Outcome) -> VariantResult:
    """B: merge the LoRA deltas into the loaded model in place (the frozen weights are not needed any more).

    The unmerged LoRA model first runs a few whole batches, so that the report can show the merged
    (timed) B predicts like the model that was trained.
    """
    outcome.analysis.weights(session.model, plan.adapter)  # ΔW against the base weights, before they change
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
    outcome.passes.append(
        {
            "what": "LoRA unmerged model, merge-fidelity check (B)",
            "examples": len(idx),
            "seconds": float(sum(unmerged.batch_seconds)),
        }
    )
    shared = session.trunk_plan.shared if session.trunk_eval is not None else 0
    lora_pass = session.run(
        session.encoded,
        session.batches,
        "LoRA merged (B)",
        capture_head=False,
        ctx=plan.ctx,
        layer_pool=outcome.analysis.pool,
        trunk=session.trunk_eval.replayer(session.model) if shared else None,
    )
    outcome.passes.append(_lora_pass_entry("evaluation set (B)", len(plan.eval_idx), session.trunk_plan, shared))
    outcome.passes[-1]["seconds"] = float(sum(lora_pass.batch_seconds))
    outcome.analysis.lora_eval(lora_pass, shared)
    outcome.analysis.lora_probe(
        lambda enc, bat, keep: session.run(
            enc,
            bat,
            "LoRA merged (probe data, analysis)",
            capture_head=False,
            warmup=False,
            ctx=plan.ctx,
            layer_pool=outcome.analysis.pool,
            trunk=session.trunk_probe.replayer(session.model, keep) if session.trunk_probe is not None else None,
        ),
        session.trunk_plan.shared if session.trunk_probe is not None else 0,
    )
    outcome.fidelity = fidelity.measure(
        unmerged.logits[idx],
        lora_pass.logits[idx],
        merge_dtype="float32",
        model_dtype=str(plan.dtype).replace("torch.", ""),
    )
    return VariantResult(lora_pass.logits, head_hash, lora_pass.speed(len(plan.eval_idx)))


def _lora_pass_entry(what: str, examples: int, shared_plan: trunk.TrunkPlan | None, shared: int) -> dict:
    entry = {"what": f"LoRA merged model, {what}", "examples": examples, "shared_layers": shared}
    if shared:
        entry["what"] += (
            f": layers {shared}-{shared_plan.total - 1} only, 0-{shared - 1} taken from the frozen pass (shared trunk)"
        )
    return entry


def _trunk_note(session: Session) -> str:
    shared_plan = session.trunk_plan
    if shared_plan.shared and session.trunk_eval is None:
        return "no layers shared: the frozen pass came from the feature cache, so B ran every layer"
    return shared_plan.describe()


def run_variants(plan: ComparePlan, session: Session) -> Outcome:
    """Frozen variants first (they share one pass), then B, which changes the weights in place."""
    outcome, wanted = Outcome(), set(plan.variants)
    outcome.analysis = analysis_run.Collector.start(
        plan.cfg, plan.variants, session.model, distributed=plan.ctx.enabled
    )
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
    if "B" in wanted:
        outcome.results["B"] = run_variant_b(plan, session, outcome)
        outcome.notes.append(f"B's pass: {_trunk_note(session)}")
    return outcome


# ------------------------------------------------------------------------------------------- reporting
@dataclass
class Comparison:
    """The report dict plus what predictions.csv is written from."""

    report: dict
    probs: dict
    labels: np.ndarray


def run_compare(cfg: CompareConfig) -> Comparison:
    """Evaluate the requested variants on identical batches and build the report dict."""
    clock = [("start", time.perf_counter())]
    plan = plan_compare(cfg)
    clock.append(("plan", time.perf_counter()))  # adapter, data, sampling, device
    session = setup_model(plan)
    clock.append(("load", time.perf_counter()))  # tokenising, base load, head install
    outcome = run_variants(plan, session)
    clock.append(("variants", time.perf_counter()))  # every forward pass, probe fits, analysis
    token_sha, token_seconds = session.encoded.sha256(), session.encoded.seconds
    truncated = session.encoded.truncated
    head = head_section(plan, session, outcome)
    del session  # the weights are not needed for the report: keep them out of its peak memory
    gc.collect()
    probs = {v: softmax(outcome.results[v].logits) for v in plan.variants if v in outcome.results}
    if not plan.ctx.is_main:  # every rank holds the same gathered results; rank 0 alone reports
        return Comparison({}, probs, plan.y)
    from lorafair.report_build import ReportInput, build_report

    report = build_report(
        ReportInput(
            cfg=cfg,
            variants=list(probs),
            y=plan.y,
            probs=probs,
            heads={v: r.head_sha256 for v, r in outcome.results.items()},
            speed={v: r.speed for v, r in outcome.results.items() if r.speed is not None},
            data=data_info(plan, token_sha, token_seconds, truncated),
            environment=environment_info(plan),
            names=VARIANT_NAMES[cfg.lang],
            deltas=DELTAS,
            passes=outcome.passes,
            notes=outcome.notes,
            head_name=plan.adapter.head_name,
            head=head,
            fidelity=outcome.fidelity,
        )
    )
    if outcome.analysis.enabled:
        report["analysis"] = outcome.analysis.report(plan.y)
    clock.append(("report", time.perf_counter()))  # statistics, bootstrap, the report dict
    report["timing"] = _timing(clock, outcome.passes)
    return Comparison(report, probs, plan.y)


def _timing(clock: list, passes: list) -> dict:
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
    features = (
        heads.features_description(model, _stack_names(plan, session), outcome.feature_pooling)
        if outcome.feature_pooling
        else None
    )  # None: no frozen pass ran (B only)
    return {
        "modules": heads.in_model_order(model, adapter.head_modules),
        "tensors": sorted(adapter.head),
        "sha256": session.head_hash_a,
        "features": features,
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
        "peak_rss_bytes": peak_rss_bytes(),  # VmHWM: this process's own peak, however launched
        "world_size": plan.ctx.world_size,
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
