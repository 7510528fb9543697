"""`lorafair demo`: train a LoRA classifier on the built-in polarity data, then compare it, end to end.

    make demo                        # fresh clone: venv + install, then `lorafair demo` (SmolLM2-135M)
    lorafair demo --preset fast      # MiniLM-L6 (BERT)

OUTPUT (default `outputs/demo`) ends up holding
    adapter/   what `lorafair train` writes: the LoRA adapter with its head, tokenizer, lorafair_run.json
    report/    what `lorafair compare` writes: report.json, report.md, report.html, predictions.csv, flips.csv
The same two steps by hand (default preset):
    lorafair train --base-model smollm2-135m --data builtin:polarity-en:train \
        --eval-data builtin:polarity-en:validation --max-train-samples 2000 --lora-layers 12 \
        --target-modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --lora-r 16 --lora-alpha 32 \
        --learning-rate 2e-3 --max-length 64 --output outputs/demo/adapter
    lorafair compare --adapter outputs/demo/adapter --data builtin:polarity-en:test --num-samples 500 \
        --probe-samples 1000 --max-length 64 --ood-data builtin:oanc-en --output outputs/demo/report

Measured times and accuracies of every preset: README.md ("make demo", "Status of the Qwen demo presets").
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lorafair.core import atomic
from lorafair.core.errors import LorafairError
from lorafair.core.names import ALL_VARIANTS

log = logging.getLogger(__name__)

ADAPTER_DIR, REPORT_DIR = "adapter", "report"  # inside --output


@dataclass(frozen=True)
class Preset:
    """Everything the demo chooses. Hyperparameters were chosen on the validation split only."""

    base_model: str
    lora_layers: int  # LoRA on the N layers nearest the head: the backward pass stops below them
    target_modules: str
    lora_r: int
    lora_alpha: int
    learning_rate: float
    batch_size: int
    epochs: float
    max_train_samples: int  # seeded stratified subsample of the 3,000 training sentences
    max_length: int  # polarity sentences: median 24 tokens, 99th percentile 55, longest 73
    probe_samples: int  # A1 probe training examples (from the adapter's training data)
    train_data: str = "builtin:polarity-en:train"
    eval_data: str | None = "builtin:polarity-en:validation"  # None: no evaluation after training (time)
    test_data: str = "builtin:polarity-en:test"
    num_samples: int = 500  # test sentences compared
    bootstrap: int = 10000
    seed: int = 0
    precision: str = "auto"  # training: bf16 autocast where chosen (this CPU has AVX512-BF16), else fp32
    compare_dtype: str = "auto"  # the comparison's weights: auto = fp32 on CPU
    head_init: str = "random"  # the new head's output layer: random (transformers') or zero
    lang: str | None = None  # console language when --lang is not given (None: from the locale)
    ood_data: str | None = (
        "builtin:oanc-en"  # out-of-domain text: what LoRA changed beyond the task (news, not reviews)
    )
    ood_samples: int = 200  # OOD texts compared (seeded sample)


# Real pretrained Qwen2.5 (instruction-tuned coder variants, Apache-2.0: stand-ins for the base model) on the
# Chinese reviews, with the seed's Chinese console. Chosen on a 500-review stratified subset of the validation
# split only (seed 0; 2,000 training reviews, top 8 of 24 layers, all projections r16 alpha 32, batch 16,
# 1 epoch, fp32); B's validation accuracy (loss), training time on the idle machine:
#   max length 128, random head: lr 5e-4 0.784 (0.474), lr 2e-4 0.790 (0.490), training ~1,190 s
#   max length 64 (23% of reviews cut; 21% fewer tokens), lr 2e-4: random head 0.780 (0.496), 893 s;
#     zero head 0.800 (0.442), 881 s; zero head, lr 5e-4: 0.816 (0.421), 913 s (chosen)
# A random head on Qwen's large-norm last-token features starts at loss 2.7 and spends ~50 of the 125 steps
# above ln 2 undoing its own logits; a zero output layer starts at ln 2 (`--head-init zero`). The lr
# 1e-3 (random head, 128 tokens) reached 0.730 on test. These settings were chosen in fp32. bf16 is measured,
# not assumed (precision/dtype auto: models/dtype_probe.py): on an AVX2-only CPU (AMD EPYC Zen 3) a bf16 forward
# of the 0.5B ran 6x slower than fp32 (16 x 48 tokens: 36.6 s vs 6.0 s), so auto keeps fp32 there; on a CPU
# with AVX512-BF16 auto trains under bf16 autocast and compares in bf16 (README: its time and accuracy). The
# demo skips the validation pass after training (eval_data None: ~2.5 min of the 25-minute budget); the A1 probe
# uses 500 of the adapter's training reviews.
_QWEN_DATA = {
    "train_data": "builtin:sentiment-zh:train",
    "eval_data": None,
    "test_data": "builtin:sentiment-zh:test",
    "lang": "zh",
    "ood_data": "builtin:news-zh",  # People's Daily 1998 news: another domain than the product reviews
}
_ALL_PROJECTIONS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
QWEN_PRESETS = {
    "qwen": Preset(
        base_model="qwen2.5-coder-0.5b",
        lora_layers=8,  # of 24: layers 0-15 are shared by A and B in the comparison (see trunk.py)
        target_modules=_ALL_PROJECTIONS,
        lora_r=16,
        lora_alpha=32,
        learning_rate=5e-4,
        batch_size=16,
        epochs=1.0,
        max_train_samples=2000,
        max_length=64,  # reviews: median 30 tokens, 77% fit; 128 tokens (95th pct 126) cost 1.35x the time
        probe_samples=500,
        precision="auto",  # bf16 autocast only where the dtype probe measures it faster
        head_init="zero",
        **_QWEN_DATA,
    ),
    "qwen-1.5b": Preset(
        base_model="qwen2.5-coder-1.5b",
        # Sized for <= 60 min on 2 fp32 cores (an AVX2-only CPU: no fast bf16), not tuned on the 1.5B (a run is
        # ~40 min): the 0.5B's validated choices (zero head, lr 5e-4, 64 tokens), a training step costing ~3.5x
        # the 0.5B's, so about half its steps (960 reviews, 60 steps); the top 6 of 28 layers, so the
        # comparison shares layers 0-21 between A and B; 300 probe reviews (the probe pass is the compare's largest).
        lora_layers=6,
        target_modules=_ALL_PROJECTIONS,
        lora_r=16,
        lora_alpha=32,
        learning_rate=5e-4,
        batch_size=16,
        epochs=1.0,
        max_train_samples=960,
        max_length=64,
        probe_samples=300,
        precision="auto",  # bf16 autocast only where the dtype probe measures it faster
        head_init="zero",
        **_QWEN_DATA,
    ),
}

# Chosen on the validation split (500 sentences) only, seed 0, batch 16, max length 64; B's validation accuracy
# per setting tried (test accuracy looked at once, for the chosen settings only):
#   SmolLM2, 2,000 examples, 1 epoch: top 8 layers, q/k/v/o r8, lr 1e-3 0.770; + MLP projections 0.780;
#     q/k/v/o lr 2e-3 0.784; top 12 layers q/k/v/o r8 lr 2e-3 0.816; top 8 layers all projections r16 0.812;
#     top 12 layers all projections r16 lr 2e-3: 0.822 (chosen; bf16 autocast 0.816, 15% faster);
#     top 8 layers q/k/v/o, all 3,000 examples: 0.818 but 1.5x the training time.
#   MiniLM, all 3,000 examples, q/k/v: r8 lr 1e-3 0.792, lr 2e-3 0.800; r16 lr 2e-3: 0.814 (chosen);
#     2 epochs: r8 lr 1e-3 0.810, lr 2e-3 0.812, lr 5e-4 0.806, r16 lr 1e-3 0.814; 3 epochs r8 lr 5e-4 0.834
#     (3x the training time); LoRA also on every `dense` layer (r16, lr 2e-3) diverged: 0.500.
# Test accuracy of B (500 sentences): default 0.840, fast 0.794.
PRESETS = {
    "default": Preset(
        base_model="smollm2-135m",
        lora_layers=12,  # of 30
        target_modules="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        lora_r=16,
        lora_alpha=32,
        learning_rate=2e-3,
        batch_size=16,
        epochs=1.0,
        max_train_samples=2000,
        max_length=64,
        probe_samples=1000,
    ),
    **QWEN_PRESETS,
    "fast": Preset(
        base_model="minilm-l6",
        lora_layers=0,
        target_modules="auto",
        lora_r=16,
        lora_alpha=32,
        learning_rate=2e-3,
        batch_size=16,
        epochs=1.0,
        max_train_samples=0,
        max_length=64,
        probe_samples=1000,
    ),
}


def _prefer_passive_omp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (must happen before torch is imported).

    On a CPU shared with other processes, spinning threads fight them for the cores: measured on
    2 cores at load ~3.5, a SmolLM2 forward+backward (16 x 32 tokens) took 6-28 s with the default policy
    and 3.2 s with PASSIVE (idle machine: 1.9 s vs 2.2 s).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass
class DemoRun:
    """What the demo trained, compared and wrote, and how long each step took."""

    trained: object  # lorafair.training.train.TrainResult
    comparison: object  # lorafair.recipes.compare.Comparison
    compare_config: object  # the CompareConfig of the comparison
    report_dir: Path
    train_seconds: float
    compare_seconds: float

    def timing_line(self) -> str:
        return _timing_line(self.trained.metadata, self.comparison.report, self.train_seconds, self.compare_seconds)


def run_demo(preset: str, output: str, overwrite: bool, quiet: bool, lang: str | None) -> DemoRun:
    """Train on the preset's training data, compare on its test data, write OUTPUT/adapter and OUTPUT/report."""
    if preset not in PRESETS:
        raise LorafairError(f"unknown demo preset {preset!r}; choose from {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    out = atomic.check_output(output, overwrite, what="demo output")  # before training, not after it
    _prefer_passive_omp()

    from lorafair.recipes.compare import run_compare
    from lorafair.report.write import write_outputs
    from lorafair.training.train import train_model

    started = time.perf_counter()
    log.info("demo preset '%s': training LoRA on %s (%s)", preset, chosen.base_model, chosen.train_data)
    trained = train_model(train_config(chosen, out / ADAPTER_DIR, overwrite, quiet))
    trained_at = time.perf_counter()

    log.info("comparing B, A, A1, R on %d sentences of %s", chosen.num_samples, chosen.test_data)
    compare_cfg = compare_config(chosen, trained.output_dir, out / REPORT_DIR, overwrite, quiet, lang)
    result = run_compare(compare_cfg)
    report_dir = write_outputs(result.report, result.probs, result.labels, compare_cfg.output, overwrite)
    finished = time.perf_counter()
    return DemoRun(trained, result, compare_cfg, report_dir, trained_at - started, finished - trained_at)


def train_config(chosen: Preset, output, overwrite: bool, quiet: bool):
    """The `lorafair train` options of a preset (a TrainConfig)."""
    from lorafair.config import TrainConfig

    return TrainConfig(
        base_model=chosen.base_model,
        data=chosen.train_data,
        eval_data=chosen.eval_data,
        eval_fraction=TrainConfig.eval_fraction if chosen.eval_data else 0.0,  # no eval data: no hold-out
        max_train_samples=chosen.max_train_samples,
        lora_layers=chosen.lora_layers,
        target_modules=chosen.target_modules,
        lora_r=chosen.lora_r,
        lora_alpha=chosen.lora_alpha,
        learning_rate=chosen.learning_rate,
        batch_size=chosen.batch_size,
        epochs=chosen.epochs,
        max_length=chosen.max_length,
        seed=chosen.seed,
        precision=chosen.precision,
        head_init=chosen.head_init,
        output=str(output),
        overwrite=overwrite,
        quiet=quiet,
    )


def compare_config(chosen: Preset, adapter, output, overwrite: bool, quiet: bool, lang: str | None):
    """The `lorafair compare` options of a preset for the adapter it trained (a CompareConfig)."""
    from lorafair.config import CompareConfig

    return CompareConfig(
        adapter=str(adapter),
        data=chosen.test_data,
        num_samples=chosen.num_samples,
        variants=ALL_VARIANTS,
        probe_samples=chosen.probe_samples,
        max_length=chosen.max_length,
        ood_data=chosen.ood_data,
        ood_samples=chosen.ood_samples,
        bootstrap=chosen.bootstrap,
        seed=chosen.seed,
        dtype=chosen.compare_dtype,
        output=str(output),
        lang=lang or chosen.lang or CompareConfig.lang,
        overwrite=overwrite,
        quiet=quiet,
    )


def _timing_line(metadata, report: dict, train_s: float, compare_s: float) -> str:
    """Wall time per phase, from what training (its RunMetadata) and the report recorded."""
    fit = metadata.train_metrics.get("train_runtime")
    evaluation = metadata.eval_metrics
    parts = [
        f"train {train_s:.0f} s"
        + (
            f" (fit {fit:.0f} s, validation accuracy {evaluation['accuracy']:.3f} in {evaluation['runtime']:.0f} s)"
            if fit is not None and "accuracy" in evaluation and "runtime" in evaluation
            else ""
        )
    ]
    names = {"lora_eval": "B", "frozen_eval": "A"}  # the evaluation passes as they ran (B's may share a trunk)
    passes = [
        f"{names[p['kind']]} pass {p['seconds']:.0f} s"
        for p in report.get("forward_passes", [])
        if p["kind"] in names and not p.get("cached")
    ]
    parts.append(f"compare {compare_s:.0f} s" + (f" ({', '.join(passes)})" if passes else ""))
    return f"demo wall time {train_s + compare_s:.0f} s: " + "; ".join(parts)
