"""`--dtype auto` on CPU: bf16 only where this machine measurably runs it faster than fp32.

A CPU with AVX512-BF16 or AMX runs bf16 matmuls several times faster than fp32; one without emulates bf16 and
runs it slower. Guessing either way costs a user a slower run, so lorafair measures: a short probe (well under a
second) times fp32 and bf16 on a 1024x1024 matmul and on scaled_dot_product_attention at a typical encoder
shape, best of a few repetitions each, and picks bf16 only where a transformer layer would run at least
`SPEEDUP_NEEDED` faster: the two speedups weighted by their share of a layer's work (`MATMUL_SHARE`). Requiring
both would be wrong: on an AVX512-BF16 CPU without AMX torch's bf16 attention kernel runs at ~0.94x fp32 while
the matmuls run 3.5-11x, and a SmolLM2-135M forward (16 x 32 tokens) measured 3.4x faster in bf16.

The result is remembered per machine in `$LORAFAIR_CACHE/dtype_probe.json`, keyed by the CPU's model name, the
torch version and the CPU's bf16/AMX flags; an unreadable or corrupt file only means probing again.
`$LORAFAIR_CPU_DTYPE=float32|bfloat16` forces the choice without a probe (the test suite forces float32).

    choice = cpu_dtype()   # {"dtype", "source": forced|measured|cached, "matmul_speedup", ...}
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from lorafair.core import atomic, paths
from lorafair.core.errors import LorafairError

FORCE_ENV = "LORAFAIR_CPU_DTYPE"
SPEEDUP_NEEDED = 1.5  # bf16 costs some precision (see the fidelity sample's flips); only a clear gain pays for it
CACHE_FILE = "dtype_probe.json"
REPS = 3
MATMUL_SIZE = 1024
ATTENTION_SHAPE = (8, 12, 128, 64)  # batch, heads, tokens, head dim: a base-sized encoder at --batch-size 8
OPS = ("matmul", "attention")
# Share of a decoder layer's FLOPs in its projections and MLP (matmuls) at the lengths lorafair runs (<= 256
# tokens): per token ~24 d^2 against ~4 d x tokens for attention scores and values, so >= 90% for d >= 576.
MATMUL_SHARE = 0.9


def cpu_dtype(timer: Callable[[str, str], float] | None = None) -> dict:
    """The dtype of the frozen and LoRA passes (and training's autocast) on this CPU, with how it was decided.

    `timer(op, dtype)` gives the best seconds of one op (tests construct timings); by default the real probe.
    """
    forced = os.environ.get(FORCE_ENV)
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise LorafairError(f"${FORCE_ENV}={forced}: use float32 or bfloat16")
        return {"dtype": forced, "source": "forced", "threshold": SPEEDUP_NEEDED}
    key = machine_key()
    cached = _read_cache(key)
    if cached is not None:
        return {**cached, "source": "cached"}
    record = measure(timer or time_op)
    _write_cache(key, record)
    return {**record, "source": "measured"}


def measure(timer: Callable[[str, str], float]) -> dict:
    """Time each op in fp32 and bf16; bf16 only where the layer estimate is >= SPEEDUP_NEEDED faster."""
    started = time.perf_counter()
    speedups = {op: timer(op, "float32") / max(timer(op, "bfloat16"), 1e-12) for op in OPS}
    return {
        "dtype": decide(speedups),
        "matmul_speedup": float(speedups["matmul"]),
        "attention_speedup": float(speedups["attention"]),
        "layer_speedup": layer_speedup(speedups),
        "threshold": SPEEDUP_NEEDED,
        "seconds": time.perf_counter() - started,
    }


def layer_speedup(speedups: dict) -> float:
    """fp32 / bf16 time of a layer spending MATMUL_SHARE of its fp32 time in matmuls and the rest in attention."""
    return float(1.0 / (MATMUL_SHARE / speedups["matmul"] + (1 - MATMUL_SHARE) / speedups["attention"]))


def decide(speedups: dict) -> str:
    return "bfloat16" if layer_speedup(speedups) >= SPEEDUP_NEEDED else "float32"


def time_op(op: str, dtype: str) -> float:
    """Best-of-REPS seconds of one op in `dtype`, after one untimed warm-up run."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    kind = getattr(torch, dtype)
    if op == "matmul":
        a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=gen).to(kind) for _ in range(2))
        run = lambda: a @ b  # noqa: E731
    else:
        q, k, v = (torch.randn(*ATTENTION_SHAPE, generator=gen).to(kind) for _ in range(3))
        run = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
    best = float("inf")
    with torch.inference_mode():
        run()
        for _ in range(REPS):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    return best


def machine_key() -> str:
    """CPU model name + torch version + the CPU's bf16-relevant flags and torch's vector capability."""
    import torch

    name, flags = _cpuinfo()
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    wanted = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    return f"{name}|torch {torch.__version__}|{capability}|{' '.join(wanted)}"


def _cpuinfo() -> tuple[str, set]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), set()
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name", platform.machine()), set(fields.get("flags", "").split())


def cache_path() -> Path:
    return paths.lorafair_cache_dir() / CACHE_FILE


def _read_cache(key: str) -> dict | None:
    """This machine's remembered probe, or None when the file is missing, unreadable or not a probe's record."""
    try:
        entry = json.loads(cache_path().read_text(encoding="utf-8")).get(key)
        if entry["dtype"] in ("float32", "bfloat16") and all(
            isinstance(entry.get(f"{op}_speedup"), float) for op in (*OPS, "layer")
        ):
            fields = ("dtype", "matmul_speedup", "attention_speedup", "layer_speedup", "threshold", "seconds")
            return {k: entry[k] for k in fields}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def _write_cache(key: str, record: dict) -> None:
    """Remember the probe; a cache that cannot be written only means probing again next time."""
    try:
        try:
            entries = json.loads(cache_path().read_text(encoding="utf-8"))
            entries = entries if isinstance(entries, dict) else {}
        except (OSError, ValueError):
            entries = {}
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(cache_path(), {**entries, key: record})
    except OSError:
        pass
