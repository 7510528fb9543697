"""lorafair.data.adapter_data: default evaluation data from lorafair_run.json, and checks when the data is another task."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from lorafair.cli import main
from lorafair.core.errors import LorafairError
from lorafair.data import run_metadata
from lorafair.data.adapter_data import FALLBACK_DATA, default_eval_data, task_records
from lorafair.report import words

from conftest import toy_rows, write_csv

ROOT = Path(__file__).resolve().parents[2]
HAS_SNOWNLP = importlib.util.find_spec("snownlp") is not None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("lorafair-cache")
        patch.setenv("LORAFAIR_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def trained(llama_setup, cache, tmp_path_factory):
    """A real `lorafair train` run holding out a quarter of the toy data."""
    from lorafair.training.train import TrainConfig, train_model

    out = tmp_path_factory.mktemp("trained") / "adapter"
    result = train_model(
        TrainConfig(
            base_model=str(llama_setup.base),
            data=str(llama_setup.data),
            eval_fraction=0.25,
            max_steps=1,
            batch_size=8,
            output=str(out),
            quiet=True,
        )
    )
    return result


def _adapter_with(tmp_path, metadata: dict | None) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    if metadata is not None:
        (folder / "lorafair_run.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_held_out_rows_are_exactly_the_recorded_ones(trained, llama_setup):
    held = trained.metadata.eval_data.indices
    chosen = default_eval_data(trained.output_dir)
    with open(llama_setup.data, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = [{"text": rows[i]["text"], "label": rows[i]["label"]} for i in held]
    rest = [{"text": r["text"], "label": r["label"]} for i, r in enumerate(rows) if i not in set(held)]
    assert len(held) == 12 and _jsonl(chosen.data) == expected
    assert _jsonl(chosen.probe_data) == rest  # A1's probe never sees an evaluation row
    assert chosen.columns == {"text_column": "text", "label_column": "label"} and not chosen.fallback
    assert chosen.compare_argv() == [
        "--data",
        chosen.data,
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--probe-data",
        chosen.probe_data,
    ]
    assert default_eval_data(trained.output_dir) == chosen  # the second call reuses the written files


def test_quick_without_data_evaluates_on_the_held_out_part(trained, tmp_path, capsys):
    out = tmp_path / "quick"
    assert (
        main(
            [
                "quick",
                "--adapter",
                str(trained.output_dir),
                "--output",
                str(out),
                "--variants",
                "B,A,A1",
                "--bootstrap",
                "50",
                "--quiet",
            ]
        )
        == 0
    )
    assert "evaluating on the 12 rows the adapter held out of" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["n"] == 12 and report["data"]["source"] == default_eval_data(trained.output_dir).data
    probe_notes = [n for n in report["notes"] if n["kind"] == "probe_data"]
    assert probe_notes == [
        {"kind": "probe_data", "origin": "option", "source": probe_notes[0]["source"], "examples": 36}
    ]
    assert "--probe-data" in words.note_sentence(probe_notes[0], "en") and "36 examples" in words.note_sentence(
        probe_notes[0], "en"
    )
    assert not [c for c in report["checks"] if "task" in c or "training data" in c], report["checks"]


def test_other_file_is_flagged_in_the_report(trained, tmp_path):
    other = write_csv(toy_rows(20, seed=9), tmp_path / "elsewhere.csv")
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--adapter",
                str(trained.output_dir),
                "--data",
                str(other),
                "--output",
                str(out),
                "--variants",
                "B,A",
                "--bootstrap",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    checks = json.loads((out / "report.json").read_text())["checks"]
    assert [c for c in checks if "is not the adapter's recorded task" in c and "elsewhere.csv" in c], checks


@pytest.mark.skipif(not HAS_SNOWNLP, reason="pip install snownlp==0.12.3 (demo extra)")
def test_seed_script_falls_back_for_an_adapter_that_records_nothing(llama_setup, cache, tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    import test_fair_comparison

    assert (
        test_fair_comparison.main(
            [
                "--model_path",
                str(llama_setup.adapter),
                "--num_samples",
                "16",
                "--output_dir",
                str(tmp_path / "fc"),
                "--lang",
                "en",
            ]
        )
        == 0
    )
    assert f"evaluating on {FALLBACK_DATA}, the seed's default" in capsys.readouterr().out
    (run,) = (tmp_path / "fc").iterdir()
    report = json.loads((run / "report.json").read_text())
    assert report["config"]["data"] == FALLBACK_DATA
    assert [c for c in report["checks"] if "records no training data" in c], report["checks"]


def test_test_split_of_the_training_set_comes_first(tmp_path):
    held = {"held_out_from": "train_data", "indices": [0]}
    adapter = _adapter_with(
        tmp_path, {"train_data": {"spec": "builtin:polarity-en:train", "path": "x"}, "eval_data": held}
    )
    chosen = default_eval_data(adapter)
    assert (chosen.data, chosen.split, chosen.probe_data) == ("builtin:polarity-en:test", None, None)


def test_recorded_eval_file_and_datasetdict_test_split(tmp_path):
    import datasets

    evaluation = write_csv(toy_rows(6), tmp_path / "dev.csv")
    a = _adapter_with(
        tmp_path,
        {
            "train_data": {"spec": "builtin:polarity-en:test", "split": None},  # trained on test
            "eval_data": {
                "spec": str(evaluation),
                "path": str(evaluation),
                "split": None,
                "text_column": "sentence",
                "label_column": "y",
            },
        },
    )
    chosen = default_eval_data(a)
    assert (chosen.data, chosen.columns) == (str(evaluation), {"text_column": "sentence", "label_column": "y"})
    folder = tmp_path / "dd"
    rows = toy_rows(8)
    datasets.DatasetDict({s: datasets.Dataset.from_list(rows) for s in ("train", "test")}).save_to_disk(str(folder))
    shutil.rmtree(a)
    a = _adapter_with(tmp_path, {"train_data": {"spec": str(folder), "path": str(folder), "split": "train"}})
    chosen = default_eval_data(a)
    assert (chosen.data, chosen.split) == (str(folder), "test")


@pytest.mark.parametrize(
    "metadata, why",
    [
        (None, "no training or evaluation data"),
        ({"train_data": {"spec": "t.csv", "path": "t.csv"}}, "no evaluation data"),
    ],
)
def test_fallback_only_when_nothing_is_recorded(tmp_path, metadata, why):
    chosen = default_eval_data(_adapter_with(tmp_path, metadata))
    assert chosen.fallback and chosen.data == FALLBACK_DATA and why in chosen.origin


def test_held_out_of_a_changed_file_is_a_user_error(tmp_path, cache):
    train = write_csv(toy_rows(10), tmp_path / "train.csv")
    adapter = _adapter_with(
        tmp_path,
        {
            "label_names": ["neg", "pos"],
            "train_data": {"spec": str(train), "path": str(train), "sha256": "0" * 64},
            "eval_data": {"held_out_from": "train_data", "indices": [1, 2]},
        },
    )
    with pytest.raises(LorafairError, match="changed since the adapter was trained"):
        default_eval_data(adapter)


def _checks(tmp_path, metadata, data_spec, source, split=None, labels=("neg", "pos"), counts=None):
    adapter = tmp_path / "adapter"
    if not adapter.exists():
        _adapter_with(tmp_path, metadata)
    cfg = SimpleNamespace(adapter=str(adapter), data=data_spec, split=split, lang="en")
    data = {"source": str(source), "labels": list(labels), "label_counts": counts or {"neg": 5, "pos": 5}}
    return task_records(cfg, data)


def test_task_checks(tmp_path):
    from lorafair.core.hashing import file_sha256

    folder = tmp_path / "d"
    folder.mkdir()
    train = write_csv(toy_rows(10), folder / "train.csv")
    test = write_csv(toy_rows(10, seed=1), folder / "test.csv")
    other = write_csv(toy_rows(10, seed=2), tmp_path / "other.csv")
    copy = tmp_path / "renamed.csv"
    shutil.copy(test, copy)
    meta = {
        "label_names": ["neg", "pos"],
        "train_data": {"spec": str(train), "path": str(train), "sha256": file_sha256(train)},
        "eval_data": {"spec": str(test), "path": str(test), "sha256": file_sha256(test)},
    }
    assert _checks(tmp_path, meta, str(test), test) == []
    assert _checks(tmp_path, meta, str(copy), copy) == []  # same content, another name
    (record,) = _checks(tmp_path, meta, str(other), other)
    assert record == {"kind": "other_task", "data": str(other), "train": str(train), "eval": str(test)}
    assert [r["kind"] for r in _checks(tmp_path, meta, str(train), train)] == ["training_rows"]
    (labels,) = _checks(tmp_path, meta, str(test), test, labels=("0", "1"))
    assert labels == {"kind": "labels", "data": "0, 1", "train": "neg, pos"}
    # a label without examples is report_build's absent_labels check (tests/cli/test_surroundings.py), not said twice
    assert _checks(tmp_path, meta, str(test), test, counts={"neg": 10, "pos": 0}) == []
    sibling = write_csv(toy_rows(4), folder / "validation.csv")
    assert _checks(tmp_path, meta, str(sibling), sibling) == []  # a split of the same data set


def test_task_checks_builtin_splits_and_unrecorded(tmp_path):
    meta = {
        "train_data": {"spec": "builtin:polarity-en:train", "path": "/cache/polarity-en/train.jsonl"},
        "eval_data": {"spec": "builtin:polarity-en:validation"},
    }
    assert _checks(tmp_path, meta, "builtin:polarity-en", "/c/test.jsonl") == []  # default split: test
    assert [r["kind"] for r in _checks(tmp_path, meta, "builtin:polarity-en:train", "/c/train.jsonl")] == [
        "training_rows"
    ]
    (record,) = _checks(tmp_path, meta, "builtin:sentiment-zh", "/c/zh/test.jsonl")
    assert record["kind"] == "other_task" and record["eval"] == "builtin:polarity-en:validation"
    cfg = SimpleNamespace(adapter=str(tmp_path / "plain"), data="x.csv", split=None, lang="zh")
    (record,) = task_records(cfg, {"source": "x.csv", "labels": ["neg", "pos"]})
    assert record == {"kind": "unrecorded", "file": run_metadata.FILE_NAME, "data": "x.csv"}


def test_task_records_are_worded_in_either_language(tmp_path):
    meta = {
        "train_data": {"spec": "builtin:polarity-en:train"},
        "eval_data": {"spec": "builtin:polarity-en:validation"},
    }
    _adapter_with(tmp_path, meta)
    cfg = SimpleNamespace(adapter=str(tmp_path / "adapter"), data="builtin:sentiment-zh", split=None, lang="en")
    data = {"source": "/c/zh/test.jsonl", "labels": ["neg", "pos"]}
    (record,) = task_records(cfg, data)
    assert record == {
        "kind": "other_task",
        "data": "builtin:sentiment-zh",
        "train": "builtin:polarity-en:train",
        "eval": "builtin:polarity-en:validation",
    }
    assert words.check_sentence(record, "en") == (
        "The evaluation data builtin:sentiment-zh is not the adapter's recorded task (trained on "
        "builtin:polarity-en:train, evaluated on builtin:polarity-en:validation): the scores say little about "
        "what it learnt."
    )
    zh = words.check_sentence(record, "zh")
    assert "不是适配器记录的任务" in zh and "builtin:polarity-en:validation" in zh
    unrecorded = {"kind": "unrecorded", "file": run_metadata.FILE_NAME, "data": "x.csv"}
    assert run_metadata.FILE_NAME in words.check_sentence(unrecorded, "zh")


def test_benchmark_evaluator_defaults_to_the_held_out_rows(trained, capsys):
    sys.path.insert(0, str(ROOT))
    from model_evaluation.benchmark import BenchmarkEvaluator

    evaluator = BenchmarkEvaluator.from_adapter(str(trained.output_dir), batch_size=4)
    held = _jsonl(default_eval_data(trained.output_dir).data)
    assert evaluator.texts == [r["text"] for r in held]
    assert evaluator.labels.tolist() == [trained.metadata.label_names.index(r["label"]) for r in held]
    assert "held out" in capsys.readouterr().out
