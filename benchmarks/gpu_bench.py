"""GPU throughput of lorafair's inference path on a Qwen2.5-1.5B-shaped classifier (random bf16 weights).

    bash benchmarks/gpu.sh            # the wrapper: checks the machine, then runs this (< 5 min on an H200)
    python benchmarks/gpu_bench.py --output benchmarks/results/gpu.json

2,000 synthetic examples at 128 and at 256 tokens go through `inference.run_pass` (the same code
`lorafair compare` times for B and A): QPS, tokens/s and the fraction of 790 TFLOP/s (the bf16
matrix rate measured on this workplace's H200s) reached by the useful FLOPs, 2 x non-embedding
parameters x tokens. Attention score FLOPs are left out of "useful", as on the CPU bench; at 256 tokens
they would add under 2 %. No weights or tokenizer are needed: token ids are drawn at random.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

PEAK_BF16 = 790e12  # FLOP/s, 8192^3 bf16 torch.matmul on an H200 here (KINDS.md: 769-798)


def qwen25_15b_classifier(device: str = "cuda", smoke: bool = False):
    """Qwen2.5-1.5B's shapes (28 layers, hidden 1536, MLP 8960, 12 heads / 2 KV heads, vocab 151,936)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    shape = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12)
    if smoke:  # a CPU check of this script's plumbing, not a measurement
        shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    config = Qwen2Config(
        vocab_size=151936,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        num_labels=2,
        pad_token_id=151643,
        attn_implementation="sdpa",
        **shape,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForSequenceClassification(config)
    return model.to(torch.bfloat16).eval().requires_grad_(False)


def matmul_peak(device: str, n: int = 8192, repeats: int = 10) -> float:
    import torch

    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def main() -> int:
    args = _parse_args()
    import numpy as np
    import torch

    from lorafair.core import atomic

    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_bench: no CUDA device", file=sys.stderr)
        return 2
    started = time.perf_counter()
    model = qwen25_15b_classifier(device, smoke=args.smoke)
    total = sum(p.numel() for p in model.parameters())
    non_embedding = total - model.get_input_embeddings().weight.numel()
    measured_peak = matmul_peak(device, n=256 if args.smoke else 8192)
    rng = np.random.default_rng(0)
    runs = []
    for length in (int(x) for x in args.lengths.split(",")):
        ids = rng.integers(0, 151643, size=(args.num_examples, length)).tolist()  # no pad id among them
        for batch_size in (int(x) for x in args.batch_sizes.split(",")):
            runs.append(_measure(model, ids, length, batch_size, device, non_embedding, measured_peak))
            print(json.dumps(runs[-1]), flush=True)
    out = {
        "model": "Qwen2.5-1.5B-shaped Qwen2ForSequenceClassification, random weights, bf16, SDPA",
        "parameters": total,
        "non_embedding_parameters": non_embedding,
        "num_examples": args.num_examples,
        "measured_bf16_matmul_tflops": measured_peak / 1e12,
        "reference_peak_tflops": PEAK_BF16 / 1e12,
        "runs": runs,
        "best": max(runs, key=lambda r: r["fraction_of_790_tflops"]),
        "environment": _environment(device),
        "wall_seconds": time.perf_counter() - started,
    }
    atomic.write_text(args.output, json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-examples", type=int, default=2000)
    parser.add_argument("--lengths", default="128,256")
    parser.add_argument("--batch-sizes", default="32,64,128", help="each length is run at each batch size")
    parser.add_argument("--output", default="benchmarks/results/gpu.json")
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU: checks the script, measures nothing")
    return parser.parse_args()


def _measure(model, ids, length: int, batch_size: int, device: str, non_embedding: int, measured_peak: float) -> dict:
    """One timed run_pass over all examples of one length at one batch size."""
    import numpy as np

    from lorafair.models.inference import Encoded, run_pass

    n = len(ids)
    # fixed order (all lengths equal): batches are what length_sorted_batches would make
    batches = [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    result = run_pass(model, Encoded(ids, None), batches, pad_token_id=151643, device=device, quiet=True)
    speed = result.speed(n)
    useful = 2 * non_embedding * result.tokens / speed["seconds"]
    return {
        "length": length,
        "batch_size": batch_size,
        "qps": speed["qps"],
        "tokens_per_s": speed["tokens_per_s"],
        "seconds": speed["seconds"],
        "latency_ms_p50": speed["latency_ms_p50"],
        "useful_tflops": useful / 1e12,
        "fraction_of_790_tflops": useful / PEAK_BF16,
        "fraction_of_measured_peak": useful / measured_peak,
        "peak_memory_gib": (result.peak_memory_bytes or 0) / 2**30,
    }


def _environment(device: str) -> dict:
    import torch

    return {
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
    }


if __name__ == "__main__":
    sys.exit(main())
