"""Atomic writes: a reader sees the old file (or folder) or the new one, never half of either.

    from lorafair import atomic
    atomic.write_json(out / "report.json", report)
    with atomic.publish_folder(out) as staging:   # fill `staging`; it replaces `out` on success
        (staging / "report.md").write_text(markdown)

Files go to a temp file in the same folder (same file system, so `os.replace` is a rename),
flushed and fsync'ed before the rename. A folder cannot be swapped in one rename when the
target exists, so the old one is first renamed aside and deleted after the new one is in place
(and renamed back if the new one cannot be moved in).

A command checks its output with `check_output` before any heavy work (a run must not compute for an
hour and then find that it cannot write), and publishes it with `publish_output`, which turns an
OSError while writing (a full disk) into one line for the user.
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

from lorafair.core.errors import LorafairError

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
    (e.g. training checkpoints). On an error in the block, or in the swap, the staging folder is deleted
    and `final` is left exactly as it was. The staging folder is made with the process umask, like any folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(final, "tmp")
    staging.mkdir()
    try:
        yield staging
        old = _swap_in(staging, final, carry)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _swap_in(staging: Path, final: Path, carry: Iterable[str]) -> Path | None:
    """Move `carry` entries across and `staging` into place; the old folder's new name, to delete, if any.

    On a failure every step already taken is undone (the carried entries go back), so `final` is unchanged.
    """
    carried = []
    try:
        for name in carry:
            if (final / name).exists():
                os.replace(final / name, staging / name)
                carried.append(name)
        if not final.exists():
            os.replace(staging, final)
            return None
        old = _sibling(final, "old")
        os.replace(final, old)
        try:
            os.replace(staging, final)
        except BaseException:
            os.replace(old, final)
            raise
        return old
    except BaseException:
        for name in carried:
            os.replace(staging / name, final / name)
        raise


@contextmanager
def publish_output(final: str | os.PathLike, what: str, carry: Iterable[str] = ()) -> Iterator[Path]:
    """`publish_folder` for a command's output: an OSError while writing it (a full disk, a folder made
    read-only meanwhile) becomes one LorafairError line, e.g. "could not write the reports to 'out': No
    space left on device (the previous output is unchanged)". Other errors keep their traceback."""
    final, carry = Path(final), list(carry)
    # a folder holding only what is carried (this run's checkpoints) is no previous output
    existed = os.path.isdir(final) and any(entry.name not in carry for entry in final.iterdir())
    try:
        with publish_folder(final, carry) as staging:
            yield staging
    except OSError as error:
        kept = "the previous output is unchanged" if existed else "nothing was written"
        raise LorafairError(f"could not write {what} to '{final}': {error.strerror or error} ({kept})") from error


# ------------------------------------------------------------------------------ checked before any work
def check_output(
    output: str | os.PathLike,
    overwrite: bool,
    *,
    what: str = "output folder",
    hint: str = "pass --overwrite to replace it",
) -> Path:
    """Refuse, before any heavy work, an output folder that could not be written at the end.

    The output must not be a file; its nearest existing ancestor must be a folder; an existing non-empty
    output needs `overwrite` (`hint` says how to give it); the folder that receives the output (and an
    existing output itself, whose contents are replaced) must be writable: asked of the OS and proved by
    creating and removing an entry, since permissions are not all a mount can refuse (read-only, ACLs).
    """
    path = Path(output)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise LorafairError(f"{what} '{path}' exists and is a file, not a folder")
    ancestor = _nearest_existing(path.parent)
    if not os.path.isdir(ancestor):
        raise LorafairError(f"cannot create {what} '{path}': '{ancestor}' is a file, not a folder")
    existing = os.path.isdir(path)
    if existing and not overwrite and not _is_empty(path, what):
        raise LorafairError(f"{what} '{path}' already exists and is not empty; {hint}")
    for folder in (ancestor, path) if existing else (ancestor,):
        _check_writable(folder, f"cannot write {what} '{path}'")
    return path


def _is_empty(folder: Path, what: str) -> bool:
    try:
        return not any(folder.iterdir())
    except OSError as error:
        raise LorafairError(f"cannot read {what} '{folder}' ({error.strerror or error})") from error


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _check_writable(folder: Path, failure: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LorafairError(f"{failure}: no permission to write in '{folder}'")
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".lorafair-probe-"))
    except OSError as error:
        raise LorafairError(f"{failure}: '{folder}' is not writable ({error.strerror or error})") from error
