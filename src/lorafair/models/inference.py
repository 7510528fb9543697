"""Tokenise once, batch once, run forward passes: the shared inputs of every variant.

Batches are sorted by length and padded dynamically (on CUDA to a multiple of 8), so no compute is spent
on padding to `max_length`; results are put back in input order. Each pass can also capture the
head's input, pooled exactly as the classifier pools it, i.e. the frozen *features* of the backbone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from lorafair.models import layer_states
from lorafair.models.pooling import pool_head_input, pool_hidden_states

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    """Token ids (and token type ids for pairs) of every example, unpadded, in input order."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    seconds: float = 0.0
    truncated: int = 0  # examples longer than max_length tokens (cut to max_length)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def sha256(self) -> str:
        """One hash of all token ids: proves that every variant saw the same inputs."""
        digest = hashlib.sha256()
        for ids in self.input_ids:
            digest.update(np.asarray(ids, dtype=np.int64).tobytes())
            digest.update(b"|")
        return digest.hexdigest()


def tokenize(tokenizer, texts, text_pairs=None, *, max_length: int) -> Encoded:
    """Token ids of every example, truncated to `max_length`; counts how many needed truncating.

    The texts are tokenised whole first (to count the long ones with this very tokenizer); only those
    longer than `max_length` are tokenised again with the tokenizer's own truncation (pairs: longest first).
    """
    from transformers.utils import logging as hf_logging

    start = time.perf_counter()
    texts = list(texts)
    pairs = list(text_pairs) if text_pairs is not None else None
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "sequence longer than the model's maximum": we truncate right after
    try:
        out = tokenizer(texts, pairs, truncation=False, padding=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    input_ids = list(out["input_ids"])
    token_types = list(out["token_type_ids"]) if pairs is not None and "token_type_ids" in out else None
    long = [i for i, ids in enumerate(input_ids) if len(ids) > max_length]
    if long:
        cut = tokenizer(
            [texts[i] for i in long],
            [pairs[i] for i in long] if pairs is not None else None,
            truncation=True,
            max_length=max_length,
            padding=False,
        )
        for row, i in enumerate(long):
            input_ids[i] = cut["input_ids"][row]
            if token_types is not None:
                token_types[i] = cut["token_type_ids"][row]
    return Encoded(input_ids, token_types, time.perf_counter() - start, len(long))


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first, so OOM shows up at once)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(encoded: Encoded, indices, *, pad_token_id: int, padding_side: str = "right", multiple: int = 8):
    """Pad one batch to its longest member (rounded up to `multiple`); returns model kwargs as tensors."""
    import torch

    rows = [encoded.input_ids[i] for i in indices]
    width = max(len(r) for r in rows)
    width = -(-width // multiple) * multiple if multiple else width
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long) if encoded.token_type_ids is not None else None
    for row, tokens in enumerate(rows):
        span = slice(width - len(tokens), width) if padding_side == "left" else slice(0, len(tokens))
        ids[row, span] = torch.tensor(tokens, dtype=torch.long)
        mask[row, span] = 1
        if types is not None:
            types[row, span] = torch.tensor(encoded.token_type_ids[indices[row]], dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if padding_side == "left":  # positions must start at each row's first real token, as without padding
        batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def _capture_head_inputs(head, captured: list) -> list:
    """Forward pre-hooks that record (module, first input) of every head module that runs."""
    if head is None:
        return []
    modules = list(head) if isinstance(head, (list, tuple)) else [head]

    def record(module, args, kwargs):
        value = args[0] if args else next(iter(kwargs.values()), None)
        captured.append((module, value))

    return [module.register_forward_pre_hook(record, with_kwargs=True) for module in modules]


@dataclass
class PassResult:
    """Logits (and pooled head inputs) in input order, with per-batch timings."""

    logits: np.ndarray
    features: np.ndarray | None
    batch_seconds: list[float] = field(default_factory=list)
    tokens: int = 0
    peak_memory_bytes: int | None = None
    elapsed: float | None = None  # sharded pass: the slowest rank's time (ranks run side by side)
    feature_pooling: str | None = None  # "last_non_pad", "first" or "vector" (see pool_head_input)
    layers: np.ndarray | None = None  # (L + 1, n, d) pooled hidden_states[l] when run_pass(layer_pool=...)
    trained_trunk_layers: int = 0  # layers 0..k-1 replayed from the states `lorafair train` recorded (frozen_pass)

    def speed(self, n: int) -> dict:
        total = float(self.elapsed if self.elapsed is not None else sum(self.batch_seconds))
        lat = np.asarray(self.batch_seconds) * 1000.0
        return {
            "qps": n / total if total > 0 else None,
            "tokens_per_s": self.tokens / total if total > 0 else None,
            "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
            "latency_ms_p95": float(np.percentile(lat, 95)) if len(lat) else None,
            "seconds": total,
            "peak_memory_bytes": self.peak_memory_bytes,
        }


def run_pass(
    model,
    encoded: Encoded,
    batches,
    *,
    pad_token_id: int,
    padding_side: str = "right",
    head=None,
    device="cpu",
    warmup: bool = True,
    desc: str = "",
    quiet: bool = False,
    layer_pool: str | None = None,
    trunk=None,
) -> PassResult:
    """One forward pass over all batches under `torch.inference_mode()`.

    `head`: the head module, or the modules of the head stack, whose input to capture: the features,
    pooled where the head pools (see `pool_head_input`). A CUDA out-of-memory error halves the failing
    batch and carries on, saying so. `layer_pool` ("last" | "first", see `pool_hidden_states`) also keeps
    every layer's hidden state pooled at that position (for the layer-wise analysis), pooled by hooks as
    the layers run where they reproduce `output_hidden_states` exactly (layer_states.py). `trunk`: a
    `trunk.TrunkStates` recorder (keep each example's output of the shared layers) or replayer (skip them).
    """
    import torch

    captured: list = []
    hooks = _capture_head_inputs(head, captured)
    result = PassResult(np.empty(0), None)
    is_cuda = str(device).startswith("cuda")
    if is_cuda:
        torch.cuda.reset_peak_memory_stats()
    pooler = _layer_pooler(model, layer_pool)
    forward = _BatchForward(model, encoded, device, pad_token_id, padding_side, captured, result)
    forward.trunk, forward.pooler, forward.layer_pool = trunk, pooler, layer_pool
    try:
        with torch.inference_mode(), _or_null(trunk), _or_null(pooler):
            full_states = layer_pool is not None and not _hooks_match(model, pooler, forward, batches)
            if warmup and batches:
                # the shortest batch: pays one-off kernel/alloc costs outside the timing
                forward(batches[-1][:2], full_states)
            _forward_batches(forward, batches, result, is_cuda, full_states, desc=desc, quiet=quiet)
    finally:
        for hook in hooks:
            hook.remove()
    if is_cuda:
        result.peak_memory_bytes = int(torch.cuda.max_memory_allocated())
    return result


def _layer_pooler(model, layer_pool: str | None):
    """Hooks that pool every layer's state as it runs, or None (no `layer_pool`, or no layer list found:
    then `output_hidden_states` alone)."""
    pooler = layer_states.LayerPooler(model, layer_pool) if layer_pool else None
    return pooler if pooler is not None and pooler.usable else None


def _or_null(context):
    return context if context is not None else contextlib.nullcontext()


def _forward_batches(forward, batches, result: PassResult, is_cuda: bool, full_states: bool, *, desc, quiet) -> None:
    """The timed loop: every batch once (halved after a CUDA OOM), its rows stored in input order in `result`."""
    import torch
    from tqdm.auto import tqdm

    n = len(forward.encoded.input_ids)
    logits_out: np.ndarray | None = None
    features_out: np.ndarray | None = None
    layers_out: np.ndarray | None = None
    queue = list(batches)
    bar = tqdm(total=n, desc=desc or "forward", unit="ex", disable=quiet, leave=False)
    while queue:
        batch_idx = queue.pop(0)
        try:
            seconds, (logits, feats, tokens, layers) = _timed(forward, batch_idx, is_cuda, full_states)
        except torch.cuda.OutOfMemoryError:
            _halve_after_oom(queue, batch_idx)
            continue
        result.batch_seconds.append(seconds)
        logits_out = _store(logits_out, n, batch_idx, logits)
        if feats is not None:
            features_out = _store(features_out, n, batch_idx, feats)
        if layers is not None:
            layers_out = _store(layers_out, n, batch_idx, layers, layered=True)
        result.tokens += tokens
        bar.update(len(batch_idx))
    bar.close()
    result.logits = logits_out if logits_out is not None else np.empty((0, 0), dtype=np.float32)
    result.features = features_out
    result.layers = layers_out


class _BatchForward:
    """One batch through the model: collate, run, return (logits, pooled head input, real tokens, layer states)."""

    def __init__(self, model, encoded, device, pad_token_id, padding_side, captured, result):
        self.model, self.encoded, self.device, self.captured, self.result = model, encoded, device, captured, result
        self.pad_token_id, self.padding_side = pad_token_id, padding_side
        # Widths rounded up to 8 suit GPU kernels; on a CPU every padded column is paid for in full (SmolLM2 on
        # the polarity sentences, median 24 tokens: rounding to 8 added ~13% of columns), so pad to the longest.
        self.pad_multiple = 8 if str(device).startswith("cuda") else 1
        self.trunk = self.pooler = self.layer_pool = None

    def __call__(self, batch_idx, hidden_states: bool = False):
        pad = self.pad_token_id
        collated = collate(
            self.encoded, batch_idx, pad_token_id=pad, padding_side=self.padding_side, multiple=self.pad_multiple
        )
        batch = {k: v.to(self.device) for k, v in collated.items()}
        self.captured.clear()
        if self.trunk is not None:
            self.trunk.batch(batch_idx, batch["attention_mask"])
        if self.pooler is not None:
            self.pooler.batch(batch["input_ids"], pad)
        out = self.model(**batch, **({"output_hidden_states": True} if hidden_states else {}))
        layers = None
        if hidden_states:
            layers = pool_hidden_states(out.hidden_states, batch["input_ids"], pad, self.layer_pool)
        elif self.pooler is not None:
            layers = self.pooler.states()
        feats = None
        if self.captured:  # the first head module that ran received the features
            feats, self.result.feature_pooling = pool_head_input(*self.captured[0], batch["input_ids"], pad)
        return out.logits, feats, int(batch["attention_mask"].sum()), layers


def _hooks_match(model, pooler, forward, batches) -> bool:
    """Pool layer states with hooks (small) if they equal output_hidden_states here (see layer_states.py)."""
    if pooler is None or not batches:
        return False

    def run_both():
        *_, reference = forward(batches[-1][:2], hidden_states=True)  # the hooks run in the same forward
        try:
            return pooler.states(), reference
        except RuntimeError:  # a state the hooks did not see
            return None, reference

    return layer_states.hooks_match(model, run_both)


def _timed(forward, batch_idx, is_cuda: bool, full_states: bool = False):
    """Seconds of one batch, logits copied to the host inside the timing (as a user's loop would)."""
    import torch

    if is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    logits, feats, tokens, layers = forward(batch_idx, full_states)
    logits = logits.float().cpu().numpy()
    if is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, (logits, feats, tokens, layers)


def _halve_after_oom(queue: list, batch_idx) -> None:
    """CUDA out of memory: put the batch back as two halves (a single example that does not fit re-raises)."""
    import torch

    if len(batch_idx) == 1:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory on a single example")
    half = len(batch_idx) // 2
    log.warning("CUDA out of memory at batch size %d: halving to %d and continuing", len(batch_idx), half)
    torch.cuda.empty_cache()
    queue[:0] = [batch_idx[:half], batch_idx[half:]]


def _store(out: np.ndarray | None, n: int, batch_idx, values, *, layered: bool = False) -> np.ndarray:
    """Write one batch's rows into the pass-wide float32 array (allocated on first use), in input order."""
    values = values if isinstance(values, np.ndarray) else values.float().cpu().numpy()
    if layered:  # (L + 1, batch, d) -> (L + 1, n, d)
        out = np.empty((values.shape[0], n, values.shape[-1]), dtype=np.float32) if out is None else out
        out[:, batch_idx] = values
    else:
        out = np.empty((n, values.shape[-1]), dtype=np.float32) if out is None else out
        out[batch_idx] = values
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted.astype(np.float64))
    return exp / exp.sum(axis=1, keepdims=True)
