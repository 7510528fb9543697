"""core/paths.py: the cache folders and the variables that move them; a folder that cannot be written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lorafair.core import paths
from lorafair.core.errors import LorafairError


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "c"))
    assert paths.lorafair_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LORAFAIR_CACHE")
    assert paths.lorafair_cache_dir() == Path.home() / ".cache" / "lorafair"


def test_feature_cache_sits_in_the_cache_unless_moved(monkeypatch, tmp_path):
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("LORAFAIR_FEATURE_CACHE", raising=False)
    assert paths.feature_cache_dir() == tmp_path / "c" / "features"
    assert paths.feature_cache_variable() == "$LORAFAIR_CACHE"
    monkeypatch.setenv("LORAFAIR_FEATURE_CACHE", str(tmp_path / "f"))
    assert paths.feature_cache_dir() == tmp_path / "f"
    assert paths.feature_cache_variable() == "$LORAFAIR_FEATURE_CACHE"


def test_a_writable_folder_is_created_and_left_empty(tmp_path):
    folder = tmp_path / "a" / "b"
    assert paths.unwritable(folder) is None
    assert paths.usable_cache_folder(folder) == folder
    assert folder.is_dir() and not list(folder.iterdir())


def test_a_folder_under_a_file_is_one_line_naming_the_variable(monkeypatch, tmp_path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "blocker" / "cache"))
    folder = paths.lorafair_cache_dir() / "models"
    assert paths.unwritable(folder) == os.strerror(errno.ENOTDIR)
    with pytest.raises(LorafairError) as raised:
        paths.usable_cache_folder(folder)
    message = str(raised.value)
    assert message.startswith(f"the lorafair cache '{tmp_path / 'blocker' / 'cache'}' ($LORAFAIR_CACHE) is not usable")
    assert f"cannot write in '{folder}'" in message and len(message.splitlines()) == 1
