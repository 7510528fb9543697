"""Atomic writes: a reader sees the old file (or folder) or the new one, never half of either.

    from lorafair import atomic
    atomic.write_json(out / "report.json", report)
    with atomic.publish_folder(out) as staging:   # fill `staging`; it replaces `out` on success
        (staging / "report.md").write_text(markdown)

Files go to a temp file in the same folder (same file system, so `os.replace` is a rename),
flushed and fsync'ed before the rename. A folder cannot be swapped in one rename when the
target exists, so the old one is first renamed aside and deleted after the new one is in place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644  # mkstemp creates 0600; outputs are meant to be read like any other file


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temp file + rename; the parent folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | os.PathLike, data, *, indent: int = 2, default=None, trailing_newline: bool = True) -> Path:
    """JSON as UTF-8, non-ASCII kept readable (labels and conclusions may be Chinese)."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=default)
    return write_text(path, text + "\n" if trailing_newline else text)


def _sibling(final: Path, kind: str) -> Path:
    """A fresh name beside `final` (same file system), hidden, unique to this process and moment."""
    return final.parent / f".{final.name}.{kind}-{os.getpid()}-{time.time_ns()}"


@contextmanager
def publish_folder(final: str | os.PathLike, carry: Iterable[str] = ()) -> Iterator[Path]:
    """Yield an empty staging folder beside `final`; when the block ends without error it becomes `final`.

    `carry` names entries of an existing `final` that move into the new folder just before the swap
    (e.g. training checkpoints). On an error in the block the staging folder is deleted and `final`
    is left exactly as it was. The staging folder is made with the process umask, like any folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(final, "tmp")
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name in carry:
        if (final / name).exists():
            os.replace(final / name, staging / name)
    if final.exists():
        old = _sibling(final, "old")
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
