"""`make bench` -> benchmarks/results/bench.json: lorafair against the seed's procedure, `pipeline`, itself.

    .venv/bin/python benchmarks/run_bench.py                 # SmolLM2-135M, polarity-en, the seed's workload
    .venv/bin/python benchmarks/run_bench.py --num-samples 40 --sweep-samples 16 --cache-samples 32 \
        --train-samples 32 --no-qwen                         # a quick look (the figures mean little)
    .venv/bin/python benchmarks/run_bench.py --qwen-1.5b        # also the 1.5B peak-RSS ratio (~7 GB, +5 min)

Every figure is a ratio of two measurements taken in this one run on this one machine, so a slower
or busier machine moves both sides; the raw measurements sit beside the ratios. Adapters are made
here with plain peft (random LoRA B, perturbed head): speed does not depend on what was learnt.
On a shared machine other processes compete for the cores; the load average before and after is
recorded so that a disturbed run can be recognised, and OpenMP workers wait passively (see below).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_steps import (  # noqa: E402
    b_pass_vs_pipeline,
    bare_passes_in_child,
    compare_child,
    import_child,
    make_adapter_in_child,
    micro_timings,
    model_sizes,
    qwen_peak_rss,
    run_child,
    train_child,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "bench.json"
TARGETS = {
    "speedup_vs_seed_procedure": (">=", 4.0),
    "speedup_vs_seed_procedure_top_layers": (">=", 6.0),
    "work_efficiency": (">=", 0.8),
    "train_seeds_speedup": (">=", 1.8),
    "probe_pass_speedup": (">=", 2.0),
    "sweep_speedup": (">=", 1.8),
    "cached_rerun_speedup": (">=", 1.5),
    "speedup_vs_pipeline": (">=", 1.5),
    "flop_utilisation": (">=", 0.6),
    "fixed_cost_share": ("<=", 0.2),
    "peak_rss_ratio_above_runtime": ("<=", 1.3),
}
MODEL, DATA = "smollm2-135m", "builtin:polarity-en"
# Spinning OpenMP workers of two processes on the same cores starve each other: on this 2-core machine,
# shared with other jobs, one SmolLM2 forward took 10 s with the default (active) waiting and 1.5 s with
# passive waiting (0.4 s when idle). Set before torch loads, inherited by every child, so all sides run
# under the same policy; pass OMP_WAIT_POLICY=ACTIVE to measure the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the seed's own defaults: 500 test examples, max length 256, batch size 16
    parser.add_argument("--num-samples", type=int, default=500, help="examples of the seed-procedure comparisons")
    parser.add_argument("--sweep-samples", type=int, default=100, help="examples of the sweep comparison")
    parser.add_argument(
        "--pipeline-samples", type=int, default=250, help="examples of the B pass against transformers.pipeline"
    )
    parser.add_argument("--cache-samples", type=int, default=200, help="examples of the cold/warm cache compares")
    parser.add_argument("--train-samples", type=int, default=192, help="training rows of the --seeds trainings")
    parser.add_argument("--bf16-samples", type=int, default=16, help="examples of the bf16-vs-fp32 pass")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
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
    return parser.parse_args(argv)


def seed_child(base: str, adapter: Path, subset: Path, out: Path, shape: list[str]) -> dict:
    """benchmarks/seed_procedure.py as a child: wall time, its own peak RSS and its A/B results."""
    script = str(ROOT / "benchmarks" / "seed_procedure.py")
    cmd = [sys.executable, script, "--base-model", base, "--adapter", str(adapter), "--data", str(subset)]
    child = run_child([*cmd, "--output", str(out), *shape])
    child.update(json.loads(out.read_text(encoding="utf-8")))
    return child


def write_subset(tmp: Path, report: dict) -> Path:
    """The examples compare sampled, in its order: the seed procedure sees exactly these."""
    from lorafair.assets import builtin as assets

    rows = [json.loads(line) for line in open(assets.resolve_data(DATA, "test"), encoding="utf-8")]
    subset = tmp / "subset.jsonl"
    subset.write_text("".join(json.dumps(rows[i]) + "\n" for i in report["data"]["indices"]), encoding="utf-8")
    return subset


def measure(args, tmp: Path, base: str, sizes: dict, say) -> dict:
    """Every raw measurement, side by side in this one run."""
    from transformers import AutoConfig

    top = max(1, AutoConfig.from_pretrained(base).num_hidden_layers // 3)
    adapters = {"full": [make_adapter_in_child(base, tmp / f"full-{i}", seed=i) for i in range(2)]}
    adapters["top"] = [make_adapter_in_child(base, tmp / f"top-{i}", seed=i, top_layers=top) for i in range(4)]
    m = {"top_layers": top, "tmp": str(tmp)}
    m.update(seed_workload(args, tmp, base, adapters, say))
    m.update(sweep_and_cache(args, tmp, adapters, say))
    m.update(training(args, tmp, top, say))
    say("B pass: lorafair vs transformers.pipeline, then bf16 vs fp32 ...")
    texts = [json.loads(line)["text"] for line in open(tmp / "subset.jsonl", encoding="utf-8")]
    texts = texts[: args.pipeline_samples]
    m["b_pass"] = b_pass_vs_pipeline(
        base,
        adapters["full"][0],
        texts,
        batch_size=args.batch_size,
        max_length=args.max_length,
        non_embedding=sizes["non_embedding_parameters"],
        bf16_samples=args.bf16_samples,
    )
    m["imports"] = import_child()
    m["qwen"] = {}
    for name, wanted in (("qwen2.5-coder-0.5b", not args.no_qwen), ("qwen2.5-coder-1.5b", args.qwen_15b)):
        if wanted:
            say(f"peak RSS of lorafair compare on {name} ...")
            # fp32, as the figure's denominator (4 bytes x parameters): where --dtype auto picks bf16, the load
            # reads the fp32 checkpoint through mmap and its pages count in RSS beside the bf16 copy (README)
            shape = ["--batch-size", str(args.batch_size), "--dtype", "float32"]
            m["qwen"][name] = qwen_peak_rss(name, tmp, args.qwen_samples, shape)
    return m


def seed_workload(args, tmp: Path, base: str, adapters: dict, say) -> dict:
    """The seed's own workload (500 examples, max length 256, batch 16): the seed procedure once, lorafair
    compare (A and B, fp32 like the seed) with a full-layer and a top-layer adapter, the bare passes that
    compare needs, and the same top-layer compare with --dtype auto."""
    shape = ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    # the seed computes A and B only: compare does the same work (no analysis, no A1/R, no cache), in fp32
    speed = ["--data", DATA, "--num-samples", str(args.num_samples), *shape, "--variants", "B,A", "--no-analysis"]
    speed += ["--no-cache", "--dtype", "float32"]
    m = {}
    say("lorafair compare (A, B), full-layer adapter ...")
    m["full"] = compare_child(adapters["full"][:1], tmp / "full", speed)
    subset = write_subset(tmp, m["full"]["report"])
    # The seed merges the adapter and runs every layer of both models whichever layers LoRA touched, so one
    # run of its procedure is the reference of both seed ratios.
    say("seed procedure (merge, reload, pad to max length, evaluate A and B) ...")
    m["seed"] = seed_child(base, adapters["full"][0], subset, tmp / "seed.json", shape)
    say("lorafair compare (A, B), adapter on the top third of the layers ...")
    m["top"] = compare_child(adapters["top"][:1], tmp / "top", speed)
    say("the bare run_pass calls that compare needs (A every layer, B above the shared trunk) ...")
    m["bare_top"] = bare_passes_in_child(
        base, adapters["top"][0], subset, tmp / "bare.json", batch_size=args.batch_size, max_length=args.max_length
    )
    say("the same compare with --dtype auto ...")
    m["auto_dtype"] = compare_child(adapters["top"][:1], tmp / "auto", [*speed, "--dtype", "auto"])  # last wins
    return m


def sweep_and_cache(args, tmp: Path, adapters: dict, say) -> dict:
    """4 separate compares against one compare of the 4 adapters; a cold and a warm feature cache."""
    shape = ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    sweep = ["--data", DATA, "--num-samples", str(args.sweep_samples), *shape, "--variants", "B,A", "--no-analysis"]
    sweep.append("--no-cache")
    say("4 separate compares vs one compare of 4 adapters ...")
    m = {"separate": [compare_child([a], tmp / f"separate-{i}", sweep) for i, a in enumerate(adapters["top"])]}
    m["sweep"] = compare_child(adapters["top"], tmp / "sweep", sweep)
    say("a cold and a warm feature cache (default variants and analysis) ...")
    cache = {"LORAFAIR_FEATURE_CACHE": str(tmp / "features")}
    default = ["--data", DATA, "--num-samples", str(args.cache_samples), *shape]
    m["cold"] = compare_child(adapters["full"][:1], tmp / "cold", default, env=cache)
    m["warm"] = compare_child(adapters["full"][1:], tmp / "warm", default, env=cache)  # another adapter, same base
    return m


def training(args, tmp: Path, top: int, say) -> dict:
    """`train --seeds 0,1,2 --epochs 2` on the top third of the layers with and without trunk reuse (each with
    its own feature cache), then the demo's A1 probe pass over the adapter's training rows with the trunk states
    training left in the cache against an empty cache."""
    train = ["--base-model", MODEL, "--data", f"{DATA}:train", "--eval-fraction", "0", "--seeds", "0,1,2"]
    train += ["--max-train-samples", str(args.train_samples), "--max-length", "64", "--lora-layers", str(top)]
    train += ["--epochs", "2", "--batch-size", str(args.batch_size), "--precision", "fp32"]
    cache = {side: {"LORAFAIR_FEATURE_CACHE": str(tmp / f"cache-{side}")} for side in ("off", "on", "cold")}
    m = {}
    for side in ("off", "on"):
        say(f"lorafair train --seeds 0,1,2 --epochs 2 --trunk-reuse {side} ...")
        m[f"train_{side}"] = train_child(tmp / f"train-{side}", [*train, "--trunk-reuse", side], env=cache[side])
    # the demo's compare options (max length 64, probe on the adapter's own training rows), A and A1 only
    probe = ["--data", f"{DATA}:test", "--num-samples", "100", "--variants", "A,A1", "--no-analysis"]
    probe += ["--max-length", "64", "--dtype", "float32", "--probe-samples", str(args.train_samples)]
    adapter = tmp / "train-on" / "seed-0"
    say("A1's probe pass: an empty feature cache, then the one training filled ...")
    m["probe_cold"] = compare_child([adapter], tmp / "probe-cold", probe, env=cache["cold"])
    m["probe_warm"] = compare_child([adapter], tmp / "probe-warm", probe, env=cache["on"])
    return m


def _probe_seconds(child: dict) -> float:
    return sum(p["seconds"] for p in child["report"]["forward_passes"] if p["kind"] == "frozen_probe")


def figures_of(m: dict, sizes: dict) -> dict:
    full, wall = m["full"], lambda child: child["wall_seconds"]
    timing = full["report"]["timing"]
    bf16, bare = m["b_pass"]["bf16"], m["bare_top"]
    figures = {
        "speedup_vs_seed_procedure": wall(m["seed"]) / wall(full),
        "speedup_vs_seed_procedure_top_layers": wall(m["seed"]) / wall(m["top"]),
        "work_efficiency": sum(bare["seconds"].values()) / (wall(m["top"]) - wall(m["imports"])),
        "train_seeds_speedup": wall(m["train_off"]) / wall(m["train_on"]),
        "probe_pass_speedup": _probe_seconds(m["probe_cold"]) / _probe_seconds(m["probe_warm"]),
        "auto_dtype_speedup": m["top"]["report"]["timing"]["forward_pass_seconds"]
        / m["auto_dtype"]["report"]["timing"]["forward_pass_seconds"],
        "sweep_speedup": sum(map(wall, m["separate"])) / wall(m["sweep"]),
        "cached_rerun_speedup": wall(m["cold"]) / wall(m["warm"]),
        "speedup_vs_pipeline": m["b_pass"]["lorafair"]["samples_per_s"] / m["b_pass"]["pipeline"]["samples_per_s"],
        "flop_utilisation": m["b_pass"]["flop_utilisation"],
        "flop_utilisation_bf16": bf16["flop_utilisation_bf16"],
        "bf16_speedup": bf16["bf16_speedup"],
        "bf16_prediction_flips": bf16["prediction_flip_share"],
        "fixed_cost_share": 1 - timing["forward_pass_seconds"] / wall(full),
        "peak_rss_ratio": full["peak_rss_bytes"] / sizes["fp32_bytes"],
        "peak_rss_ratio_above_runtime": (full["peak_rss_bytes"] - m["imports"]["peak_rss_bytes"]) / sizes["fp32_bytes"],
        **{f"peak_rss_ratio_{n.removeprefix('qwen2.5-coder-')}": q["peak_rss_ratio"] for n, q in m["qwen"].items()},
    }
    return figures


def fixed_cost_breakdown(child: dict) -> dict:
    """Where `lorafair compare`'s wall time went: interpreter + imports + writing, then its phases, passes."""
    timing = child["report"]["timing"]
    return {
        "wall_seconds": child["wall_seconds"],
        "outside_run_compare_seconds": child["wall_seconds"] - timing["total_seconds"],  # imports, files, plots
        "phases_seconds": timing.get("phases"),
        "forward_pass_seconds": timing["forward_pass_seconds"],
        "passes": [{k: p.get(k) for k in ("kind", "examples", "seconds")} for p in child["report"]["forward_passes"]],
    }


def bench_json(args, m: dict, sizes: dict, load_start, started: float) -> dict:
    import torch

    from lorafair.core.names import ADAPTER_HEAD_VARIANTS

    figures = figures_of(m, sizes)
    targets = {**TARGETS, **{f"peak_rss_ratio_{n.removeprefix('qwen2.5-coder-')}": ("<=", 1.5) for n in m["qwen"]}}
    targets["auto_dtype_speedup"] = (">=", 1.5) if _auto_dtype(m) == "bfloat16" else (">=", 0.9)
    bf16 = m["b_pass"]["bf16"]
    accuracy = lambda child: {
        v: child["report"]["variants"][v]["metrics"]["accuracy"]["value"] for v in ADAPTER_HEAD_VARIANTS
    }  # noqa: E731
    return {
        "figures": {k: round(v, 4) for k, v in figures.items()},
        "targets": {k: f"{op} {value}" for k, (op, value) in targets.items()},
        "met": {k: (figures[k] >= v if op == ">=" else figures[k] <= v) for k, (op, v) in targets.items()},
        "dtype_auto_on_cpu": "bfloat16"
        if bf16["bf16_speedup"] >= 1.5 and bf16["prediction_flip_share"] <= 0.005
        else "float32 (bf16 needs >= 1.5x and <= 0.5% flips)",
        "dtype_auto_chosen": _auto_dtype(m),
        "dtype_probe": _dtype_probe(m["auto_dtype"]["report"]),
        "setup": _setup(args, m, load_start),
        "measurements": {
            "fixed_cost": fixed_cost_breakdown(m["full"]),
            **{k: _strip(m[k]) for k in ("full", "top", "auto_dtype", "sweep", "cold", "warm", "seed", "bare_top")},
            **{k: _strip(m[k]) for k in ("probe_cold", "probe_warm", "train_off", "train_on")},
            "probe_pass_seconds": {k: _probe_seconds(m[k]) for k in ("probe_cold", "probe_warm")},
            "train_loop_seconds": {k: _train_loop_seconds(m[k]) for k in ("train_off", "train_on")},
            "cache_passes": {k: _passes(m[k]) for k in ("cold", "warm")},
            "imports": m["imports"],
            "separate": [_strip(c) for c in m["separate"]],
            "b_pass": m["b_pass"],
            "qwen_peak_rss": m["qwen"],
            "model": sizes,
            "same_results": {
                "accuracy_lorafair": accuracy(m["full"]),
                "accuracy_seed": {v: m["seed"][v]["accuracy"] for v in ADAPTER_HEAD_VARIANTS},
                "train_loss_max_abs_diff_reuse_vs_not": _loss_difference(m["train_on"], m["train_off"]),
            },
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


def _train_loop_seconds(child: dict) -> dict:
    """Per seed: the Trainer's own train_runtime (the steps) and the recording of the trunk states (trunk reuse)."""
    return {
        seed: {
            "train_runtime": run["metrics"]["train"]["train_runtime"],
            "trunk_recording": (run.get("trunk_reuse") or {}).get("seconds", 0.0),
        }
        for seed, run in child["runs"].items()
    }


def _passes(child: dict) -> dict:
    """A compare's forward passes (kind: seconds, cached) and its phases, from its report."""
    report = child["report"]
    passes = {p["kind"]: (round(p["seconds"], 2), p.get("cached")) for p in report["forward_passes"]}
    return {"passes": passes, "phases": report["timing"]["phases"], "dtype": report["environment"]["dtype"]}


def _auto_dtype(m: dict) -> str:
    """The dtype the --dtype auto compare ran its passes in (report["environment"]["dtype"])."""
    return str(m["auto_dtype"]["report"]["environment"]["dtype"])


def _dtype_probe(report: dict):
    """The CPU dtype probe's figures as the --dtype auto compare's report states them (None: no probe)."""
    return report["environment"].get("dtype_choice")


def _loss_difference(on: dict, off: dict) -> float:
    """Largest |loss| difference between the trainings with and without trunk reuse, step by step, every seed."""
    worst = 0.0
    for seed, run in off["runs"].items():
        losses = lambda r: [e["loss"] for e in (r.get("log_history") or []) if "loss" in e]  # noqa: E731
        pairs = list(zip(losses(run), losses(on["runs"][seed]), strict=True))
        worst = max([worst, *(abs(a - b) for a, b in pairs)])
    return worst


def _strip(child: dict) -> dict:
    return {k: v for k, v in child.items() if k not in ("report", "runs")}


def _setup(args, m: dict, load_start) -> dict:
    """What was run, how, and on what machine (load average at the start and now)."""
    import torch

    return {
        "model": MODEL,
        "data": f"{DATA}:test",
        "num_samples": args.num_samples,
        "sweep_samples": args.sweep_samples,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "top_layers_adapter": f"LoRA on the top {m['top_layers']} layers",
        "cache_samples": args.cache_samples,
        "pipeline_samples": args.pipeline_samples,
        "train_samples": args.train_samples,
        "commands": {
            k: m[k]["command"].replace(str(m["tmp"]), "$TMP")
            for k in ("full", "top", "auto_dtype", "sweep", "warm", "train_on", "probe_warm")
        },
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_flags_bf16": _cpu_bf16_flags(),
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]},
    }


def _cpu_bf16_flags() -> list[str]:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx512_bf16", "amx_bf16", "avx512f")})


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT / "src"))
    from lorafair.assets import builtin as assets
    from lorafair.core import atomic

    started, load_start = time.perf_counter(), os.getloadavg()
    if args.micro:
        micro = {"micro": micro_timings(), "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]}}
        text = json.dumps(micro, indent=2)
        atomic.write_text(Path(args.output), text + "\n")
        print(text)
        return 0
    base = assets.resolve_model(MODEL)
    sizes = model_sizes(base)
    say = lambda msg: print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="lorafair-bench-") as tmp:
        measurements = measure(args, Path(tmp), base, sizes, say)
        bench = bench_json(args, measurements, sizes, load_start, started)
    text = json.dumps(bench, indent=2)
    atomic.write_text(Path(args.output), text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
