"""Scale-out of the evaluation: shard the batches across processes, gather the results on every rank.

    torchrun --nproc-per-node 2 -m lorafair compare --adapter ADAPTER --data DATA
    accelerate launch --num_processes 2 [--cpu] -m lorafair compare --adapter ADAPTER --data DATA

Rank r runs batches r, r + N, r + 2N, ... of the *same* length-sorted batch list a single process
runs. Every example is therefore computed in exactly the batch (same neighbours, same padding) it
gets in a single-process run, so the gathered logits are bitwise those of one process and the report
is identical (given the same kernels: torchrun starts each worker with OMP_NUM_THREADS=1, and PyTorch
does not promise bitwise-equal CPU sums across thread counts). Round-robin over length-sorted batches
also balances the tokens per rank. Nothing is
padded in or repeated to even out the shards (unlike `DistributedSampler`), so there is no duplicated
tail to drop. Results are gathered on every rank (they are small: n x classes logits, n x hidden
features), so the probe and the head arithmetic run unchanged; only rank 0 builds and writes the report.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

import numpy as np

from lorafair.models.inference import PassResult, run_pass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank and world size as set by torchrun / accelerate launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """Each rank takes its own GPU (cuda -> cuda:LOCAL_RANK); an explicit cuda:N is kept."""
        return f"cuda:{self.local_rank}" if self.enabled and device == "cuda" else device

    def shard(self, batches: list) -> list:
        return shard(batches, self.rank, self.world_size)

    def run_pass(self, model, encoded, batches, **kwargs) -> PassResult:
        """`inference.run_pass` over this rank's share of `batches`, gathered into the full result."""
        if not self.enabled:
            return run_pass(model, encoded, batches, **kwargs)
        kwargs["quiet"] = kwargs.get("quiet", False) or not self.is_main  # one progress bar, not N
        mine = self.shard(batches)
        part = run_pass(model, encoded, mine, **kwargs)
        return assemble(all_gather_object(local_part(part, mine)), len(encoded.input_ids))


def context_from_env() -> Context:
    env = os.environ
    return Context(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))


def init(device: str) -> Context:
    """Join the process group that torchrun / accelerate launch describe in the environment, if any.

    gloo on CPU, NCCL on CUDA. A group someone else already started (e.g. by `Trainer`) is reused.
    """
    ctx = context_from_env()
    if not ctx.enabled:
        return ctx
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        if backend == "nccl":  # all_gather_object stages its bytes on the current device
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
        atexit.register(_destroy)
        log.info("rank %d of %d joined the %s process group", ctx.rank, ctx.world_size, backend)
    return ctx


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard(batches: list, rank: int, world_size: int) -> list:
    """Round-robin share of the batch list: deterministic, disjoint, and together exactly `batches`."""
    return list(batches[rank::world_size])


def local_part(result: PassResult, batches: list) -> dict:
    """This rank's rows of a pass (run_pass fills only the rows of the batches it ran) for gathering."""
    idx = np.concatenate(batches).astype(np.int64) if batches else np.empty(0, dtype=np.int64)
    has_rows = len(idx) > 0
    return {
        "indices": idx,
        "logits": result.logits[idx] if has_rows else None,
        "features": result.features[idx] if has_rows and result.features is not None else None,
        "batch_seconds": list(result.batch_seconds),
        "tokens": int(result.tokens),
        "peak_memory_bytes": result.peak_memory_bytes,
        "feature_pooling": result.feature_pooling,
    }


def assemble(parts: list[dict], n: int) -> PassResult:
    """Put every rank's rows back in input order; fail if an example is missing or appears twice.

    Speed: latencies are pooled over all batches; the pass takes as long as its slowest rank.
    """
    indices = np.concatenate([p["indices"] for p in parts])
    counts = np.bincount(indices, minlength=n) if len(indices) else np.zeros(n, dtype=np.int64)
    if len(counts) != n or not np.all(counts == 1):
        raise RuntimeError(
            f"sharded pass covered {int((counts > 0).sum())} of {n} examples ({int((counts > 1).sum())} more than once)"
        )
    filled = [p for p in parts if p["logits"] is not None]
    logits = np.empty((n, filled[0]["logits"].shape[1]), dtype=np.float32)
    with_features = [p for p in filled if p["features"] is not None]
    features = np.empty((n, with_features[0]["features"].shape[1]), dtype=np.float32) if with_features else None
    for part in filled:
        logits[part["indices"]] = part["logits"]
        if features is not None:
            features[part["indices"]] = part["features"]
    peaks = [p["peak_memory_bytes"] for p in parts if p["peak_memory_bytes"] is not None]
    return PassResult(
        logits,
        features,
        batch_seconds=[s for p in parts for s in p["batch_seconds"]],
        tokens=sum(p["tokens"] for p in parts),
        peak_memory_bytes=max(peaks) if peaks else None,
        elapsed=max(sum(p["batch_seconds"]) for p in parts),
        feature_pooling=next((p.get("feature_pooling") for p in filled if p.get("feature_pooling")), None),
    )


def all_gather_object(obj) -> list:
    import torch.distributed as dist

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
