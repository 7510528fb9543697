"""Broken surroundings: an unwritable output, a full disk, an unusable cache, cache entries swapped or
deleted under a running process, a label the evaluation data does not hold.

Each failure a user can meet is one line on stderr (exit 2) and fails before any model loads; nothing
written before is lost; the feature cache, an optimisation, never fails a run.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import pathlib
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from lorafair.cli import main
from lorafair.core import atomic
from lorafair.evaluation import frozen_pass
from lorafair.models import feature_cache
from lorafair.report import words

from conftest import make_top_layer_adapter, toy_rows, write_csv

FULL = "No space left on device"


def _compare_argv(setup, out, *extra, adapter=None, data=None) -> list[str]:
    return [
        "compare",
        "--adapter",
        str(adapter or setup.adapter),
        "--data",
        str(data or setup.data),
        "--output",
        str(out),
        "--variants",
        "B,A",
        "--bootstrap",
        "0",
        "--quiet",
        *extra,
    ]


def _error_line(capsys) -> str:
    """The one stderr line of a failed command (asserted to be exactly one, without a traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lorafair: error: "), err
    return err[0]


def _tree(folder: pathlib.Path) -> dict:
    """Every file under `folder` with its bytes (to prove an output untouched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _cached(report) -> list[bool]:
    return [bool(p.get("cached")) for p in report["forward_passes"] if p["kind"].startswith("frozen")]


def _probs(out) -> dict:
    with open(out / "predictions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k.startswith("prob_")}


def _assert_same_results(out, reference) -> None:
    ours, theirs = _probs(out), _probs(reference)
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-6, err_msg=key)
    mine, ref = (json.loads((o / "report.json").read_text()) for o in (out, reference))
    for variant in ref["variants"]:
        assert mine["variants"][variant]["metrics"] == ref["variants"][variant]["metrics"]


def _lorafair_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("lorafair") and r.levelno >= logging.WARNING]


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading any model fails the test: the checks under test must come before it."""
    import lorafair.models.modeling
    import lorafair.training.train

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the failing check")

    monkeypatch.setattr(lorafair.models.modeling, "load_base_classifier", refuse)
    monkeypatch.setattr(lorafair.models.modeling, "load_base_classifier_and_head_change", refuse)
    monkeypatch.setattr(lorafair.training.train, "load_base_classifier_and_head_change", refuse)


# ------------------------------------------------------------------------- 1. unwritable output, found first
def _commands(setup, out) -> dict:
    train = ["train", "--base-model", str(setup.base), "--data", str(setup.data), "--output", str(out), "--quiet"]
    return {
        "compare": _compare_argv(setup, out),
        "sweep": [*_compare_argv(setup, out), "--adapter", str(setup.zero_adapter)],
        "train": train,
        "train --seeds": [*train, "--seeds", "0,1"],
        "demo": ["demo", "--preset", "fast", "--output", str(out), "--quiet"],
    }


@pytest.mark.parametrize("command", ["compare", "sweep", "train", "train --seeds", "demo"])
def test_output_under_a_file_fails_before_any_work(command, llama_setup, tmp_path, capsys, no_model_load):
    blocker = tmp_path / "some_file"
    blocker.write_text("not a folder")
    out = blocker / "sub"
    assert main(_commands(llama_setup, out)[command]) == 2
    line = _error_line(capsys)
    assert f"'{blocker}' is a file, not a folder" in line and str(out) in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some_file"] and blocker.read_text() == "not a folder"


@pytest.mark.parametrize("command", ["compare", "train"])
def test_output_that_is_a_file_is_refused_even_with_overwrite(command, llama_setup, tmp_path, capsys, no_model_load):
    out = tmp_path / "out"
    out.write_text("mine")
    assert main([*_commands(llama_setup, out)[command], "--overwrite"]) == 2
    assert f"'{out}' exists and is a file, not a folder" in _error_line(capsys)
    assert out.read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_output_folder_that_refuses_a_new_entry_fails_first(llama_setup, tmp_path, capsys, monkeypatch, no_model_load):
    """os.access can say yes where the file system says no (a read-only mount, ACLs): the probe entry decides."""
    import tempfile

    parent = tmp_path / "readonly"
    parent.mkdir()
    real = tempfile.mkdtemp

    def refuse_in_parent(*args, dir=None, **kwargs):
        if dir is not None and pathlib.Path(dir) == parent:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", refuse_in_parent)
    assert main(_compare_argv(llama_setup, parent / "out")) == 2
    line = _error_line(capsys)
    assert f"'{parent}' is not writable (Read-only file system)" in line and "out'" in line, line
    assert list(parent.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_parent_fails_first(llama_setup, tmp_path, capsys, no_model_load):
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert main(_compare_argv(llama_setup, parent / "out")) == 2
        assert "no permission to write in" in _error_line(capsys)
    finally:
        parent.chmod(0o755)


# ------------------------------------------------------------------------------------ 2. the disk fills up
def _fill_disk_in_staging(monkeypatch) -> None:
    """Path.write_text into a staging folder (`.NAME.tmp-*`) writes 100 bytes, then ENOSPC."""
    real = pathlib.Path.write_text

    def write_text(self, data, *args, **kwargs):
        if ".tmp-" in self.parent.name and self.parent.name.startswith("."):
            with open(self, "w", encoding="utf-8") as handle:
                handle.write(data[:100])
            raise OSError(errno.ENOSPC, FULL)
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


@pytest.fixture
def full_disk_in_staging(monkeypatch):
    _fill_disk_in_staging(monkeypatch)


def test_disk_full_while_writing_reports_keeps_the_previous_output(llama_setup, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(_compare_argv(llama_setup, out)) == 0
    before = _tree(out)
    assert {"report.json", "report.md", "report.html", "predictions.csv"} <= before.keys()
    capsys.readouterr()
    _fill_disk_in_staging(monkeypatch)  # only for the second run
    assert main([*_compare_argv(llama_setup, out), "--overwrite", "--seed", "7"]) == 2
    line = _error_line(capsys)
    assert line == f"lorafair: error: could not write the reports to '{out}': {FULL} (the previous output is unchanged)"
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging (.out.tmp-*) or aside folder left


def test_disk_full_on_a_first_write_leaves_nothing(llama_setup, tmp_path, capsys, full_disk_in_staging):
    out = tmp_path / "new" / "out"
    assert main(_compare_argv(llama_setup, out)) == 2
    line = _error_line(capsys)
    assert line == f"lorafair: error: could not write the reports to '{out}': {FULL} (nothing was written)"
    assert list((tmp_path / "new").iterdir()) == []


def test_disk_full_while_publishing_an_adapter_is_one_line(llama_setup, tmp_path, capsys, full_disk_in_staging):
    out = tmp_path / "adapter"
    argv = ["train", "--base-model", str(llama_setup.base), "--data", str(llama_setup.data), "--output", str(out)]
    assert main([*argv, "--max-steps", "1", "--batch-size", "8", "--quiet"]) == 2
    line = _error_line(capsys)
    assert line == f"lorafair: error: could not write the adapter to '{out}': {FULL} (nothing was written)"
    assert not (out / "adapter_config.json").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".adapter")]


def test_a_failed_swap_puts_the_old_folder_and_its_carried_entries_back(tmp_path, monkeypatch):
    final = tmp_path / "final"
    (final / "checkpoints").mkdir(parents=True)
    (final / "checkpoints" / "step-1").write_text("ckpt")
    (final / "old.txt").write_text("old")
    real = os.replace

    def replace(src, dst):
        if pathlib.Path(dst) == final and ".tmp-" in pathlib.Path(src).name:
            raise OSError(errno.ENOSPC, FULL)
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match=FULL):
        with atomic.publish_folder(final, carry=["checkpoints"]) as staging:
            (staging / "new.txt").write_text("new")
    assert _tree(final) == {"checkpoints/step-1": b"ckpt", "old.txt": b"old"}
    assert [p.name for p in tmp_path.iterdir()] == ["final"]


class _FullFile:
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        self.handle.write(data[: self.room])
        raise OSError(errno.ENOSPC, FULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def __getattr__(self, name):
        return getattr(self.handle, name)


class _FullDiskOs:
    """`os` as atomic.py sees it, except that every file it writes fills the disk after 64 bytes."""

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        return _FullFile(os.fdopen(fd, *args, **kwargs), 64)


def test_a_feature_cache_entry_that_cannot_be_written_costs_nothing_but_a_note(llama_setup, tmp_path, caplog):
    reference = tmp_path / "reference"
    assert main(_compare_argv(llama_setup, reference, "--no-cache")) == 0
    cache = feature_cache.cache_dir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(atomic, "os", _FullDiskOs())
        with caplog.at_level(logging.INFO):
            assert main(_compare_argv(llama_setup, tmp_path / "out")) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    notes = [n for n in report["notes"] if n["kind"] == "cache_write_failed"]
    assert notes == [{"kind": "cache_write_failed", "folder": str(cache), "error": FULL}], report["notes"]
    assert "could not be written" in words.note_sentence(notes[0], "en")
    warnings = _lorafair_warnings(caplog)
    assert len(warnings) == 1 and "could not be written" in warnings[0], warnings
    assert not [p.name for p in cache.iterdir() if p.suffix in (".npz", ".tmp")]  # no partial entry
    _assert_same_results(tmp_path / "out", reference)
    assert main(_compare_argv(llama_setup, tmp_path / "again")) == 0  # the next run stores the entry, and uses it
    assert len(list(cache.glob("*.npz"))) == 1


# ---------------------------------------------------------------------------------- 3. an unusable cache
def _unusable(tmp_path, monkeypatch, variable: str) -> pathlib.Path:
    blocker = tmp_path / "cache_file"
    blocker.write_text("not a folder")
    if variable == "LORAFAIR_CACHE":
        monkeypatch.delenv("LORAFAIR_FEATURE_CACHE", raising=False)
    monkeypatch.setenv(variable, str(blocker / "cache"))
    return blocker


@pytest.mark.parametrize("variable", ["LORAFAIR_FEATURE_CACHE", "LORAFAIR_CACHE"])
def test_compare_runs_without_an_unusable_feature_cache(variable, llama_setup, tmp_path, monkeypatch, capsys, caplog):
    reference = tmp_path / "reference"
    assert main(_compare_argv(llama_setup, reference, "--no-cache")) == 0
    blocker = _unusable(tmp_path, monkeypatch, variable)
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        assert main(_compare_argv(llama_setup, tmp_path / "out")) == 0
    assert "Traceback" not in capsys.readouterr().err
    warnings = _lorafair_warnings(caplog)
    assert len(warnings) == 1 and f"${variable}" in warnings[0] and "Not a directory" in warnings[0], warnings
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (note,) = [n for n in report["notes"] if n["kind"] == "cache_off"]
    assert note["variable"] == f"${variable}" and note["folder"].startswith(str(blocker))
    sentence = words.note_sentence(note, "en")
    assert sentence.startswith("feature cache off") and f"(from ${variable})" in sentence and str(blocker) in sentence
    assert _cached(report) == [False]
    _assert_same_results(tmp_path / "out", reference)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_feature_cache_is_skipped(llama_setup, tmp_path, monkeypatch):
    folder = tmp_path / "ro-cache"
    folder.mkdir()
    folder.chmod(0o555)
    monkeypatch.setenv("LORAFAIR_FEATURE_CACHE", str(folder))
    try:
        assert main(_compare_argv(llama_setup, tmp_path / "out")) == 0
    finally:
        folder.chmod(0o755)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [n for n in report["notes"] if n["kind"] == "cache_off" and n["error"] == "Permission denied"]
    assert list(folder.iterdir()) == []


def test_a_builtin_asset_needs_the_cache_and_says_so(llama_setup, tmp_path, monkeypatch, capsys, no_model_load):
    blocker = _unusable(tmp_path, monkeypatch, "LORAFAIR_CACHE")
    expected = f"the lorafair cache '{blocker / 'cache'}' ($LORAFAIR_CACHE) is not usable"
    assert main(_compare_argv(llama_setup, tmp_path / "out", data="builtin:polarity-en")) == 2
    assert expected in _error_line(capsys)
    assert main(["assets", "fetch", "polarity-en"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lorafair: error: ") and expected in err[-1] and "Traceback" not in "".join(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache_file"]


def test_held_out_rows_need_the_cache_and_say_so(llama_setup, tmp_path, monkeypatch, capsys, no_model_load):
    from lorafair.core.hashing import file_sha256

    adapter = shutil.copytree(llama_setup.adapter, tmp_path / "adapter")
    record = {"spec": str(llama_setup.data), "path": str(llama_setup.data), "sha256": file_sha256(llama_setup.data)}
    run = {"label_names": ["neg", "pos"], "train_data": record, "eval_data": {"held_out_from": record["spec"]}}
    run["eval_data"]["indices"] = list(range(0, 48, 4))
    (adapter / "lorafair_run.json").write_text(json.dumps(run), encoding="utf-8")
    blocker = _unusable(tmp_path, monkeypatch, "LORAFAIR_CACHE")
    argv = ["quick", "--adapter", str(adapter), "--output", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert f"the lorafair cache '{blocker / 'cache'}' ($LORAFAIR_CACHE) is not usable" in line, line
    assert "Not a directory" in line and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 4. entries swapped or deleted under a run
def test_entries_swapped_under_their_names_are_not_used(llama_setup, tmp_path):
    cache = feature_cache.cache_dir()
    other = write_csv(toy_rows(48, seed=11), tmp_path / "other.csv")  # same size: the swap would fit silently
    assert main(_compare_argv(llama_setup, tmp_path / "one")) == 0
    (first,) = cache.glob("*.npz")
    assert main(_compare_argv(llama_setup, tmp_path / "two", data=other)) == 0
    (second,) = set(cache.glob("*.npz")) - {first}
    aside = cache / "aside"
    os.replace(first, aside)
    os.replace(second, first)
    os.replace(aside, second)  # each entry now holds the other's valid arrays and checksum

    assert main(_compare_argv(llama_setup, tmp_path / "again")) == 0
    assert main(_compare_argv(llama_setup, tmp_path / "fresh", "--no-cache")) == 0
    assert _cached(json.loads((tmp_path / "again" / "report.json").read_text())) == [False]
    _assert_same_results(tmp_path / "again", tmp_path / "fresh")
    assert main(_compare_argv(llama_setup, tmp_path / "again2", data=other)) == 0
    assert main(_compare_argv(llama_setup, tmp_path / "fresh2", "--no-cache", data=other)) == 0
    assert _cached(json.loads((tmp_path / "again2" / "report.json").read_text())) == [False]
    _assert_same_results(tmp_path / "again2", tmp_path / "fresh2")


def test_a_deleted_trunk_entry_makes_b_run_every_layer(llama_setup, tmp_path):
    adapter = make_top_layer_adapter(llama_setup.base, tmp_path / "top")  # layer 0 is shared with the frozen pass
    first = _run_report(_compare_argv(llama_setup, tmp_path / "first", adapter=adapter))
    assert _shared_layers(first) == 1  # recorded by the frozen pass and stored beside its features
    entries = {p.stem: feature_cache.load_arrays(p.stem) for p in feature_cache.cache_dir().glob("*.npz")}
    (trunk_key,) = [key for key, (arrays, _) in entries.items() if "features" not in arrays]
    (features_key,) = set(entries) - {trunk_key}
    # the trunk entry is the one frozen_pass keys from the features entry's key and the number of shared layers
    assert trunk_key == frozen_pass._trunk_key(features_key, SimpleNamespace(shared=1), None)
    (feature_cache.cache_dir() / f"{trunk_key}.npz").unlink()

    second = _run_report(_compare_argv(llama_setup, tmp_path / "second", adapter=adapter))
    assert _cached(second) == [True]  # the features were still there
    assert _shared_layers(second) == 0  # no recorded trunk: B ran every layer
    assert main(_compare_argv(llama_setup, tmp_path / "fresh", "--no-cache", adapter=adapter)) == 0
    _assert_same_results(tmp_path / "second", tmp_path / "fresh")


def _run_report(argv) -> dict:
    assert main(argv) == 0
    return json.loads((pathlib.Path(argv[argv.index("--output") + 1]) / "report.json").read_text())


def _shared_layers(report) -> int:
    (merged,) = [p for p in report["forward_passes"] if p["kind"] == "lora_eval"]
    return merged.get("shared_layers", 0)


def test_an_entry_vanishing_while_read_is_a_miss(llama_setup, tmp_path, caplog):
    assert main(_compare_argv(llama_setup, tmp_path / "first")) == 0
    (entry,) = feature_cache.cache_dir().glob("*.npz")

    real = np.load

    def vanished(file, *args, **kwargs):  # deleted between the is_file check and the read
        if pathlib.Path(file).parent == entry.parent:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(file))
        return real(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.INFO):
        patch.setattr(feature_cache.np, "load", vanished)
        assert main(_compare_argv(llama_setup, tmp_path / "second")) == 0
    assert not _lorafair_warnings(caplog)  # an ordinary miss, not a corrupted entry
    report = json.loads((tmp_path / "second" / "report.json").read_text())
    assert _cached(report) == [False]
    _assert_same_results(tmp_path / "second", tmp_path / "first")
    assert feature_cache.load_arrays(entry.stem) is not None  # the entry written again is whole


# -------------------------------------------------------------------------- 5. a label the data does not hold
EN = "The evaluation sample holds no example of neutral (1 of the head's 3 labels)"
ZH = "评估样本中没有标签 neutral 的样本（分类头共 3 个标签，缺 1 个）"


def _with_run_metadata(setup, tmp_path):
    adapter = shutil.copytree(setup.adapter, tmp_path / "adapter")
    (adapter / "lorafair_run.json").write_text(json.dumps({"label_names": ["neg", "neutral", "pos"]}))
    return adapter, []


def _with_named_base(setup, tmp_path):
    """No lorafair_run.json: the label names come from the base's config (id2label)."""
    base = shutil.copytree(setup.base, tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    config["id2label"] = {"0": "neg", "1": "neutral", "2": "pos"}
    config["label2id"] = {"neg": 0, "neutral": 1, "pos": 2}
    (base / "config.json").write_text(json.dumps(config))
    return setup.adapter, ["--base-model", str(base)]


@pytest.mark.parametrize("labels_from", [_with_run_metadata, _with_named_base], ids=["run-json", "base-config"])
def test_a_head_label_absent_from_the_data_is_a_check(labels_from, bert_setup, tmp_path, capsys):
    adapter, extra = labels_from(bert_setup, tmp_path)
    if labels_from is _with_named_base:
        assert not (pathlib.Path(adapter) / "lorafair_run.json").exists()
    data = write_csv(toy_rows(30, seed=5, classes=("neg", "pos")), tmp_path / "two.csv")
    out = tmp_path / "out"
    argv = _compare_argv(bert_setup, out, *extra, adapter=adapter, data=data)
    assert main([a for a in argv if a != "--quiet"]) == 0
    console = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["label_counts"] == {"neg": 15, "neutral": 0, "pos": 15}
    absent = [r for r in report["check_records"] if r["kind"] in ("absent_labels", "absent")]
    assert absent == [{"kind": "absent_labels", "labels": ["neutral"], "n_labels": 3}]
    assert EN in console and EN in (out / "report.md").read_text(encoding="utf-8")
    assert sum(EN in c for c in report["checks"]) == 1
    for lang, sentence in (("en", EN), ("zh", ZH)):
        for fmt in ("console", "md"):
            assert main(["report", str(out), "--lang", lang, "--format", fmt]) == 0
            assert sentence in capsys.readouterr().out, (lang, fmt)


def test_no_check_when_every_label_has_examples(bert_setup, tmp_path):
    out = tmp_path / "out"
    assert main(_compare_argv(bert_setup, out)) == 0
    report = json.loads((out / "report.json").read_text())
    assert min(report["data"]["label_counts"].values()) > 0
    assert not [r for r in report["check_records"] if r["kind"] == "absent_labels"]
