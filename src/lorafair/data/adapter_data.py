"""The data an adapter was trained and evaluated on, as recorded in its `lorafair_run.json`.

Two jobs:
- `default_eval_data(adapter)`: what to evaluate on when the user names no data (the seed scripts,
  `lorafair quick`): the test split of the data set it was trained on, else its held-out part, else its
  recorded --eval-data; never its training rows. Only an adapter that records none of these falls back
  to `builtin:sentiment-zh` (the seed's default), and says so.
- `task_records(...)`: check records when the evaluation data is not the adapter's recorded task (another
  file, its training rows, another label set), so a score on the wrong data cannot pass unremarked.

Torch-free: the recipes (lorafair.recipes.compare, .sweep) compute the records and `held_out_origin` and pass
them to `report.build`, which stores them (it reads no file); `report/words` words them in either language.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from lorafair.core import atomic
from lorafair.core.errors import LorafairError
from lorafair.data import run_metadata
from lorafair.data.run_metadata import DataRecord, RunMetadata

log = logging.getLogger(__name__)

FALLBACK_DATA = "builtin:sentiment-zh"  # the seed's evaluation set, for adapters that record nothing
BUILTIN = "builtin:"
SPLIT_NAMES = ("train", "validation", "valid", "dev", "test")  # file stems that mark splits of one data set
HELD_OUT_FOLDER = "adapter-data"  # under the lorafair cache: held-out rows written out as JSONL


@dataclass
class EvalData:
    """Where to evaluate: `compare` options, and a sentence saying where they came from."""

    data: str
    origin: str
    split: str | None = None
    columns: dict = field(default_factory=dict)  # text_column / text_pair_column / label_column
    probe_data: str | None = None  # the training rows outside a held-out part (A1 must not see the evaluation)
    fallback: bool = False
    encoding: str | None = None  # --encoding the data was recorded with (None: UTF-8, lorafair's own files)

    def compare_argv(self) -> list[str]:
        """`lorafair compare` options for this data (appended to an argv without --data)."""
        argv = ["--data", self.data]
        if self.split:
            argv += ["--split", self.split]
        for name, value in self.columns.items():
            if value:
                argv += ["--" + name.replace("_", "-"), str(value)]
        if self.probe_data:
            argv += ["--probe-data", self.probe_data]
        if self.encoding and self.encoding != "auto":
            argv += ["--encoding", self.encoding]
        return argv


def _builtin_name(spec: str | None) -> str | None:
    return spec[len(BUILTIN) :].partition(":")[0] if spec and spec.startswith(BUILTIN) else None


def _builtin_split(spec: str, default: str | None) -> str | None:
    return spec[len(BUILTIN) :].partition(":")[2] or default


def _saved_splits(path: Path) -> list[str]:
    """Splits of a `datasets.save_to_disk` DatasetDict folder (none for a file or a single Dataset)."""
    marker = path / "dataset_dict.json"
    if not marker.is_file():
        return []
    return list(json.loads(marker.read_text(encoding="utf-8")).get("splits", []))


def _test_split(train: DataRecord) -> EvalData | None:
    """The test split of the data set the adapter was trained on, where it has one and did not train on it."""
    name = _builtin_name(train.spec)
    if name and _builtin_split(train.spec, train.split) != "test":
        return EvalData(f"{BUILTIN}{name}:test", f"the test split of {BUILTIN}{name}, the adapter's training set")
    path = Path(train.path or "")
    if train.path and train.split != "test" and "test" in _saved_splits(path):
        return EvalData(
            str(path), f"the test split of {path}, the adapter's training set", split="test", columns=train.columns
        )
    return None


def _recorded(adapter: str | Path) -> tuple[RunMetadata, DataRecord | None, DataRecord]:
    """The adapter's run metadata (empty where it has none), its training record and its evaluation record."""
    metadata = run_metadata.read(adapter) or RunMetadata(schema_version=None)
    return metadata, metadata.train_data, metadata.eval_data or DataRecord()


def default_eval_data(adapter: str | Path) -> EvalData:
    """What to evaluate `adapter` on when no --data is given (see the module docstring for the order)."""
    metadata, train, evaluation = _recorded(adapter)
    chosen = _test_split(train) if train else None
    if chosen is None and evaluation.held_out_from:
        chosen = _held_out(train or DataRecord(), evaluation, metadata.label_names or [])
    if chosen is None and evaluation.path:
        chosen = EvalData(
            evaluation.spec or evaluation.path,
            f"the adapter's recorded evaluation data {evaluation.spec or evaluation.path}",
            split=evaluation.split,
            columns=evaluation.columns,
            encoding=evaluation.encoding,
        )
    if chosen is None:
        what = "no evaluation data" if train else f"no training or evaluation data (no {run_metadata.FILE_NAME})"
        chosen = EvalData(
            FALLBACK_DATA, f"{FALLBACK_DATA}, the seed's default: the adapter records {what}", fallback=True
        )
    return chosen


def announce_default_eval_data(adapter: str | Path) -> EvalData:
    """`default_eval_data`, with a console line saying what was chosen (and why, for the fallback).

    A missing adapter folder gets the fallback silently: `compare` then reports the missing folder itself.
    """
    if not Path(adapter).is_dir():
        return EvalData(FALLBACK_DATA, "no adapter folder", fallback=True)
    chosen = default_eval_data(adapter)
    hint = "; pass --data to choose other data" if chosen.fallback else ""
    print(f"lorafair: evaluating on {chosen.origin}{hint}", flush=True)
    return chosen


def held_out_key(train: DataRecord, evaluation: DataRecord) -> str:
    """Names the folder holding one adapter's held-out rows: its training file, columns and held-out indices."""
    parts = [train.sha256, train.split, train.columns, evaluation.indices]
    if train.encoding not in (None, "auto"):  # other text from the same bytes; UTF-8 keeps the old keys
        parts.append(train.encoding)
    basis = json.dumps(parts)
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def _held_out(train: DataRecord, evaluation: DataRecord, label_names: list[str]) -> EvalData:
    """Write the held-out rows (and the training rows beside them, for A1) out once, as JSONL in the cache."""
    from lorafair.core import paths
    from lorafair.core.hashing import file_sha256
    from lorafair.data.examples import encode_labels, label_names_from_values, load_examples

    path = Path(train.path or "")
    if not train.path or not path.exists():
        raise LorafairError(f"the adapter held out part of '{path}' for evaluation, but that file is gone; pass --data")
    if train.sha256 and file_sha256(path) != train.sha256:
        raise LorafairError(
            f"'{path}' changed since the adapter was trained (SHA-256 differs), so its held-out "
            "rows cannot be found again; pass --data"
        )
    folder = paths.lorafair_cache_dir() / HELD_OUT_FOLDER / held_out_key(train, evaluation)
    if not ((folder / "eval.jsonl").is_file() and (folder / "probe.jsonl").is_file()):
        examples = load_examples(path, split=train.split, encoding=train.encoding or "auto", **train.columns)
        names = list(label_names) or label_names_from_values(examples.labels)
        ids = encode_labels(examples.labels, names)
        held = set(int(i) for i in evaluation.indices or [])
        rows = [
            {
                "text": examples.texts[i],
                "label": names[ids[i]],
                **({"text_pair": examples.text_pairs[i]} if examples.text_pairs is not None else {}),
            }
            for i in range(len(examples))
        ]
        paths.usable_cache_folder(folder.parent)
        with atomic.publish_output(folder, "the held-out rows") as staging:
            for name, keep in (("eval", True), ("probe", False)):
                lines = [json.dumps(r, ensure_ascii=False) for i, r in enumerate(rows) if (i in held) == keep]
                (staging / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    columns = {"text_column": "text", "label_column": "label"}
    if train.text_pair_column:
        columns["text_pair_column"] = "text_pair"
    return EvalData(
        str(folder / "eval.jsonl"),
        f"the {len(evaluation.indices or [])} rows the adapter held out of {train.spec or path}",
        columns=columns,
        probe_data=str(folder / "probe.jsonl"),
    )


def task_records(cfg, data: dict) -> list[dict]:
    """Structured checks: the evaluation data vs the task recorded in the adapter's lorafair_run.json.

    `cfg` is the CompareConfig (its adapter, data and split); `data` the report's data block (source path,
    labels, label counts). Splits of one data set (builtin:NAME:SPLIT, a DatasetDict's splits, files named
    train/validation/test in one folder) count as one task; the same rows the adapter trained on do not pass.
    Each record is {"kind": unrecorded | training_rows | other_task | labels, ...its fields} ("absent", a label
    without examples, is now report/build's absent_labels check: reports written before still render it).
    """
    adapter, spec = getattr(cfg, "adapter", None), getattr(cfg, "data", None) or data.get("source")
    try:
        metadata = run_metadata.read(adapter) if adapter else None
    except LorafairError:
        metadata = None
    if not metadata or not metadata.train_data:
        return [{"kind": "unrecorded", "file": run_metadata.FILE_NAME, "data": spec}]
    train, evaluation = metadata.train_data, metadata.eval_data or DataRecord()
    records = []
    relation = _relation(spec, getattr(cfg, "split", None), data.get("source"), train, evaluation)
    if relation == "training":
        records.append({"kind": "training_rows", "data": spec})
    elif relation == "other":
        records.append(
            {
                "kind": "other_task",
                "data": spec,
                "train": train.spec or train.path,
                "eval": evaluation.spec or evaluation.path,
            }
        )
    return records + _label_records(metadata.label_names, data)


def _is_held_out_file(source: Path, train: DataRecord, evaluation: DataRecord) -> bool:
    """`source` is the cache file `_held_out` wrote for this adapter's held-out rows."""
    held_out = bool(evaluation.held_out_from)
    return held_out and source.name == "eval.jsonl" and source.parent.name == held_out_key(train, evaluation)


def held_out_origin(adapter: str | Path | None, source: str | Path | None) -> dict | None:
    """Where the evaluation rows came from when `source` is the cache file of the adapter's held-out rows:
    {"from": the training data as given, "path", "sha256", "rows": the held-out row indices of that file
    (load_examples order), "n"}; None for any other data. The report names this, not only the cache file."""
    if not adapter or not source:
        return None
    try:
        metadata = run_metadata.read(adapter)
    except LorafairError:
        return None
    if metadata is None or metadata.train_data is None or metadata.eval_data is None:
        return None
    train, evaluation = metadata.train_data, metadata.eval_data
    if not _is_held_out_file(Path(source).resolve(), train, evaluation):
        return None
    rows = sorted(int(i) for i in evaluation.indices or [])  # eval.jsonl holds them in file order
    return {"from": train.spec or train.path, "path": train.path, "sha256": train.sha256, "rows": rows, "n": len(rows)}


def _relation(spec, split, source, train: DataRecord, evaluation: DataRecord) -> str:
    """'task' (the recorded task, not its training rows), 'training' (the training rows) or 'other'."""
    name = _builtin_name(spec)
    if name is not None:
        if name == _builtin_name(train.spec):
            same_split = _builtin_split(spec, split or "test") == _builtin_split(train.spec, train.split)
            return "training" if same_split else "task"
        if name == _builtin_name(evaluation.spec):
            return "task"
    if not source:
        return "other"
    source = Path(source).resolve()
    if _is_held_out_file(source, train, evaluation):
        return "task"
    train_path = Path(train.path).resolve() if train.path else None
    eval_path = Path(evaluation.path).resolve() if evaluation.path else None
    if source == train_path:
        splits = _saved_splits(source)
        chosen = split or ("test" if "test" in splits else splits[0] if splits else None)
        return "task" if splits and chosen != train.split else "training"
    if source == eval_path or any(_sibling_splits(source, p) for p in (train_path, eval_path) if p):
        return "task"
    return _relation_by_content(source, train, evaluation)


def _sibling_splits(a: Path, b: Path) -> bool:
    """Files such as data/train.csv and data/test.csv: splits of one data set."""
    return a.parent == b.parent and a.stem.lower() in SPLIT_NAMES and b.stem.lower() in SPLIT_NAMES


def _relation_by_content(source: Path, train: DataRecord, evaluation: DataRecord) -> str:
    """A copy under another name is still the same data: compare SHA-256 with the recorded ones."""
    from lorafair.core.hashing import file_sha256

    if not source.exists():
        return "other"
    digest = file_sha256(source)
    if digest == train.sha256:
        return "training"
    return "task" if digest == evaluation.sha256 else "other"


def _label_records(recorded, data: dict) -> list[dict]:
    """Evaluation labels other than the recorded ones (labels with no example: report/build's absent_labels)."""
    if not recorded:
        return []
    labels = [str(label) for label in data.get("labels") or []]
    if labels and labels != [str(label) for label in recorded]:
        return [{"kind": "labels", "data": ", ".join(labels), "train": ", ".join(map(str, recorded))}]
    return []
