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

from lorafair.names import VARIANT_IDS  # noqa: F401  (re-exported: config users import it from here)


def _default_lang() -> str:
    lang = os.environ.get("LANG") or (locale.getlocale()[0] or "")
    return "zh" if lang.lower().startswith("zh") else "en"


def opt(default, help: str, **extra):
    """A dataclass field with its argparse help attached."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class CompareConfig:
    """`lorafair compare`: the same examples and batches through B (LoRA) and A (frozen, same head)."""

    adapter: str = opt(None, "folder of the trained LoRA adapter (adapter_config.json + adapter_model.safetensors)", required=True)
    data: str = opt(None, "evaluation data: CSV/TSV/JSON(L)/Parquet file, datasets.save_to_disk folder, or builtin:NAME", required=True)
    base_model: str | None = opt(None, "base model id or folder (default: base_model_name_or_path of the adapter)")
    split: str | None = opt(None, "split of a save_to_disk DatasetDict or a builtin data set (default: test)")
    text_column: str = opt("text", "column holding the text")
    text_pair_column: str | None = opt(None, "optional column holding a second text (sentence pairs)")
    label_column: str = opt("label", "column holding the label (names or integer ids)")
    num_samples: int = opt(500, "seeded stratified subsample of the data; 0 = all examples")
    batch_size: int = opt(16, "examples per forward pass (halved automatically on CUDA out-of-memory)")
    max_length: int = opt(256, "truncate inputs to this many tokens")
    variants: str = opt("B,A,A1,R", "comma-separated variants: B (LoRA), A (frozen + LoRA head), A1 (frozen + linear probe), R (frozen + random head)")
    probe_data: str | None = opt(None, "training data for the A1 probe (default: the adapter's recorded training data, else a part of --data kept disjoint from the evaluation sample)")
    probe_samples: int = opt(2000, "at most this many probe-training examples (seeded, stratified)")
    pos_label: int = opt(1, "positive class id for binary precision/recall/F1/AUC")
    alpha: float = opt(0.05, "significance level; CIs are (1 - alpha)")
    bootstrap: int = opt(10000, "paired bootstrap resamples for the confidence intervals (0 = none)")
    lang: str = opt(_default_lang(), "report language", choices=("en", "zh"))
    output: str = opt("outputs/compare", "folder for report.json, report.md, report.html, predictions.csv")
    overwrite: bool = opt(False, "replace an existing output folder")
    seed: int = opt(0, "seed for sampling, the random head R, the probe and the bootstrap")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N", choices=None)
    dtype: str = opt("auto", "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16 or float16",
                     choices=("auto", "float32", "bfloat16", "float16"))
    quiet: bool = opt(False, "no progress bars or console tables (report files are still written)")

    def variant_list(self) -> list[str]:
        return [v.strip() for v in self.variants.split(",") if v.strip()]


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
        parser.add_argument(flag, type=base, default=f.default, help=help_text,
                            **{k: v for k, v in meta.items() if k in ("choices", "required") and v is not None})


def from_namespace(config_cls, namespace: argparse.Namespace):
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in vars(namespace).items() if k in names})
