"""The measurements `run_bench.py` divides: child processes, adapters, the B pass, bf16, Qwen peak RSS, micro.

Each function measures one thing and returns its raw numbers; run_bench.py turns them into ratios.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_adapter(base: str, out: Path, seed: int = 0, top_layers: int = 0) -> Path:
    """A deterministic SEQ_CLS adapter for `base`: LoRA r=8 on the attention projections, random B.

    `top_layers`: LoRA only on that many layers nearest the head (peft's layers_to_transform), as
    `lorafair train --lora-layers` makes them; 0 = every layer.
    """
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "score.weight newly initialised" is expected: the head is set below
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    layers = model.config.num_hidden_layers
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=8,
        lora_alpha=16,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        layers_to_transform=list(range(layers - top_layers, layers)) if top_layers else None,
    )
    model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "score.modules_to_save" in name:
                param.normal_(0.0, 0.05)
            elif "lora_B" in name:
                param.normal_(0.0, 0.01)
    model.peft_config["default"].base_model_name_or_path = base
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(out))
    return out


def make_adapter_in_child(base: str, out: Path, seed: int = 0, top_layers: int = 0) -> Path:
    """make_adapter in a child process: the bench process stays small, so no child inherits its peak."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from bench_steps import make_adapter; from pathlib import Path; "
        "make_adapter(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))"
    )
    run_child([sys.executable, "-c", code, str(ROOT / "benchmarks"), base, str(out), str(seed), str(top_layers)])
    return out


def compare_child(adapters: list[Path], out: Path, args: list[str], env: dict | None = None) -> dict:
    """`lorafair compare` as a child: its wall time, its own peak RSS (VmHWM from the report) and the report."""
    cmd = [sys.executable, "-m", "lorafair", "compare"]
    for adapter in adapters:
        cmd += ["--adapter", str(adapter)]
    child = run_child([*cmd, "--output", str(out), "--quiet", *args], env=env)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    child["peak_rss_bytes"] = report.get("environment", {}).get("peak_rss_bytes") or child["wait4_ru_maxrss_bytes"]
    return {**child, "report": report, "command": " ".join(["lorafair compare", *cmd[4:], *args])}


def import_child() -> dict:
    """A child that only starts Python and imports what `lorafair compare` imports: its wall time (the
    interpreter and import time `work_efficiency` takes out of a compare's wall) and its own peak RSS."""
    code = (
        "import torch, peft, lorafair.recipes.compare, lorafair.report.write; "
        "from transformers import AutoModelForSequenceClassification, modeling_utils; "
        "from lorafair.core.peak_memory import peak_rss_bytes; print(peak_rss_bytes())"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return {"wall_seconds": time.perf_counter() - start, "peak_rss_bytes": int(out.stdout.strip().splitlines()[-1])}


def bare_passes(base: str, adapter: Path, texts: list[str], *, batch_size: int, max_length: int) -> dict:
    """The forward passes a compare of variants B and A runs, and nothing else, in its order: `run_pass` over A
    (the frozen base with the adapter's head, every layer, recording the shared trunk's output), A over the
    like-for-like sample (evaluation/speed.py), the unmerged LoRA model over the fidelity batches, then B (LoRA
    merged, only the layers above the shared trunk) and the merged B on every layer over the sample; fp32, the
    compare's length-sorted batches. Seconds of each call."""
    from lorafair.evaluation import fidelity, speed
    from lorafair.models import inference, modeling, trunk

    read = modeling.read_adapter(adapter)
    tokenizer = modeling.load_tokenizer(adapter, base)
    model = modeling.load_base_classifier(base, read.num_labels, label_names=["neg", "pos"])
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, read)
    encoded = inference.tokenize(tokenizer, texts, max_length=max_length)
    batches = inference.length_sorted_batches(encoded.lengths, batch_size)
    kw = dict(pad_token_id=tokenizer.pad_token_id, padding_side=tokenizer.padding_side, quiet=True)
    plan = trunk.plan_trunk(model, read.lora)
    states = trunk.TrunkStates(plan)
    _, sample = speed.sample_batches(encoded, batch_size)
    seconds = {}
    seconds["a"] = _seconds(
        lambda: inference.run_pass(model, encoded, batches, trunk=states.recorder(model) if plan.shared else None, **kw)
    )
    seconds["a_sample"] = _seconds(lambda: inference.run_pass(model, encoded, sample, **kw))
    peft_model = modeling.attach_lora(model, read)
    checked = fidelity.check_batches(batches)
    seconds["fidelity"] = _seconds(lambda: inference.run_pass(peft_model, encoded, checked, warmup=False, **kw))
    merged = modeling.merge_attached(peft_model, read)
    replay = states.replayer(merged) if plan.shared else None
    seconds["b"] = _seconds(lambda: inference.run_pass(merged, encoded, batches, trunk=replay, **kw))
    seconds["b_sample"] = _seconds(lambda: inference.run_pass(merged, encoded, sample, **kw))
    return {
        "examples": len(texts),
        "a_seconds": seconds["a"],
        "b_seconds": seconds["b"],
        "seconds": seconds,
        "shared_layers": plan.shared,
        "total_layers": plan.total,
    }


def bare_passes_in_child(base: str, adapter: Path, subset: Path, out: Path, *, batch_size: int, max_length: int):
    """bare_passes in a fresh process (nothing warm from this one), texts from the compare's sampled subset."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from bench_steps import "
        "bare_passes; texts = [json.loads(l)['text'] for l in open(sys.argv[4], encoding='utf-8')]; "
        "r = bare_passes(sys.argv[2], Path(sys.argv[3]), texts, batch_size=int(sys.argv[6]), max_length=int(sys.argv[7])); "
        "Path(sys.argv[5]).write_text(json.dumps(r))"
    )
    args = [str(ROOT / "benchmarks"), base, str(adapter), str(subset), str(out), str(batch_size), str(max_length)]
    child = run_child([sys.executable, "-c", code, *args])
    return {**child, **json.loads(out.read_text(encoding="utf-8"))}


def train_child(out: Path, args: list[str], env: dict | None = None) -> dict:
    """`lorafair train` as a child: its wall time and every seed's lorafair_run.json (loss log included)."""
    cmd = [sys.executable, "-m", "lorafair", "train", "--output", str(out), "--quiet", *args]
    child = run_child(cmd, env=env)
    runs = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*/lorafair_run.json"))}
    return {**child, "runs": runs, "command": " ".join(["lorafair train", *args])}


def run_child(cmd: list[str], env: dict | None = None) -> dict:
    """Run a command; its wall time and peak RSS (that child alone, from wait4)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
    # ru_maxrss carries the parent's high-water mark across fork + exec: kept only as a fallback
    return {"wall_seconds": seconds, "wait4_ru_maxrss_bytes": usage.ru_maxrss * 1024}


def matmul_flops(n: int = 2048, repeats: int = 5, dtype=None) -> float:
    """FLOP/s of torch.matmul on n x n matrices (fp32 unless `dtype`): the best of `repeats`, this machine's peak."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def model_sizes(base: str) -> dict:
    """Parameter counts of the base classifier, built on the meta device (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(base)
    config.num_labels = 2
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"parameters": total, "non_embedding_parameters": total - embedding, "fp32_bytes": 4 * total}


def b_pass_vs_pipeline(
    base: str,
    adapter: Path,
    texts: list[str],
    *,
    batch_size: int,
    max_length: int,
    non_embedding: int,
    bf16_samples: int,
) -> dict:
    """lorafair's B pass and transformers' pipeline on the same merged model object, back to back; then
    that model in bf16 against fp32 on the first `bf16_samples` texts."""
    import numpy as np

    model, tokenizer = _merged_b_model(base, adapter)
    _b_pass(model, tokenizer, texts[:batch_size], batch_size=batch_size, max_length=max_length)  # warm-up
    peak_before = matmul_flops()
    ours, encoded, ours_seconds = _b_pass(
        model, tokenizer, texts, batch_size=batch_size, max_length=max_length, warmup=False
    )
    peak_after = matmul_flops()
    theirs, pipe_seconds = _timed_pipeline(model, tokenizer, texts, batch_size=batch_size, max_length=max_length)

    forward_seconds = float(sum(ours.batch_seconds))
    peak = max(peak_before, peak_after)
    useful = 2 * non_embedding * ours.tokens / forward_seconds
    ours_pred = ["neg", "pos"]
    agree = np.mean([ours_pred[int(i)] == t["label"] for i, t in zip(ours.logits.argmax(1), theirs)])
    return {
        "lorafair": {
            "seconds": ours_seconds,
            "forward_seconds": forward_seconds,
            "tokenize_seconds": encoded.seconds,
            "samples_per_s": len(texts) / ours_seconds,
            "real_tokens": ours.tokens,
        },
        "pipeline": {"seconds": pipe_seconds, "samples_per_s": len(texts) / pipe_seconds},
        "prediction_agreement": float(agree),
        "matmul_fp32_flops": {"before": peak_before, "after": peak_after, "n": 2048},
        "useful_flops_per_s": useful,
        "flop_utilisation": useful / peak,
        "bf16": bf16_vs_fp32(
            model,
            tokenizer,
            texts[:bf16_samples],
            batch_size=batch_size,
            max_length=max_length,
            non_embedding=non_embedding,
        ),
    }


def _merged_b_model(base: str, adapter: Path):
    """(variant B with its LoRA merged, tokenizer): the model object both B pass and pipeline run."""
    from lorafair.models import modeling

    read = modeling.read_adapter(adapter)
    tokenizer = modeling.load_tokenizer(adapter, base)
    model = modeling.load_base_classifier(base, read.num_labels, label_names=["neg", "pos"])
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, read)
    return modeling.merge_lora(model, read), tokenizer


def _b_pass(model, tokenizer, texts: list[str], *, batch_size: int, max_length: int, warmup: bool = True):
    """(run_pass result, encoded texts, seconds of tokenising + the pass)."""
    from lorafair.models import inference

    start = time.perf_counter()
    encoded = inference.tokenize(tokenizer, texts, max_length=max_length)
    result = inference.run_pass(
        model,
        encoded,
        inference.length_sorted_batches(encoded.lengths, batch_size),
        pad_token_id=tokenizer.pad_token_id,
        padding_side=tokenizer.padding_side,
        quiet=True,
        warmup=warmup,
    )
    return result, encoded, time.perf_counter() - start


def _timed_pipeline(model, tokenizer, texts: list[str], *, batch_size: int, max_length: int):
    """(transformers pipeline predictions, seconds) after one warm-up batch."""
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    pipe(texts[:batch_size], batch_size=batch_size, truncation=True, max_length=max_length)  # warm-up
    start = time.perf_counter()
    theirs = pipe(texts, batch_size=batch_size, truncation=True, max_length=max_length)
    return theirs, time.perf_counter() - start


def qwen_peak_rss(name: str, tmp: Path, num_samples: int, shape: list[str]) -> dict:
    """Peak RSS of `lorafair compare --variants B,A` on a real Qwen2.5 asset, over 4 bytes x its parameters.

    The figure is the compare's own `peak_rss_bytes` (VmHWM, this process alone); `wait4`'s ru_maxrss is
    kept beside it: it also carries this bench process's high-water mark across fork + exec.
    """
    from lorafair.assets import builtin as assets

    base = str(assets.qwen_model_dir(name))
    sizes = model_sizes(base)
    adapter = make_adapter_in_child(base, tmp / f"{name}-adapter")
    args = ["--data", "builtin:sentiment-zh", "--num-samples", str(num_samples), "--variants", "B,A"]
    child = compare_child([adapter], tmp / f"{name}-compare", [*args, "--bootstrap", "1000", *shape])
    return {
        "peak_rss_ratio": child["peak_rss_bytes"] / sizes["fp32_bytes"],
        "peak_rss_bytes": child["peak_rss_bytes"],
        "wait4_ru_maxrss_bytes": child["wait4_ru_maxrss_bytes"],
        "fp32_bytes": sizes["fp32_bytes"],
        "parameters": sizes["parameters"],
        "wall_seconds": child["wall_seconds"],
        "num_samples": num_samples,
        "data": "builtin:sentiment-zh:test",
    }


def bf16_vs_fp32(model, tokenizer, texts: list[str], *, batch_size: int, max_length: int, non_embedding: int) -> dict:
    """The merged B model's pass in fp32 and in bf16 (weights cast once), same examples and batches.

    Flips: examples whose bf16 prediction differs from the fp32 one. The bf16 FLOP utilisation divides by
    the bf16 matmul rate of this CPU (where it lacks AVX512-BF16/AMX, bf16 runs far slower than fp32).
    """
    import copy

    import torch

    from lorafair.models import inference

    kw = dict(pad_token_id=tokenizer.pad_token_id, padding_side=tokenizer.padding_side, quiet=True)
    encoded = inference.tokenize(tokenizer, texts, max_length=max_length)
    batches = inference.length_sorted_batches(encoded.lengths, batch_size)
    results = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        cast = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        results[name] = inference.run_pass(cast, encoded, batches, **kw)
        del cast
    seconds = {k: float(sum(r.batch_seconds)) for k, r in results.items()}
    flips = int((results["fp32"].logits.argmax(1) != results["bf16"].logits.argmax(1)).sum())
    bf16_peak = matmul_flops(dtype=torch.bfloat16, repeats=2)
    return {
        "examples": len(texts),
        "seconds": seconds,
        "bf16_speedup": seconds["fp32"] / seconds["bf16"],
        "prediction_flips": flips,
        "prediction_flip_share": flips / len(texts),
        "max_abs_logit_diff": float(abs(results["fp32"].logits - results["bf16"].logits).max()),
        "matmul_bf16_flops": bf16_peak,
        "flop_utilisation_bf16": 2 * non_embedding * results["bf16"].tokens / seconds["bf16"] / bf16_peak,
    }


# Wall-clock limits that used to be asserted in the tests (where a busy machine made them flaky); measured here.
MICRO_TARGETS = {
    "bootstrap_10k_resamples_500x3_seconds": 10.0,
    "qwen_tokenizer_cache_hit_seconds": 0.5,
    "builtin_data_cache_hit_seconds": 0.1,
    "smollm2_cache_hit_seconds": 0.1,
}


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def micro_timings() -> dict:
    """Bootstrap speed (10,000 paired resamples, 500 examples, 3 variants) and asset cache hits (second lookups)."""
    import numpy as np

    from lorafair.assets import builtin as assets
    from lorafair.stats.paired import paired_bootstrap

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    logits = {v: np.eye(2)[y] * scale + rng.normal(size=(500, 2)) for v, scale in (("A", 0.8), ("A1", 1.0), ("B", 1.6))}
    probs = {v: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) for v, z in logits.items()}
    seconds = {
        "bootstrap_10k_resamples_500x3_seconds": _seconds(
            lambda: paired_bootstrap(y, probs, [("B", "A"), ("A1", "A")], n_resamples=10_000, seed=0)
        )
    }
    lookups = {
        "qwen_tokenizer_cache_hit_seconds": assets.qwen_tokenizer_dir,
        "builtin_data_cache_hit_seconds": lambda: assets.builtin_data_dir("polarity-en"),
        "smollm2_cache_hit_seconds": assets.smollm2_model_dir,
    }
    for name, lookup in lookups.items():
        lookup()  # builds the asset once if this machine has not yet
        seconds[name] = _seconds(lookup)
    return {
        "figures": {k: round(v, 4) for k, v in seconds.items()},
        "targets": {k: f"<= {v}" for k, v in MICRO_TARGETS.items()},
        "met": {k: seconds[k] <= v for k, v in MICRO_TARGETS.items()},
    }
