"""Everything one comparison settles before and while loading the model: the plan and the session.

`plan_compare` checks everything a user can get wrong before any weight loads (adapter, data, evaluation
sample, device, output folder, feature cache); `setup_model` tokenises once, batches once, loads the base
once and installs the adapter's head (variant A). The variant runners (variants.py) and the sweep's passes
take the plan and the session; the recipes (recipes/compare.py, recipes/sweep.py) call these two first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorafair.config import CompareConfig, resolve_pos_label
from lorafair.core.errors import LorafairError
from lorafair.core.names import VARIANT_IDS
from lorafair.data import examples as data_mod
from lorafair.evaluation import beyond_task
from lorafair.models import distributed, modeling, trunk
from lorafair.models.inference import Encoded, PassResult, length_sorted_batches, tokenize

log = logging.getLogger(__name__)


def _resolve_assets(cfg: CompareConfig, base_model: str) -> tuple[str, Path]:
    """Built-in names (smollm2-135m, builtin:polarity-en) -> local folders/files; paths pass through."""
    from lorafair.assets import builtin as assets

    return assets.resolve_model(base_model), Path(assets.resolve_data(cfg.data, cfg.split))


def resolve_device(device: str, dtype: str):
    """(device, torch dtype, how the dtype was chosen: a record for the report)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LorafairError(f"--device {device} asked for, but no CUDA device is available")
    choice = {"dtype": dtype, "source": "option"}
    if dtype == "auto" and device.startswith("cuda"):
        choice = {"dtype": "bfloat16" if torch.cuda.is_bf16_supported() else "float32", "source": "cuda"}
    elif dtype == "auto":  # CPUs differ: bf16 is several times faster on some, slower on others; measure
        from lorafair.models import dtype_probe

        choice = dtype_probe.cpu_dtype()
    return device, getattr(torch, choice["dtype"]), choice


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
    cache_off: dict | None = None  # the unusable cache folder ({"folder", "variable", "error"}), though not --no-cache
    ood: beyond_task.OodPlan | None = None  # --ood-data: the sampled out-of-domain texts
    dtype_choice: dict | None = None  # how the dtype was chosen (models/dtype_probe.py on CPU with --dtype auto)

    @property
    def y(self) -> np.ndarray:
        return self.label_ids[self.eval_idx]


def plan_compare(cfg: CompareConfig) -> ComparePlan:
    """Read the adapter and the data, draw the evaluation sample, pick the device; fail before any load."""
    from lorafair.core import atomic

    variants = check_variants(cfg)
    if cfg.output is not None:  # None: the Python API, writing only when asked (CompareResult.write)
        atomic.check_output(cfg.output, cfg.overwrite)
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
        encoding=cfg.encoding,
    )
    label_names = _label_names(adapter, base_model, examples.labels)
    if len(label_names) != adapter.num_labels:
        raise LorafairError(
            f"the head has {adapter.num_labels} outputs but the labels are {len(label_names)}: {', '.join(label_names)}"
        )
    resolve_pos_label(cfg.pos_label, label_names)  # a --pos-label that names no class fails here, not later
    label_ids = data_mod.encode_labels(examples.labels, label_names)
    eval_idx = data_mod.stratified_sample(label_ids, cfg.num_samples, cfg.seed)
    ood = beyond_task.plan_ood(cfg)  # a bad --ood-data fails here, before any weight loads
    device, dtype, dtype_choice = resolve_device(cfg.device, cfg.dtype)
    ctx = distributed.init(device)  # under torchrun/accelerate: each rank runs a share of the batches
    modeling.check_adapter_fits(base_model, adapter)  # fail before loading any weights
    cache_off = None if cfg.no_cache or ctx.enabled else _feature_cache_problem()
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
        cache_off,
        ood,
        dtype_choice,
    )


def _feature_cache_problem() -> dict | None:
    """Whether the feature cache can be used this run, decided once: an unusable folder turns it off, not the run."""
    from lorafair.models import feature_cache

    problem = feature_cache.unusable()
    if problem:
        log.warning(
            "the feature cache folder '%s' (from %s) is not usable: %s; running without the feature cache",
            problem["folder"],
            problem["variable"],
            problem["error"],
        )
    return problem


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
