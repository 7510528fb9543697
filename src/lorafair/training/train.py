"""LoRA training of a sequence classifier with transformers' `Trainer` and peft (`lorafair train`).

    lorafair train --base-model smollm2-135m --data builtin:polarity-en --output outputs/lora_adapter

OUTPUT ends up holding `adapter_config.json`, `adapter_model.safetensors` (LoRA matrices *and* the
trained head, which peft saves as `modules_to_save` for SEQ_CLS), the tokenizer and `lorafair_run.json`
(config, label names in id order, data hashes, versions, metrics). Checkpoints are written to
OUTPUT/checkpoints while training; `--resume` continues from the last one. The final files are
assembled in a temp folder beside OUTPUT and renamed into place, so OUTPUT never holds half an adapter.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from lorafair.config import TrainConfig, add_arguments, from_namespace
from lorafair.core import atomic
from lorafair.core.errors import LorafairError
from lorafair.core.hashing import file_sha256
from lorafair.data.examples import encode_labels, label_names_from_values, load_examples, stratified_sample
from lorafair.data.run_metadata import DataRecord, RunMetadata
from lorafair.models import heads
from lorafair.models.modeling import (
    ADAPTER_CONFIG,
    HEAD_NAMES,
    ensure_pad_token,
    load_base_classifier_and_head_change,
    load_tokenizer,
)

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"  # OUTPUT/checkpoints/checkpoint-<step>, written by the Trainer
RESUME_CONFIG = "lorafair_train_config.json"  # in OUTPUT/checkpoints: what a --resume must match
# Options that may change between an interrupted run and its --resume without changing the result.
# data/base_model are compared through train_sha256/base_model_resolved, so a respelt path is fine.
_FREE_ON_RESUME = (
    "resume",
    "overwrite",
    "quiet",
    "logging_steps",
    "save_steps",
    "save_total_limit",
    "output",
    "data",
    "base_model",
    "trunk_reuse",  # where it is exact the training is the same; a forced reuse (--trunk-reuse on) is recorded
)

# LoRA targets for `--target-modules auto`: the attention projections of each architecture.
_DECODER_QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]
ATTENTION_PROJECTIONS = {
    **{
        t: _DECODER_QKVO
        for t in (
            "llama",
            "qwen2",
            "qwen3",
            "qwen2_moe",
            "qwen3_moe",
            "mistral",
            "mixtral",
            "gemma",
            "gemma2",
            "gemma3_text",
            "olmo",
            "olmo2",
            "granite",
            "smollm3",
        )
    },
    **{t: ["query", "key", "value"] for t in ("bert", "roberta", "xlm-roberta", "camembert", "electra", "ernie")},
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj"],
}


@dataclass
class TrainResult:
    """What `train_model` produced: the output folder and the in-memory trained PeftModel."""

    output_dir: Path
    model: object
    tokenizer: object
    metadata: RunMetadata = field(default_factory=RunMetadata)  # what OUTPUT/lorafair_run.json holds


def add_train_arguments(parser) -> None:
    """Add one `--kebab-case` option per TrainConfig field (help text comes from the field)."""
    add_arguments(parser, TrainConfig)


def train_config_from_args(namespace) -> TrainConfig:
    return from_namespace(TrainConfig, namespace)


def run_train(config: TrainConfig) -> Path:
    """Train, write OUTPUT and return its path; mistakes in the input raise LorafairError."""
    return train_model(config).output_dir


def default_target_modules(model) -> list[str]:
    """The attention projections of the model's architecture (LoRA targets for `auto`)."""
    model_type = getattr(model.config, "model_type", None)
    names = ATTENTION_PROJECTIONS.get(model_type)
    if names is None:
        raise LorafairError(
            f"no default LoRA targets for architecture '{model_type}' ({type(model).__name__}); pass "
            f"--target-modules with some of its linear layers: {', '.join(_linear_names(model)[:12])}"
        )
    missing = [n for n in names if n not in _linear_names(model)]
    if missing:
        raise LorafairError(f"'{model_type}' model lacks {', '.join(missing)}; pass --target-modules explicitly")
    return list(names)


def _linear_names(model) -> list[str]:
    import torch

    seen: dict[str, None] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in HEAD_NAMES:
            seen.setdefault(name.split(".")[-1], None)
    return list(seen)


def _target_modules(spec: str, model) -> list[str]:
    if spec.strip().lower() == "auto":
        return default_target_modules(model)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    available = _linear_names(model)
    unknown = [n for n in names if n not in available]
    if not names or unknown:
        raise LorafairError(
            f"--target-modules {spec!r}: {', '.join(unknown) or 'nothing given'} not among the model's linear "
            f"layers: {', '.join(available)}"
        )
    return names


def _top_layers(model, n: int) -> list[int] | None:
    """Indices of the `n` transformer layers nearest the head (None = every layer, peft's default)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    total = getattr(config, "num_hidden_layers", None)
    if n <= 0 or (total is not None and n >= total):
        return None
    if total is None:
        raise LorafairError(f"--lora-layers {n}: the model config does not say how many layers it has; use 0 (all)")
    return list(range(total - n, total))


def _use_bf16(precision: str) -> bool:
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        return cuda and torch.cuda.is_bf16_supported()
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise LorafairError("--precision bf16: this CUDA device does not support bf16; use fp32")
    return precision == "bf16"


def _resolve(spec: str, kind: str, split: str | None = None) -> str:
    """Existing paths -> absolute (the adapter must find its base later); asset names -> lorafair.assets.builtin."""
    if Path(spec).exists():
        return str(Path(spec).resolve())
    try:
        from lorafair.assets import builtin as assets
    except ImportError:  # no assets module: hub ids pass through, load_examples reports a missing file
        return spec
    return str(assets.resolve_model(spec) if kind == "model" else Path(assets.resolve_data(spec, split)).resolve())


def _data_record(spec: str, path: Path, split, config: TrainConfig, n: int) -> DataRecord:
    return DataRecord(
        spec=spec,
        path=str(path),
        split=split,
        text_column=config.text_column,
        text_pair_column=config.text_pair_column,
        label_column=config.label_column,
        encoding=config.encoding,  # so compare and the probe read this file as train did
        sha256=file_sha256(path),
        n=n,
    )


def _last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint (trainer_state.json is written last)."""
    if not folder.is_dir():
        return None
    steps = [(int(p.name.split("-")[-1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    complete = [(step, p) for step, p in steps if (p / "trainer_state.json").is_file()]
    return str(max(complete)[1]) if complete else None


def _checkpoint_to_resume(output: Path, config: TrainConfig) -> str | None:
    """Check the output folder before any work (see atomic.check_output); the checkpoint to resume from, if any."""
    hint = "pass --overwrite to replace it or --resume to continue its run"
    atomic.check_output(output, config.overwrite or config.resume, hint=hint)  # --resume continues a full folder
    if config.resume:
        last = _last_checkpoint(output / CHECKPOINTS)
        if last is None:
            if (output / ADAPTER_CONFIG).is_file():
                raise LorafairError(f"'{output}' holds a finished adapter and no checkpoint to resume; use --overwrite")
            log.warning("--resume: no checkpoint under '%s'; starting from scratch", output / CHECKPOINTS)
        return last
    return None


def _check_resume_matches(saved_file: Path, current: dict) -> None:
    if not saved_file.is_file():
        return
    saved = json.loads(saved_file.read_text(encoding="utf-8"))
    keys = sorted(set(saved) | set(current))
    # an option added since the interrupted run started is absent from its file: its default is what that run used
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    was = {k: saved.get(k, defaults.get(k)) for k in keys}
    changed = [k for k in keys if k not in _FREE_ON_RESUME and was[k] != current.get(k)]
    if changed:
        shown = "; ".join(f"{k}: {was[k]!r} -> {current.get(k)!r}" for k in changed)
        raise LorafairError(
            f"--resume with different settings than the interrupted run ({shown}); "
            "resume with the same options or start anew with --overwrite"
        )


def _encode(tokenizer, examples, label_ids, max_length: int, accepted: set) -> list[dict]:
    encoded = tokenizer(examples.texts, examples.text_pairs, truncation=True, max_length=max_length)
    keys = [k for k in encoded.keys() if k in accepted]
    return [{**{k: encoded[k][i] for k in keys}, "labels": int(label_ids[i])} for i in range(len(examples))]


def _accuracy(prediction) -> dict:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == prediction.label_ids))}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(package):
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        **{p: installed(p) for p in ("lorafair", "torch", "transformers", "peft", "accelerate", "datasets")},
    }


@dataclass
class _Splits:
    """Training and evaluation examples with label ids, plus what lorafair_run.json records about them."""

    label_names: list[str]
    train: object
    train_ids: np.ndarray
    train_record: DataRecord | None = None
    eval: object = None
    eval_ids: np.ndarray | None = None
    eval_record: DataRecord | None = None


def _load_splits(config: TrainConfig) -> _Splits:
    """Read the data; label ids = sorted unique training labels; hold out --eval-fraction unless --eval-data."""
    train_path = Path(_resolve(config.data, "data", config.split))
    examples = load_examples(train_path, split=config.split, **_read_options(config))
    label_names = label_names_from_values(examples.labels)
    if len(label_names) < 2:
        raise LorafairError(f"'{train_path}' holds a single label ({label_names[0]}); a classifier needs at least two")
    splits = _Splits(label_names, examples, encode_labels(examples.labels, label_names))
    data_seed = config.seed if config.data_seed is None else config.data_seed
    rows = np.arange(len(examples))  # training rows as indices into the file (load_examples order)
    if config.eval_data:
        _load_eval_data(config, splits)
    else:
        rows = _hold_out(config, splits, data_seed)
    available = len(splits.train)
    if 0 < config.max_train_samples < available:
        keep = stratified_sample(splits.train_ids, config.max_train_samples, data_seed)
        splits.train, splits.train_ids, rows = splits.train.subset(keep), splits.train_ids[keep], rows[keep]
    record = _data_record(config.data, train_path, config.split, config, len(splits.train))
    record.indices, record.indices_sha256 = indices_record(rows)  # same data budget: A1's probe can use these rows
    if len(splits.train) < available:
        record.subsample_of = available  # seeded (--seed) stratified; rows of load_examples order
    splits.train_record = record
    return splits


def _read_options(config: TrainConfig) -> dict:
    """How `load_examples` reads the training and evaluation data: columns and encoding."""
    return dict(
        text_column=config.text_column,
        text_pair_column=config.text_pair_column,
        label_column=config.label_column,
        encoding=config.encoding,
    )


def _load_eval_data(config: TrainConfig, splits: _Splits) -> None:
    """--eval-data: read it with the training data's label ids."""
    eval_path = Path(_resolve(config.eval_data, "data", config.eval_split or "test"))
    splits.eval = load_examples(eval_path, split=config.eval_split, **_read_options(config))
    splits.eval_ids = encode_labels(splits.eval.labels, splits.label_names)
    splits.eval_record = _data_record(config.eval_data, eval_path, config.eval_split, config, len(splits.eval))


def _hold_out(config: TrainConfig, splits: _Splits, data_seed: int) -> np.ndarray:
    """Hold out a seeded stratified --eval-fraction of the training data; returns the rows left for training."""
    examples, label_ids = splits.train, splits.train_ids
    rows = np.arange(len(examples))
    n_eval = int(round(len(examples) * config.eval_fraction))
    if 0 < n_eval < len(examples):
        held_out = stratified_sample(label_ids, n_eval, data_seed)
        rows = np.setdiff1d(rows, held_out)
        splits.eval, splits.eval_ids = examples.subset(held_out), label_ids[held_out]
        splits.train, splits.train_ids = examples.subset(rows), label_ids[rows]
        splits.eval_record = DataRecord(
            held_out_from="train_data",
            fraction=config.eval_fraction,
            seed=data_seed,
            n=len(splits.eval),
            indices=held_out.tolist(),  # rows of load_examples order
        )
    elif config.eval_fraction > 0:
        log.warning(
            "too few examples (%d) to hold out %.0f%% for evaluation; no evaluation",
            len(examples),
            100 * config.eval_fraction,
        )
    return rows


def indices_record(rows: np.ndarray) -> tuple[list[int], str]:
    """The training rows (indices into the data file) and a SHA-256 of them as int64 bytes."""
    import hashlib

    rows = np.asarray(rows, dtype=np.int64)
    return rows.tolist(), hashlib.sha256(rows.tobytes()).hexdigest()


def _training_arguments(config: TrainConfig, output: Path, *, bf16: bool, quiet: bool):
    import torch
    from transformers import TrainingArguments

    sampling = (
        {"train_sampling_strategy": "group_by_length"}  # transformers >= 5; older: group_by_length=True
        if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__
        else {"group_by_length": True}
    )
    return TrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        seed=config.seed,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        save_only_model=False,  # optimizer, scheduler and RNG state too: --resume is then exact
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="no",
        report_to="none",
        bf16=bf16,
        disable_tqdm=quiet,
        label_names=["labels"],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available(),
        **sampling,
    )


@dataclass
class _Plan:
    """What is settled before any weights load: the checked output folder, the base, the data."""

    output: Path
    resume_from: str | None
    base: str
    splits: _Splits
    resume_config: dict


@dataclass
class _Built:
    """The LoRA-wrapped model, its tokenizer and what lorafair_run.json records about the adaptation."""

    model: object
    tokenizer: object
    head_name: str | None
    targets: list[str]
    layers: list[int] | None
    accepted_inputs: set
    head_replaced: dict | None = None  # {"base_labels": K, "labels": M}: the base was saved as a K-label classifier


@dataclass
class _Datasets:
    train: list[dict]
    eval: list[dict] | None


def plan_run(config: TrainConfig) -> _Plan:
    """Check options, output folder, data and --resume consistency: every user error before any weights load."""
    output = Path(config.output)
    resume_from = _checkpoint_to_resume(output, config)
    base = _resolve(config.base_model, "model")
    splits = _load_splits(config)
    resume_config = {**asdict(config), "base_model_resolved": base, "train_sha256": splits.train_record.sha256}
    if resume_from is not None:
        _check_resume_matches(output / CHECKPOINTS / RESUME_CONFIG, resume_config)
    return _Plan(output, resume_from, base, splits, resume_config)


def build_model(config: TrainConfig, base: str, label_names: list[str]) -> _Built:
    """Base classifier with a fresh head, wrapped by peft LoRA (SEQ_CLS); both initialised from --seed."""
    import inspect

    import transformers
    from peft import LoraConfig, TaskType, get_peft_model

    transformers.set_seed(config.seed)  # the new head and the LoRA matrices are initialised from it
    tokenizer = load_tokenizer(base)
    model, head_replaced = load_base_classifier_and_head_change(base, len(label_names), label_names=label_names)
    ensure_pad_token(tokenizer, model)
    # Classifier forwards take **kwargs, so the Trainer would assume a loss already normalised by
    # num_items_in_batch; it is a plain mean (not divided by --grad-accum, times world size under DDP).
    model.accepts_loss_kwargs = False
    head_name = next((n for n in HEAD_NAMES if hasattr(model, n)), None)
    if config.head_init == "zero":  # before peft copies the head into modules_to_save
        log.info("head output layer %s initialised to zero", heads.zero_output_layer(model))
    targets = _target_modules(config.target_modules, model)
    layers = _top_layers(model, config.lora_layers)
    model.config.use_cache = False  # a classifier's training forward needs no key/value cache
    accepted = set(inspect.signature(model.forward).parameters) & {"input_ids", "attention_mask", "token_type_ids"}
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        layers_to_transform=layers,
    )
    model = get_peft_model(model, lora)
    model.peft_config["default"].base_model_name_or_path = base
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "LoRA r=%d on %s of %s; trainable parameters %d of %d; labels %s",
        config.lora_r,
        ",".join(targets),
        f"layers {layers[0]}-{layers[-1]}" if layers else "every layer",
        trainable,
        sum(p.numel() for p in model.parameters()),
        label_names,
    )
    return _Built(model, tokenizer, head_name, targets, layers, accepted, head_replaced)


def build_datasets(config: TrainConfig, built: _Built, splits: _Splits) -> _Datasets:
    """Tokenised rows with their label ids; evaluation rows sorted by length."""
    train_set = _encode(built.tokenizer, splits.train, splits.train_ids, config.max_length, built.accepted_inputs)
    eval_set = None
    if splits.eval:
        eval_set = _encode(built.tokenizer, splits.eval, splits.eval_ids, config.max_length, built.accepted_inputs)
        # evaluation batches are taken in order: sorted by length, they carry little padding
        eval_set.sort(key=lambda row: len(row["input_ids"]))
    return _Datasets(train_set, eval_set)


def _loss_log_callback():
    """A TrainerCallback that logs the losses (made here: transformers is imported only when training)."""
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
                log.info("step %d/%d: %s", state.global_step, state.max_steps, shown)

    return LossLog()


def build_trainer(
    config: TrainConfig, built: _Built, datasets: _Datasets, output: Path, callbacks=(), trainer_class=None
):
    """transformers Trainer (or `trainer_class`) over the datasets; without a progress bar the losses go to the log."""
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer

    quiet = config.quiet or not sys.stderr.isatty()
    args = _training_arguments(config, output, bf16=_use_bf16(config.precision), quiet=quiet)
    trainer = (trainer_class or Trainer)(
        model=built.model,
        args=args,
        data_collator=DataCollatorWithPadding(built.tokenizer),
        train_dataset=datasets.train,
        eval_dataset=datasets.eval,
        processing_class=built.tokenizer,
        compute_metrics=_accuracy,
        callbacks=list(callbacks),
    )
    if quiet:  # the progress bar prints the losses itself; without it, log them instead of print()
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_loss_log_callback())
    return trainer


def _prepare_checkpoints(trainer, plan: _Plan) -> None:
    """Rank 0 clears stale checkpoints (a fresh run) and records what a --resume must match."""
    trainer.accelerator.wait_for_everyone()  # every rank has checked the output folder before rank 0 writes
    if trainer.is_world_process_zero():
        checkpoints = plan.output / CHECKPOINTS
        if plan.resume_from is None and checkpoints.is_dir():
            shutil.rmtree(checkpoints)  # stale checkpoints of the run being overwritten
        if plan.resume_from is not None:
            log.info("resuming from %s", plan.resume_from)
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / RESUME_CONFIG).write_text(json.dumps(plan.resume_config, indent=2), encoding="utf-8")
    trainer.accelerator.wait_for_everyone()


def _train_and_evaluate(trainer, plan: _Plan, has_eval: bool) -> tuple[dict, dict]:
    try:
        train_metrics = dict(trainer.train(resume_from_checkpoint=plan.resume_from).metrics)
    except KeyboardInterrupt:
        log.warning(
            "interrupted; continue with the same command plus --resume (last checkpoint in %s)",
            plan.output / CHECKPOINTS,
        )
        raise
    eval_metrics = trainer.evaluate() if has_eval else {}
    return train_metrics, eval_metrics


def _run_metadata(config: TrainConfig, plan: _Plan, built: _Built, trainer, metrics: tuple[dict, dict]) -> RunMetadata:
    """lorafair_run.json: enough to know what was trained on what (compare reads labels and data from it)."""
    train_metrics, eval_metrics = metrics
    return RunMetadata(
        base_model=plan.base,
        label_names=list(plan.splits.label_names),
        head_name=built.head_name,
        head_replaced=built.head_replaced,
        target_modules=built.targets,
        layers_to_transform=built.layers,
        config=asdict(config),
        train_data=plan.splits.train_record,
        eval_data=plan.splits.eval_record,
        seed=config.seed,
        versions=_versions(),
        device=str(trainer.args.device),
        precision="bf16" if trainer.args.bf16 else "fp32",
        metrics={"train": train_metrics, "eval": {k.removeprefix("eval_"): v for k, v in eval_metrics.items()}},
        global_step=trainer.state.global_step,
        resumed_from=Path(plan.resume_from).name if plan.resume_from else None,
        log_history=trainer.state.log_history,
    )


def publish(output: Path, model, tokenizer, metadata: RunMetadata, started: float) -> None:
    """Adapter, tokenizer and lorafair_run.json into a staging folder, checkpoints moved in, renamed to OUTPUT."""
    with atomic.publish_output(output, "the adapter", carry=[CHECKPOINTS]) as staging:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        metadata.wall_time_s = round(time.perf_counter() - started, 3)
        metadata.write(staging)
    accuracy = metadata.eval_metrics.get("accuracy")
    log.info("adapter written to %s%s", output, f" (eval accuracy {accuracy:.4f})" if accuracy is not None else "")


def train_model(config: TrainConfig, callbacks=()) -> TrainResult:
    """The whole run; `callbacks` are extra transformers TrainerCallbacks (tests use them to interrupt)."""
    started = time.perf_counter()
    plan = plan_run(config)
    built = build_model(config, plan.base, plan.splits.label_names)
    datasets = build_datasets(config, built, plan.splits)
    reuse = start_trunk_reuse(config, plan, built, datasets)
    try:
        trainer = build_trainer(config, built, datasets, plan.output, callbacks, trainer_class=reuse.trainer_class())
        reuse.attach(trainer, built.model)
        _prepare_checkpoints(trainer, plan)
        metrics = _train_and_evaluate(trainer, plan, has_eval=bool(datasets.eval))
    finally:
        reuse.close()
    model = trainer.model.eval()
    metadata = _run_metadata(config, plan, built, trainer, metrics)
    metadata.trunk_reuse = reuse.summary.to_dict()
    if trainer.is_world_process_zero():
        publish(plan.output, model, built.tokenizer, metadata, started)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(plan.output, model, built.tokenizer, metadata)


def start_trunk_reuse(config: TrainConfig, plan: _Plan, built: _Built, datasets: _Datasets):
    """--trunk-reuse (training/trunk_reuse.py): the frozen layers' output recorded once, replayed every step."""
    from lorafair.training import trunk_reuse

    return trunk_reuse.start(
        config,
        built.model,
        built.layers,
        built.tokenizer,
        datasets.train,
        base_folder=plan.base,
        head_name=built.head_name,
        bf16=_use_bf16(config.precision),
    )
