"""SHA-256 of bytes, files and folders: the one place lorafair hashes what it reads or writes on disk.

A data file's hash is its identity in lorafair_run.json and in the held-out rows' cache; a base's weight
files are hashed for the feature cache's key (models/weights_fingerprint.py), with a memo so the next run
of the same base reads nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# One reusable read buffer: a weight file goes through the page cache, never whole into this process.
READ_BYTES = 16 * 2**20


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path, memo: dict | None = None) -> str:
    """SHA-256 of a file's bytes, or of a folder: each file's relative path then its bytes, in sorted order.

    `memo` (files only) maps a file's identity (resolved path, size, mtime, inode) to its hash: a file seen
    before and not changed since is not read again.
    """
    path = Path(path)
    if memo is None or path.is_dir():
        return _sha256_of(path)
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    if identity not in memo:
        memo[identity] = _sha256_of(path)
    return memo[identity]


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode())
            _read_into(digest, file)
    else:
        _read_into(digest, path)
    return digest.hexdigest()


def _read_into(digest, path: Path) -> None:
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(min(READ_BYTES, os.fstat(handle.fileno()).st_size + 1))  # a small file: a small buffer
        view = memoryview(buffer)
        while read := handle.readinto(buffer):
            digest.update(view[:read])
