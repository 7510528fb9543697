"""Run configurations as dataclasses whose fields carry their help text (written once, used by argparse).

Precedence: command-line arguments > built-in defaults below.
"""

from __future__ import annotations

import argparse
import dataclasses
import locale
import os
from dataclasses import dataclass, field
from typing import get_type_hints

from lorafair.core.encodings import UNKNOWN_ENCODING, check_encoding
from lorafair.core.errors import LorafairError
from lorafair.core.names import ALL_VARIANTS


def _default_lang() -> str:
    lang = os.environ.get("LANG") or (locale.getlocale()[0] or "")
    return "zh" if lang.lower().startswith("zh") else "en"


ENCODING_HELP = (
    "text encoding of CSV/TSV/JSON/JSONL data: auto (UTF-8, with or without BOM; a file that is not UTF-8 "
    "fails with a hint, never decoded by guess) or a Python codec name such as gbk, gb18030, big5, latin-1, cp1252"
)


def opt(default, help: str, **extra):
    """A dataclass field with its argparse help attached."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class CompareConfig:
    """`lorafair compare`: the same examples and batches through B (LoRA) and A (frozen, same head)."""

    adapter: str | list[str] = opt(
        None,
        "folder of the trained LoRA adapter (adapter_config.json + adapter_model.safetensors); "
        "repeat it, or give a folder of adapters (seed-K/, checkpoint-*), to compare "
        "several adapters of one base in one run",
        required=True,
        action="append",
    )
    data: str = opt(
        None,
        "evaluation data: CSV/TSV/JSON(L)/Parquet file, datasets.save_to_disk folder, or builtin:NAME",
        required=True,
    )
    base_model: str | None = opt(None, "base model id or folder (default: base_model_name_or_path of the adapter)")
    split: str | None = opt(None, "split of a save_to_disk DatasetDict or a builtin data set (default: test)")
    text_column: str = opt("text", "column holding the text")
    text_pair_column: str | None = opt(None, "optional column holding a second text (sentence pairs)")
    label_column: str = opt("label", "column holding the label (names or integer ids)")
    encoding: str = opt(
        "auto",
        ENCODING_HELP + " (used for --data and --probe-data; an adapter's recorded training file is read "
        "with the encoding lorafair train recorded)",
    )
    num_samples: int = opt(500, "seeded stratified subsample of the data; 0 = all examples")
    batch_size: int = opt(16, "examples per forward pass (halved automatically on CUDA out-of-memory)")
    max_length: int = opt(256, "truncate inputs to this many tokens")
    variants: str = opt(
        ALL_VARIANTS,
        "comma-separated variants: B (LoRA), A (frozen + LoRA head), A1 (frozen + linear probe), R (frozen + random head)",
    )
    probe_data: str | None = opt(
        None,
        "training data for the A1 probe (default: the adapter's recorded training data, else a part of --data kept disjoint from the evaluation sample)",
    )
    probe_samples: int = opt(2000, "at most this many probe-training examples (seeded, stratified)")
    pos_label: str | None = opt(
        None,
        "positive class for binary precision/recall/F1/AUC: a label name or id "
        "(a name wins when it is also a number; default: label id 1)",
    )
    alpha: float = opt(0.05, "significance level; CIs are (1 - alpha)")
    bootstrap: int = opt(10000, "paired bootstrap resamples for the confidence intervals (0 = none)")
    lang: str = opt(_default_lang(), "report language", choices=("en", "zh"))
    output: str = opt("outputs/compare", "folder for report.json, report.md, report.html, predictions.csv")
    overwrite: bool = opt(False, "replace an existing output folder")
    seed: int = opt(0, "seed for sampling, the random head R, the probe and the bootstrap")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N", choices=None)
    dtype: str = opt(
        "auto",
        "auto (bf16 on CUDA; on CPU bf16 only where a short probe measures it >= 1.5x faster than fp32 on matmul "
        "and attention, remembered per machine; $LORAFAIR_CPU_DTYPE=float32|bfloat16 forces it), float32, "
        "bfloat16 or float16",
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    quiet: bool = opt(False, "no progress bars or console tables (report files are still written)")
    no_analysis: bool = opt(
        False,
        "skip the layer-wise (CKA, cosine, probes) and weight-space (ΔW, intruders) "
        "analysis of where LoRA changed the features",
    )
    analysis_probe_samples: int = opt(
        250,
        "per-layer probes of A and B are fitted on at most this many A1 probe "
        "examples, which also pass through the LoRA model once (0 = all)",
    )
    no_shared_trunk: bool = opt(
        False,
        "run B through every layer even when the adapter leaves the lower layers unchanged "
        "(by default B starts from the frozen pass's output of the last unadapted layer: same logits, less work)",
    )
    no_cache: bool = opt(
        False,
        "neither read nor write the frozen-pass feature cache ($LORAFAIR_CACHE/features)",
    )
    analysis_max_dim: int = opt(
        1024,
        "count intruder dimensions only in modules whose smaller side is at most this "
        "(exact eigendecompositions; larger modules are reported as not computed)",
    )
    ood_data: str | None = opt(
        None,
        "out-of-domain text (a data file or builtin:NAME, e.g. builtin:oanc-en or builtin:news-zh; only "
        "--text-column is read, no labels): what LoRA changed beyond the task, as layer-wise CKA and cosine of "
        "A and B on it and, for decoders with a language-model head, KL(base || base+LoRA) of the next-token "
        "distributions and both perplexities",
    )
    ood_samples: int = opt(200, "seeded random sample of this many --ood-data texts (0 = all)")
    no_ood: bool = opt(False, "skip the out-of-domain analysis even when --ood-data is given (e.g. by a demo preset)")

    def __post_init__(self) -> None:
        bad = _at_least(
            self,
            batch_size=1,
            max_length=2,
            num_samples=0,
            bootstrap=0,
            probe_samples=2,
            analysis_probe_samples=0,
            analysis_max_dim=1,
            ood_samples=0,
        )
        if not 0 < self.alpha < 1:
            bad.append(f"--alpha {self.alpha} (needs 0 < alpha < 1)")
        if self.pos_label is not None:
            self.pos_label = str(self.pos_label).strip()  # an id given as int (Python callers) or a name
            if not self.pos_label:
                bad.append("--pos-label '' (needs a label name or id)")
        bad += _unknown_encoding(self.encoding)
        _raise_if(bad)

    def adapter_list(self) -> list[str]:
        """--adapter as a list (the CLI appends; Python callers may pass one path)."""
        return [self.adapter] if isinstance(self.adapter, str) else list(self.adapter or [])

    def variant_list(self) -> list[str]:
        return [v.strip() for v in self.variants.split(",") if v.strip()]


@dataclass
class TrainConfig:
    """`lorafair train`: LoRA (SEQ_CLS) on a base model; CLI args > these defaults."""

    base_model: str = opt(
        None, "base model: hub id, local folder or a lorafair asset name (e.g. smollm2-135m)", required=True
    )
    data: str = opt(
        None,
        "training data: CSV/TSV/JSON(L)/Parquet file, datasets.save_to_disk folder, or builtin:NAME",
        required=True,
    )
    eval_data: str | None = opt(None, "evaluation data (default: --eval-fraction of --data, held out)")
    eval_fraction: float = opt(
        0.1, "seeded stratified share of --data held out for evaluation when no --eval-data (0 = none)"
    )
    split: str = opt("train", "split of a save_to_disk DatasetDict or builtin data set used for training")
    eval_split: str | None = opt(None, "split of --eval-data (default: test)")
    text_column: str = opt("text", "column holding the text")
    text_pair_column: str | None = opt(None, "optional column holding a second text (sentence pairs)")
    label_column: str = opt("label", "column holding the label; label ids = sorted unique labels of the training data")
    encoding: str = opt("auto", ENCODING_HELP + " (used for --data and --eval-data; recorded in lorafair_run.json)")
    lora_r: int = opt(8, "LoRA rank")
    lora_alpha: int = opt(16, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = opt(0.05, "dropout on the LoRA input")
    head_init: str = opt(
        "random",
        "the new head's output layer: random (transformers' initialisation), zero (logits start at 0, so "
        "the first steps are not spent undoing a random head's large logits on large-norm decoder features) or "
        "probe (LP-FT, Kumar et al. 2022: a linear probe fitted on the frozen base's features of the training "
        "rows, so LoRA starts from a head that already reads the features; recorded in lorafair_run.json)",
        choices=("random", "zero", "probe"),
    )
    target_modules: str = opt("auto", "comma-separated module names to adapt, or auto (the attention projections)")
    lora_layers: int = opt(
        0,
        "adapt only the N transformer layers nearest the head (0 = every layer); the backward "
        "pass then stops below them, so a step costs much less",
    )
    trunk_reuse: str = opt(
        "auto",
        "with --lora-layers: compute the frozen layers below the LoRA layers once per training example and "
        "train the top layers on their recorded output in every epoch and --seeds run (the compare's A1 pass "
        "then finds them in the feature cache); auto = on where exact (the frozen layers apply no dropout: "
        "Qwen2, Llama), off where they do (BERT family); on = also there (not the same training then); "
        "off = never (--no-trunk-reuse)",
        choices=("auto", "on", "off"),
    )
    max_train_samples: int = opt(
        0,
        "train on a seeded stratified subsample of this many examples, drawn after "
        "the --eval-fraction hold-out (0 = all)",
    )
    epochs: float = opt(1.0, "passes over the training data")
    max_steps: int = opt(-1, "stop after this many optimizer steps, overriding --epochs (-1 = off)")
    learning_rate: float = opt(2e-4, "peak learning rate (linear decay)")
    batch_size: int = opt(16, "examples per device per step (also the evaluation batch size)")
    grad_accum: int = opt(1, "gradient accumulation steps (effective batch = batch size x this x devices)")
    max_length: int = opt(256, "truncate inputs to this many tokens")
    precision: str = opt(
        "auto",
        "auto (bf16 mixed precision on a CUDA GPU that supports it; on CPU where the dtype probe measures bf16 "
        ">= 1.5x faster, as compare's --dtype auto; else fp32), bf16 (also "
        "on CPU, through torch autocast: faster where the CPU has AVX512-BF16 or AMX) or fp32",
        choices=("auto", "bf16", "fp32"),
    )
    seed: int = opt(0, "seed for the held-out split, head and LoRA initialisation, shuffling and dropout")
    data_seed: int | None = opt(
        None,
        "seed for the held-out split and --max-train-samples only (default: --seed); "
        "`--seeds` keeps it fixed so every seed run sees the same data",
    )
    output: str = opt("outputs/lora_adapter", "folder for the adapter, tokenizer, lorafair_run.json and checkpoints/")
    save_steps: int = opt(500, "write a checkpoint to OUTPUT/checkpoints every this many steps")
    save_total_limit: int = opt(2, "keep at most this many checkpoints")
    logging_steps: int = opt(10, "log the training loss every this many steps")
    resume: bool = opt(False, "continue an interrupted run from its last checkpoint in OUTPUT/checkpoints")
    overwrite: bool = opt(False, "replace an existing, non-empty output folder")
    quiet: bool = opt(False, "no progress bar")

    def __post_init__(self) -> None:
        bad = _at_least(
            self,
            lora_r=1,
            lora_alpha=1,
            batch_size=1,
            grad_accum=1,
            max_length=2,
            save_steps=1,
            save_total_limit=1,
            logging_steps=1,
            lora_layers=0,
            max_train_samples=0,
        )
        if not 0 <= self.eval_fraction < 1:
            bad.append(f"--eval-fraction {self.eval_fraction} (needs 0 <= f < 1)")
        if not 0 <= self.lora_dropout < 1:
            bad.append(f"--lora-dropout {self.lora_dropout} (needs 0 <= p < 1)")
        if self.epochs <= 0 and self.max_steps <= 0:
            bad.append(f"--epochs {self.epochs} (needs > 0, or set --max-steps)")
        if self.learning_rate <= 0:
            bad.append(f"--learning-rate {self.learning_rate} (needs > 0)")
        bad += _unknown_encoding(self.encoding) + _not_a_choice(self)
        _raise_if(bad)
        if self.resume and self.overwrite:
            raise LorafairError(
                "--resume and --overwrite exclude each other: resume keeps the run, overwrite starts anew"
            )


def resolve_pos_label(pos_label, label_names) -> int:
    """The positive class id from --pos-label (a name, else an id), checked against the labels; default id 1."""
    if pos_label is None:
        return 1
    names = [str(name) for name in label_names]
    text = str(pos_label).strip()
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    shown = ", ".join(f"{i}={name}" for i, name in enumerate(names))
    raise LorafairError(f"--pos-label {pos_label}: no such label; the labels are {shown}")


def _at_least(cfg, **minimum) -> list[str]:
    """'--flag value (needs >= m)' for every field below its minimum."""
    return [
        f"--{name.replace('_', '-')} {getattr(cfg, name)} (needs >= {low})"
        for name, low in minimum.items()
        if getattr(cfg, name) < low
    ]


def _not_a_choice(cfg) -> list[str]:
    """'--flag value (choose a, b)' for every field with choices whose value is not one: argparse checks the CLI's,
    this the Python API's (`lorafair.train(head_init="prob")` would otherwise train with a random head)."""
    return [
        f"--{f.name.replace('_', '-')} {getattr(cfg, f.name)} (choose {', '.join(f.metadata['choices'])})"
        for f in dataclasses.fields(cfg)
        if f.metadata.get("choices") and getattr(cfg, f.name) not in f.metadata["choices"]
    ]


def _unknown_encoding(encoding: str) -> list[str]:
    return [] if check_encoding(encoding) else [f"--encoding {encoding} ({UNKNOWN_ENCODING})"]


def _raise_if(bad: list[str]) -> None:
    if bad:
        raise LorafairError(f"invalid option value{'s' if len(bad) > 1 else ''}: {'; '.join(bad)}")


def add_arguments(parser: argparse.ArgumentParser, config_cls) -> None:
    """One `--kebab-case` option per dataclass field, typed and documented from the field."""
    hints = get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        meta = dict(f.metadata)
        flag = "--" + f.name.replace("_", "-")
        help_text = meta.pop("help", "")
        kind = hints[f.name]
        if kind is bool:
            parser.add_argument(flag, action="store_true", default=f.default, help=help_text)
            continue
        base = next((t for t in (int, float, str) if kind is t or (t.__name__ in str(kind))), str)
        if f.default is not None and not meta.get("required"):
            help_text += f" (default: {f.default})"
        parser.add_argument(
            flag,
            type=base,
            default=f.default,
            help=help_text,
            **{k: v for k, v in meta.items() if k in ("choices", "required", "action") and v is not None},
        )


def from_namespace(config_cls, namespace: argparse.Namespace):
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in vars(namespace).items() if k in names})
