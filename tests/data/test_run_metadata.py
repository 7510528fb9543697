"""lorafair.data.run_metadata: the one reader and writer of lorafair_run.json, checked against the raw JSON."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from lorafair.core.errors import LorafairError
from lorafair.data import run_metadata
from lorafair.data.run_metadata import DataRecord, RunMetadata

SRC = Path(__file__).resolve().parents[2] / "src" / "lorafair"


@pytest.fixture(scope="module")
def trained(llama_setup, tmp_path_factory):
    """A real `lorafair train` run: held-out evaluation part, subsampled training rows."""
    from lorafair.config import TrainConfig
    from lorafair.training.train import train_model

    out = tmp_path_factory.mktemp("run-metadata") / "adapter"
    config = TrainConfig(
        base_model=str(llama_setup.base),
        data=str(llama_setup.data),
        eval_fraction=0.25,
        max_train_samples=30,
        max_steps=1,
        batch_size=8,
        output=str(out),
        quiet=True,
    )
    return train_model(config)


def _raw(folder: Path) -> dict:
    return json.loads((folder / "lorafair_run.json").read_text(encoding="utf-8"))


def test_a_trained_adapters_file_reads_into_typed_fields(trained, llama_setup):
    raw = _raw(trained.output_dir)
    meta = run_metadata.read(trained.output_dir)
    assert meta.extra == {} and meta.train_data.extra == {} and meta.eval_data.extra == {}  # every key is a field
    assert meta.label_names == raw["label_names"] == ["neg", "pos"]
    assert meta.config == raw["config"] and meta.config["max_train_samples"] == 30
    train, held = meta.train_data, meta.eval_data
    assert isinstance(train, DataRecord) and isinstance(held, DataRecord)
    assert train.path == str(Path(llama_setup.data).resolve()) and train.spec == str(llama_setup.data)
    assert train.indices == raw["train_data"]["indices"] and train.n == 30 and train.subsample_of == 36
    assert held.held_out_from == "train_data" and held.n == 12 and held.fraction == 0.25
    assert sorted(set(held.indices) | set(train.indices)) == sorted(held.indices + train.indices)  # disjoint
    assert meta.global_step == raw["global_step"] == 1 and meta.wall_time_s == raw["wall_time_s"]
    assert meta.eval_metrics == raw["metrics"]["eval"] and "accuracy" in meta.eval_metrics
    assert trained.metadata.to_dict() == raw  # what train_model returns is what it wrote


def test_write_gives_back_the_same_file(trained, tmp_path):
    raw = _raw(trained.output_dir)
    assert run_metadata.read(trained.output_dir).to_dict() == raw
    run_metadata.read(trained.output_dir).write(tmp_path)
    assert _raw(tmp_path) == raw


def test_partial_and_older_files_read_and_unknown_keys_survive(tmp_path):
    (tmp_path / "lorafair_run.json").write_text(
        json.dumps({"label_names": ["a", "b"], "future_key": [1], "train_data": {"path": "/x.csv", "new": True}})
    )
    meta = run_metadata.read(tmp_path)
    assert meta.label_names == ["a", "b"] and meta.eval_data is None and meta.schema_version is None
    assert meta.extra == {"future_key": [1]} and meta.train_data.extra == {"new": True}
    assert meta.train_data.columns == {} and meta.eval_metrics == {}
    again = tmp_path / "again"
    again.mkdir()
    meta.write(again)
    raw = _raw(again)
    assert raw["future_key"] == [1] and raw["train_data"]["new"] is True and raw["train_data"]["path"] == "/x.csv"


def test_no_file_is_none(tmp_path):
    assert run_metadata.read(tmp_path) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "holds a JSON list, not an object"),
        ('{"train_data": 3}', '"train_data" is a JSON int, not an object'),
    ],
)
def test_a_bad_file_is_one_line(tmp_path, text, expected):
    (tmp_path / "lorafair_run.json").write_text(text)
    with pytest.raises(LorafairError) as caught:
        run_metadata.read(tmp_path)
    message = str(caught.value)
    assert expected in message and str(tmp_path / "lorafair_run.json") in message and "\n" not in message


def test_held_out_record_writes_only_its_keys():
    record = DataRecord(held_out_from="train_data", fraction=0.1, seed=0, n=2, indices=[3, 5])
    assert record.to_dict() == {"held_out_from": "train_data", "fraction": 0.1, "seed": 0, "n": 2, "indices": [3, 5]}
    file_record = DataRecord(spec="x.csv", path="/d/x.csv", n=4).to_dict()
    assert file_record["text_pair_column"] is None and "held_out_from" not in file_record  # a file record's keys


def test_only_run_metadata_names_the_file():
    """The file name is a constant in one module: every other reader goes through run_metadata.read."""
    naming = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == run_metadata.FILE_NAME:
                naming.append(path.relative_to(SRC).as_posix())
    assert naming == ["data/run_metadata.py"]
    assert {f.name for f in dataclasses.fields(RunMetadata)} >= {"train_data", "eval_data", "label_names", "config"}
