"""Fingerprints of a loaded base's frozen weights: the feature cache's key and the sweep's restore check.

The feature cache needs a key for "the frozen weights outside the head, as installed". Reading every
parameter in memory would page the whole memory-mapped checkpoint into the process — on Qwen2.5-0.5B the
embedding matrix alone is 0.54 GB of which a pass touches only the rows of the tokens it sees — and that
raised the compare's peak RSS by ~0.4 GB. So when the base is a local folder, the key is built from its
weight files instead, read through a small buffer (page cache, not this process's memory; core/hashing.py):

    files      the SHA-256 of each weight file's bytes, remembered per (path, size, mtime, inode) in
               `weight-files.json` beside the cache entries, so the next run of the same base hashes nothing
    model      every parameter's name, shape and dtype outside the head stack (another class or dtype misses)
    installed  the tensors the adapter installed outside the head stack (e.g. a saved `embed_tokens`):
               float64 (sum, sum of squares) of each, from memory — they are not in the files

A base that is not a folder of weight files (a hub id, a `.bin` checkpoint only) falls back to the
in-memory fingerprint of every parameter outside the head stack.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lorafair.core.hashing import file_sha256

CHUNK = 2**20  # elements per float64 chunk: a float64 copy of a whole embedding matrix would cost 8 bytes/entry
MEMO_ENTRIES = 256  # remembered file hashes (one per weight file of each base used)
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")  # the first with matches is what transformers loads


def moments(param) -> tuple[float, float]:
    """float64 (sum, sum of squares) of a tensor, accumulated over chunks (no whole-tensor float64 copy)."""
    import torch

    with torch.no_grad():
        flat, total, squares = param.detach().reshape(-1), 0.0, 0.0
        for start in range(0, flat.numel(), CHUNK):
            chunk = flat[start : start + CHUNK].double()
            total += float(chunk.sum())
            squares += float(chunk.square().sum())
    return total, squares


def in_memory(model, skip_modules: list[str]) -> str:
    """SHA-256 over every parameter's name, shape, dtype and moments, head stack left out."""
    prefixes = tuple(f"{m}." for m in skip_modules)
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        if not name.startswith(prefixes):
            digest.update(f"{name}|{tuple(param.shape)}|{param.dtype}|{moments(param)!r};".encode())
    return digest.hexdigest()


def weight_files(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    for pattern in _WEIGHT_PATTERNS:
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def of_base(model, skip_modules: list[str], base_folder, installed: dict, memo_file: Path | None) -> str:
    """The feature cache's weights key (see the module docstring); `installed`: name -> tensor the adapter set."""
    files = weight_files(base_folder) if base_folder else []
    if not files:
        return in_memory(model, skip_modules)
    memo = _read_memo(memo_file)
    known = len(memo)
    prefixes = tuple(f"{m}." for m in skip_modules)
    digest = hashlib.sha256(b"files-v1;")
    for path in files:
        digest.update(f"{path.name}|{file_sha256(path, memo)};".encode())
    for name, param in model.named_parameters():
        if not name.startswith(prefixes):
            digest.update(f"{name}|{tuple(param.shape)}|{param.dtype};".encode())
    params = dict(model.named_parameters())
    for name in sorted(installed):
        if not name.startswith(prefixes) and name in params:
            digest.update(f"installed {name}|{moments(params[name])!r};".encode())
    if memo_file is not None and len(memo) != known:
        _write_memo(memo_file, memo)
    return digest.hexdigest()


def _read_memo(memo_file: Path | None) -> dict:
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8")) if memo_file else {}
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _write_memo(memo_file: Path, memo: dict) -> None:
    """Atomic (a concurrent run reads the old memo or the new one; a lost entry is only hashed again)."""
    from lorafair.core import atomic

    if len(memo) > MEMO_ENTRIES:  # stale identities of rewritten files: start again from this run's
        memo = dict(list(memo.items())[-MEMO_ENTRIES:])
    try:
        atomic.write_json(memo_file, memo, indent=0)
    except OSError:
        pass  # the memo only saves time
