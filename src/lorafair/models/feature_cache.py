"""Frozen work kept across runs: the frozen base's pooled features of a tokenised set, on disk.

A second compare of another adapter of the same base on the same data need not run the frozen base
again: A's logits are the adapter's head applied to the cached head input (the features), A1 and R use
the features directly, the analysis the cached per-layer states. The key holds everything that decides
those arrays and nothing that does not (so another adapter's head hits):

    base weights  the base's weight files and what the adapter installed outside the head stack
                  (see weights_fingerprint.py: read without paging the checkpoint into memory)
    token ids     the SHA-256 of every example's ids (it already reflects --max-length truncation)
    padding       the pad token id and side (they decide which token a decoder pools)
    max length, dtype, device type, head-stack modules, layer pooling, lorafair's cache format

Entries live in `$LORAFAIR_CACHE/features/` (or `$LORAFAIR_FEATURE_CACHE`), one `.npz` each, written
through a temp file + rename (a concurrent run sees the old entry, the new one or none), carrying a
SHA-256 of their own arrays and of their meta, which holds the entry's own key: a truncated or corrupted
entry, or a valid entry of another key renamed over this one, is ignored (and rewritten); an entry deleted
while being read is a miss. The folder is kept under `$LORAFAIR_FEATURE_CACHE_BYTES` (default 4 GiB), least
recently used entries deleted first.

The cache is an optimisation, so it never fails a run: `unusable()` says once, before any work, whether
the folder can be used at all (the run then goes without it), and a caller treats an OSError of `store`
(a full disk) as "not stored": the temp file is removed, no partial entry is left.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorafair.core import paths

log = logging.getLogger(__name__)

FORMAT = 4  # bump when what an entry holds, or how it is computed, changes
DEFAULT_MAX_BYTES = 4 * 2**30


cache_dir = paths.feature_cache_dir  # the entries' folder: $LORAFAIR_FEATURE_CACHE or $LORAFAIR_CACHE/features


def unusable() -> dict | None:
    """Why the cache folder cannot be used, {"folder", "variable", "error"} (None: it can): it is created and an
    entry made in it and removed."""
    folder = cache_dir()
    reason = paths.unwritable(folder)
    if reason is None:
        return None
    return {"folder": str(folder), "variable": paths.feature_cache_variable(), "error": reason}


def max_bytes() -> int:
    try:
        return int(os.environ.get(paths.FEATURE_CACHE_BYTES_ENV, DEFAULT_MAX_BYTES))
    except ValueError:
        return DEFAULT_MAX_BYTES


def entry_key(**parts) -> str:
    """The entry's file name: a SHA-256 of its key parts (JSON, sorted)."""
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True).encode()).hexdigest()[:40]


@dataclass
class Entry:
    features: np.ndarray
    layers: np.ndarray | None
    batch_seconds: np.ndarray
    tokens: int
    feature_pooling: str


def _checksum(arrays: dict, meta: dict) -> str:
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def load_arrays(key: str) -> tuple[dict, dict] | None:
    """(arrays, meta) of an entry, or None when absent, unreadable, not matching its checksum or of another key."""
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:  # deleted (trimmed by another run) since the check: a miss; whatever is there now
        log.debug("feature cache entry %s vanished while read", path.name)  # may be a new entry: leave it
        return None
    except Exception as error:  # corrupted or half-written by a crashed run: rebuild it
        return _discard(path, error)
    try:
        meta, checksum = json.loads(str(arrays.pop("meta"))), str(arrays.pop("checksum"))
    except (KeyError, ValueError) as error:
        return _discard(path, error)
    if _checksum(arrays, meta) != checksum:
        return _discard(path, "checksum mismatch")
    if meta.pop("key", None) != key:  # a valid entry, but another one's (renamed or copied over this name)
        return _discard(path, "it is another entry's")
    with suppress(OSError):  # least recently *used* goes first when the folder is trimmed
        os.utime(path)
    return arrays, meta


def _discard(path: Path, why) -> None:
    log.warning("feature cache entry %s ignored (%s); it will be rebuilt", path.name, why)
    with suppress(OSError):
        path.unlink(missing_ok=True)
    return None


def store_arrays(key: str, arrays: dict, meta: dict) -> Path | None:
    """Write an entry atomically and trim the folder; None if it does not fit the size bound at all.

    The key goes into the checksummed meta, so `load_arrays` knows the entry is this key's and not another's.
    An OSError (a full disk) propagates after the temp file is removed: no partial entry is left.
    """
    from lorafair.core import atomic

    size = sum(np.asarray(a).nbytes for a in arrays.values())
    if size > max_bytes():
        log.info("feature cache: %.0f MiB entry exceeds the cache bound; not stored", size / 2**20)
        return None
    meta = {**meta, "key": key}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), checksum=np.array(_checksum(arrays, meta)), **arrays)
    path = atomic.write_bytes(cache_dir() / f"{key}.npz", buffer.getvalue())
    trim(keep=path)
    return path


def load(key: str) -> Entry | None:
    """The frozen pass's entry (see `Entry`), or None."""
    found = load_arrays(key)
    if found is None:
        return None
    arrays, meta = found
    return Entry(
        arrays["features"], arrays.get("layers"), arrays["batch_seconds"], meta["tokens"], meta["feature_pooling"]
    )


def store(key: str, entry: Entry) -> Path | None:
    arrays = {"features": entry.features, "batch_seconds": np.asarray(entry.batch_seconds, dtype=np.float64)}
    if entry.layers is not None:
        arrays["layers"] = entry.layers
    return store_arrays(key, arrays, {"tokens": int(entry.tokens), "feature_pooling": entry.feature_pooling})


def trim(keep: Path | None = None) -> None:
    """Delete least recently used entries until the folder fits `max_bytes()` (a racing delete is fine)."""
    entries = []
    for path in cache_dir().glob("*.npz"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total, limit = sum(size for _, size, _ in entries), max_bytes()
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path != keep:
            with suppress(OSError):  # trimming is best effort: an entry that stays only costs space
                path.unlink(missing_ok=True)
            total -= size
