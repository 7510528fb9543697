"""Where lorafair keeps what it builds and caches, and the environment variables that move it.

    $LORAFAIR_CACHE                  the cache (default ~/.cache/lorafair): built-in assets, held-out rows,
                                     and features/ unless moved
    $LORAFAIR_FEATURE_CACHE          the frozen-pass feature cache's own folder (default $LORAFAIR_CACHE/features)
    $LORAFAIR_FEATURE_CACHE_BYTES    its size limit (models/feature_cache.py)

Every function reads the environment on each call, so tests can redirect it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lorafair.core.errors import LorafairError

CACHE_ENV = "LORAFAIR_CACHE"
FEATURE_CACHE_ENV = "LORAFAIR_FEATURE_CACHE"
FEATURE_CACHE_BYTES_ENV = "LORAFAIR_FEATURE_CACHE_BYTES"


def lorafair_cache_dir() -> Path:
    """`$LORAFAIR_CACHE`, default `~/.cache/lorafair`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lorafair").expanduser()


def feature_cache_dir() -> Path:
    """`$LORAFAIR_FEATURE_CACHE`, default `$LORAFAIR_CACHE/features`."""
    override = os.environ.get(FEATURE_CACHE_ENV)
    return Path(override).expanduser() if override else lorafair_cache_dir() / "features"


def feature_cache_variable() -> str:
    """The variable that placed the feature cache, as a user would write it (for messages)."""
    return f"${FEATURE_CACHE_ENV}" if os.environ.get(FEATURE_CACHE_ENV) else f"${CACHE_ENV}"


def unwritable(folder: Path) -> str | None:
    """Why `folder` cannot be used (None: it can): it is created, and a file made in it and removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return str(error.strerror or error)
    return None


def usable_cache_folder(folder: Path) -> Path:
    """`folder` (under the cache) created and proved writable, or one line naming it and `$LORAFAIR_CACHE`."""
    reason = unwritable(folder)
    if reason is not None:
        raise LorafairError(
            f"the lorafair cache '{lorafair_cache_dir()}' (${CACHE_ENV}) is not usable: cannot write in "
            f"'{folder}' ({reason}); set ${CACHE_ENV} to a writable folder"
        )
    return folder
