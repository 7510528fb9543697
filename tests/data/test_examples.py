"""Table readers, label mapping and sampling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lorafair.core.errors import LorafairError
from lorafair.data import examples as data

ROWS = [{"text": f"t{i}", "label": ["neg", "pos"][i % 2], "id": i % 2} for i in range(10)]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet", "disk", "disk-dict"])
def test_every_format_reads_the_same(tmp_path, fmt):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        data.write_jsonl(ROWS, path)
    elif fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        import datasets

        ds = datasets.Dataset.from_pandas(frame)
        (datasets.DatasetDict({"train": ds, "test": ds}) if fmt == "disk-dict" else ds).save_to_disk(str(path))
    ex = data.load_examples(path, split="test" if fmt == "disk-dict" else None)
    assert ex.texts == [r["text"] for r in ROWS] and ex.labels == [r["label"] for r in ROWS]
    ints = data.load_examples(path, label_column="id", split="test" if fmt == "disk-dict" else None)
    assert ints.labels == [r["id"] for r in ROWS] and all(type(v) is int for v in ints.labels)


def test_missing_split_lists_the_splits(tmp_path):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(LorafairError, match="splits present: train"):
        data.load_examples(tmp_path / "d", split="validation")


def test_csv_with_bom_and_pairs(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("\ufefftext,other,label\na,b,1\nc,d,-1\n".encode("utf-8"))
    ex = data.load_examples(path, text_pair_column="other")
    assert ex.text_pairs == ["b", "d"] and ex.labels == [1, -1]
    assert data.label_names_from_values(ex.labels) == ["-1", "1"]  # numeric order, not string order


def test_encode_labels_by_name_or_id():
    assert data.encode_labels(["pos", "neg", 1, 0], ["neg", "pos"]).tolist() == [1, 0, 1, 0]
    assert data.encode_labels([-1, 1], ["-1", "1"]).tolist() == [0, 1]
    with pytest.raises(LorafairError, match="labels the head does not know: 7"):
        data.encode_labels([0, 7], ["neg", "pos"])


def test_stratified_sample_keeps_proportions_and_is_seeded():
    labels = np.array([0] * 300 + [1] * 100 + [2] * 40)
    idx = data.stratified_sample(labels, 110, seed=3)
    assert len(idx) == 110 == len(set(idx.tolist())) and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [75, 25, 10]
    assert np.array_equal(idx, data.stratified_sample(labels, 110, seed=3))
    assert not np.array_equal(idx, data.stratified_sample(labels, 110, seed=4))
    assert np.array_equal(data.stratified_sample(labels, 0, seed=0), np.arange(440))
    rest = data.split_off(labels, idx, 50, seed=1)
    assert len(rest) == 50 and not set(rest.tolist()) & set(idx.tolist())
