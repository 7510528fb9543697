"""`make bench` -> benchmarks/results/bench.json: lorafair against the seed's procedure and `pipeline`.

    .venv/bin/python benchmarks/run_bench.py                 # SmolLM2-135M, polarity-en, 300 examples
    .venv/bin/python benchmarks/run_bench.py --num-samples 60   # a quick look
    .venv/bin/python benchmarks/run_bench.py --qwen-1.5b        # also the 1.5B peak-RSS ratio (~7 GB, +5 min)

Every figure is a ratio of two measurements taken in this one run on this one machine, so a slower
or busier machine moves both sides; the raw measurements sit beside the ratios. The adapter is made
here with plain peft (random LoRA B, perturbed head): speed does not depend on what was learnt.
On a shared machine other processes compete for the cores; the load average before and after is
recorded so that a disturbed run can be recognised, and OpenMP workers wait passively (see below).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "bench.json"
TARGETS = {
    "speedup_vs_seed_procedure": (">=", 3.0),
    "speedup_vs_pipeline": (">=", 1.5),
    "flop_utilisation": (">=", 0.5),
    "peak_rss_ratio": ("<=", 1.5),
}
MODEL, DATA = "smollm2-135m", "builtin:polarity-en"
# Spinning OpenMP workers of two processes on the same cores starve each other: on this 2-core machine,
# shared with other jobs, one SmolLM2 forward took 10 s with the default (active) waiting and 1.5 s with
# passive waiting (0.4 s when idle). Set before torch loads, inherited by every child, so all sides run
# under the same policy; pass OMP_WAIT_POLICY=ACTIVE to measure the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def make_adapter(base: str, out: Path, seed: int = 0) -> Path:
    """A deterministic SEQ_CLS adapter for `base`: LoRA r=8 on the attention projections, random B."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "score.weight newly initialised" is expected: the head is set below
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=8,
        lora_alpha=16,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
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


def run_child(cmd: list[str]) -> dict:
    """Run a command; its wall time and peak RSS (that child alone, from wait4)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return {"wall_seconds": seconds, "peak_rss_bytes": usage.ru_maxrss * 1024}


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """fp32 FLOP/s of torch.matmul on n x n matrices: the best of `repeats`, i.e. this machine's peak."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
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
    base: str, adapter: Path, texts: list[str], *, batch_size: int, max_length: int, non_embedding: int
) -> dict:
    """lorafair's B pass and transformers' pipeline on the same merged model object, back to back."""
    import numpy as np
    from transformers import pipeline

    from lorafair import inference, modeling

    read = modeling.read_adapter(adapter)
    tokenizer = modeling.load_tokenizer(adapter, base)
    model = modeling.load_base_classifier(base, read.num_labels, label_names=["neg", "pos"])
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, read)
    model = modeling.merge_lora(model, read)
    kw = dict(pad_token_id=tokenizer.pad_token_id, padding_side=tokenizer.padding_side, quiet=True)
    warm = inference.tokenize(tokenizer, texts[:batch_size], max_length=max_length)
    inference.run_pass(model, warm, inference.length_sorted_batches(warm.lengths, batch_size), **kw)

    peak_before = matmul_flops()
    start = time.perf_counter()
    encoded = inference.tokenize(tokenizer, texts, max_length=max_length)
    ours = inference.run_pass(
        model, encoded, inference.length_sorted_batches(encoded.lengths, batch_size), warmup=False, **kw
    )
    ours_seconds = time.perf_counter() - start
    peak_after = matmul_flops()

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    pipe(texts[:batch_size], batch_size=batch_size, truncation=True, max_length=max_length)  # warm-up
    start = time.perf_counter()
    theirs = pipe(texts, batch_size=batch_size, truncation=True, max_length=max_length)
    pipe_seconds = time.perf_counter() - start

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
    }


def qwen_peak_rss(name: str, tmp: Path, num_samples: int, shape: list[str]) -> dict:
    """Peak RSS of `lorafair compare --variants B,A` on a real Qwen2.5 asset, over 4 bytes x its parameters.

    The figure is the compare's own `peak_rss_bytes` (VmHWM, this process alone); `wait4`'s ru_maxrss is
    kept beside it: it also carries this bench process's high-water mark across fork + exec.
    """
    from lorafair import assets

    base = str(assets.qwen_model_dir(name))
    sizes = model_sizes(base)
    make = (
        "import sys; sys.path.insert(0, sys.argv[1]); from run_bench import make_adapter; "
        "from pathlib import Path; make_adapter(sys.argv[2], Path(sys.argv[3]))"
    )
    adapter_cmd = [sys.executable, "-c", make, str(ROOT / "benchmarks"), base, str(tmp / f"{name}-adapter")]
    run_child(adapter_cmd)  # in a child: this process stays small, so its own peak cannot leak into the figure
    cmd = [
        sys.executable,
        "-m",
        "lorafair",
        "compare",
        "--adapter",
        str(tmp / f"{name}-adapter"),
        "--data",
        "builtin:sentiment-zh",
        "--num-samples",
        str(num_samples),
        "--variants",
        "B,A",
        "--bootstrap",
        "1000",
        "--output",
        str(tmp / f"{name}-compare"),
        "--quiet",
        *shape,
    ]
    child = run_child(cmd)
    report = json.loads((tmp / f"{name}-compare" / "report.json").read_text(encoding="utf-8"))
    peak = report["environment"]["peak_rss_bytes"]
    return {
        "peak_rss_ratio": peak / sizes["fp32_bytes"],
        "peak_rss_bytes": peak,
        "wait4_ru_maxrss_bytes": child["peak_rss_bytes"],
        "fp32_bytes": sizes["fp32_bytes"],
        "parameters": sizes["parameters"],
        "wall_seconds": child["wall_seconds"],
        "num_samples": num_samples,
        "data": "builtin:sentiment-zh:test",
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

    from lorafair import assets
    from lorafair.stats import paired_bootstrap

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--qwen-samples", type=int, default=64, help="examples for the Qwen peak-RSS compares")
    parser.add_argument("--no-qwen", action="store_true", help="skip the qwen2.5-coder-0.5b peak-RSS ratio")
    parser.add_argument(
        "--qwen-1.5b",
        dest="qwen_15b",
        action="store_true",
        help="also the qwen2.5-coder-1.5b peak-RSS ratio (~7 GB RAM, ~5 more minutes)",
    )
    parser.add_argument("--micro", action="store_true", help="only the bootstrap and cache-hit timings (seconds)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from lorafair import assets, atomic

    started, load_start = time.perf_counter(), os.getloadavg()
    if args.micro:
        text = json.dumps(
            {"micro": micro_timings(), "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]}},
            indent=2,
        )
        atomic.write_text(Path(args.output), text + "\n")
        print(text)
        return 0
    base = assets.resolve_model(MODEL)
    sizes = model_sizes(base)
    say = lambda msg: print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="lorafair-bench-") as tmp:
        tmp = Path(tmp)
        adapter = make_adapter(base, tmp / "adapter")
        shape = ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
        compare_cmd = [
            sys.executable,
            "-m",
            "lorafair",
            "compare",
            "--adapter",
            str(adapter),
            "--data",
            DATA,
            "--num-samples",
            str(args.num_samples),
            "--variants",
            "B,A",
            "--output",
            str(tmp / "compare"),
            "--quiet",
            *shape,
        ]
        say("lorafair compare (A, B) ...")
        compare = run_child(compare_cmd)
        report = json.loads((tmp / "compare" / "report.json").read_text(encoding="utf-8"))

        # the seed sees exactly the examples compare sampled, in the same order
        rows = [json.loads(line) for line in open(assets.resolve_data(DATA, "test"), encoding="utf-8")]
        subset = [rows[i] for i in report["data"]["indices"]]
        (tmp / "subset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in subset), encoding="utf-8")
        say("seed procedure (two loads, padding to max_length, A and B separately) ...")
        seed = run_child(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "seed_procedure.py"),
                "--base-model",
                base,
                "--adapter",
                str(adapter),
                "--data",
                str(tmp / "subset.jsonl"),
                "--output",
                str(tmp / "seed.json"),
                *shape,
            ]
        )
        seed.update(json.loads((tmp / "seed.json").read_text(encoding="utf-8")))
        runtime = run_child(
            [
                sys.executable,
                "-c",
                "import torch, peft, lorafair.compare, lorafair.report_write; "
                "from transformers import AutoModelForSequenceClassification, modeling_utils",
            ]
        )

        say("B pass: lorafair vs transformers.pipeline ...")
        b_pass = b_pass_vs_pipeline(
            base,
            adapter,
            [r["text"] for r in subset],
            batch_size=args.batch_size,
            max_length=args.max_length,
            non_embedding=sizes["non_embedding_parameters"],
        )
        qwen = {}
        for name, wanted in (("qwen2.5-coder-0.5b", not args.no_qwen), ("qwen2.5-coder-1.5b", args.qwen_15b)):
            if wanted:
                say(f"peak RSS of lorafair compare on {name} ...")
                qwen[name] = qwen_peak_rss(name, tmp, args.qwen_samples, shape)

    figures = {
        "speedup_vs_seed_procedure": seed["wall_seconds"] / compare["wall_seconds"],
        "speedup_vs_pipeline": b_pass["lorafair"]["samples_per_s"] / b_pass["pipeline"]["samples_per_s"],
        "flop_utilisation": b_pass["flop_utilisation"],
        "peak_rss_ratio": compare["peak_rss_bytes"] / sizes["fp32_bytes"],
        **{f"peak_rss_ratio_{name.removeprefix('qwen2.5-coder-')}": q["peak_rss_ratio"] for name, q in qwen.items()},
    }
    targets = {**TARGETS, **{f"peak_rss_ratio_{n.removeprefix('qwen2.5-coder-')}": ("<=", 1.5) for n in qwen}}
    ours = {v: report["variants"][v]["metrics"]["accuracy"]["value"] for v in ("A", "B")}
    bench = {
        "figures": {k: round(v, 3) for k, v in figures.items()},
        "targets": {k: f"{op} {value}" for k, (op, value) in targets.items()},
        "met": {k: (figures[k] >= v if op == ">=" else figures[k] <= v) for k, (op, v) in targets.items()},
        "setup": {
            "model": MODEL,
            "data": f"{DATA}:test",
            "num_samples": args.num_samples,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "variants": "B,A",
            "compare_command": " ".join(["lorafair", *compare_cmd[3:]]).replace(str(tmp), "$TMP"),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
            "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]},
        },
        "measurements": {
            "lorafair_compare": {
                **compare,
                "report_total_seconds": report["timing"]["total_seconds"],
                "speed": {v: report["variants"][v]["speed"] for v in ("A", "B")},
            },
            "seed_procedure": {k: seed[k] for k in ("wall_seconds", "peak_rss_bytes", "total_seconds")}
            | {f"{v}_seconds": seed[v]["seconds"] for v in ("A", "B")},
            "b_pass": b_pass,
            "qwen_peak_rss": qwen,
            "model": sizes,
            "runtime_only_peak_rss_bytes": runtime["peak_rss_bytes"],
            "peak_rss_ratio_above_runtime": (compare["peak_rss_bytes"] - runtime["peak_rss_bytes"])
            / sizes["fp32_bytes"],
            "seed_peak_rss_ratio": seed["peak_rss_bytes"] / sizes["fp32_bytes"],
            "same_results": {"accuracy_lorafair": ours, "accuracy_seed": {v: seed[v]["accuracy"] for v in ("A", "B")}},
        },
        "micro": micro_timings(),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "wall_seconds": time.perf_counter() - started,
    }
    text = json.dumps(bench, indent=2)
    atomic.write_text(Path(args.output), text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
