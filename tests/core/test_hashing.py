"""core/hashing.py: SHA-256 of files (streamed through a buffer, optionally remembered) and of folders."""

from __future__ import annotations

import hashlib

from lorafair.core import hashing


def test_bytes_hash_is_sha256():
    assert hashing.bytes_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_file_hash_is_sha256_of_the_bytes_and_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "READ_BYTES", 1000)  # several reads, the last one partial
    path = tmp_path / "w.safetensors"
    path.write_bytes(bytes(range(256)) * 10)
    memo: dict = {}
    assert hashing.file_sha256(path, memo) == hashlib.sha256(path.read_bytes()).hexdigest()
    (identity,) = memo
    memo[identity] = "remembered"
    assert hashing.file_sha256(path, memo) == "remembered"  # same size, mtime and inode: not read again
    path.write_bytes(b"other weights")
    assert hashing.file_sha256(path, memo) == hashlib.sha256(b"other weights").hexdigest()


def test_file_hash_without_memo_follows_the_content(tmp_path):
    path = tmp_path / "a.csv"
    for content in (b"", b"x", b"y" * 3_000_000):
        path.write_bytes(content)
        assert hashing.file_sha256(path) == hashlib.sha256(content).hexdigest()
        assert hashing.file_sha256(str(path)) == hashlib.sha256(content).hexdigest()


def test_folder_hash_covers_relative_paths_and_contents_in_sorted_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.arrow").write_bytes(b"rows")
    (tmp_path / "sub" / "a.json").write_bytes(b"{}")
    (tmp_path / "state.json").write_bytes(b"meta")
    expected = hashlib.sha256()
    for relative, content in (("b.arrow", b"rows"), ("state.json", b"meta"), ("sub/a.json", b"{}")):
        expected.update(relative.encode() + content)
    assert hashing.file_sha256(tmp_path) == expected.hexdigest()
    (tmp_path / "sub" / "a.json").rename(tmp_path / "sub" / "c.json")  # same bytes, another name
    assert hashing.file_sha256(tmp_path) != expected.hexdigest()
