"""lorafair.core.atomic: a reader sees the old or the new content, never a mix; failures leave no debris."""

from __future__ import annotations

import json
import os

import pytest

from lorafair.core import atomic


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_text_and_json_replace_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "report.json"
    atomic.write_json(path, {"labels": ["负面", "正面"], "n": 3})
    assert json.loads(path.read_text(encoding="utf-8")) == {"labels": ["负面", "正面"], "n": 3}
    assert "负面" in path.read_text(encoding="utf-8")  # kept readable, not \u escapes
    atomic.write_text(path, "second")
    assert path.read_text() == "second" and _entries(path.parent) == ["report.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(atomic.FILE_MODE)
    atomic.write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(path, "new")
    assert path.read_text() == "old" and _entries(tmp_path) == ["out.txt"]


def test_publish_folder_swaps_in_and_carries_named_entries(tmp_path):
    final = tmp_path / "adapter"
    (final / "checkpoints").mkdir(parents=True)
    (final / "checkpoints" / "step-1").write_text("ckpt")
    (final / "stale.txt").write_text("from the old run")
    with atomic.publish_folder(final, carry=["checkpoints", "absent"]) as staging:
        assert staging.parent == tmp_path and staging != final and not any(staging.iterdir())
        (staging / "new.txt").write_text("new")
    assert _entries(final) == ["checkpoints", "new.txt"]
    assert (final / "checkpoints" / "step-1").read_text() == "ckpt"
    assert _entries(tmp_path) == ["adapter"]  # old folder and staging gone


def test_publish_folder_error_leaves_the_old_folder_untouched(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="render failed"):
        with atomic.publish_folder(final) as staging:
            (staging / "half.json").write_text("{")
            raise RuntimeError("render failed")
    assert _entries(final) == ["keep.txt"] and (final / "keep.txt").read_text() == "mine"
    assert _entries(tmp_path) == ["out"]


def test_publish_folder_creates_a_new_folder_with_the_umask(tmp_path):
    final = tmp_path / "deep" / "new"
    old_umask = os.umask(0o022)
    try:
        with atomic.publish_folder(final) as staging:
            (staging / "a").write_text("1")
    finally:
        os.umask(old_umask)
    assert _entries(final) == ["a"] and oct(final.stat().st_mode & 0o777) == oct(0o755)
