"""`lorafair_run.json`: what `lorafair train` records beside an adapter, read and written in one place.

    meta = run_metadata.read(adapter_folder)        # RunMetadata, or None for a plain peft adapter
    meta.train_data.path, meta.eval_data.indices     # typed records of the training and evaluation data
    meta.write(staging_folder)                       # the file, written atomically

Every key of the file is a field here. Readers take what a file holds and leave the rest at None, so files
written by older versions, or by hand (tests write {"label_names": [...]} only), read the same way; keys
this version does not know are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from lorafair.core.errors import LorafairError

FILE_NAME = "lorafair_run.json"
SCHEMA_VERSION = 1
COLUMN_KEYS = ("text_column", "text_pair_column", "label_column")


@dataclass
class DataRecord:
    """One data set of a training run: a file read by `lorafair train`, or the part of it held out.

    A file record has spec..n (and, for the training data, the rows trained on: indices, indices_sha256,
    subsample_of); a held-out record has held_out_from, fraction, seed, n and the held-out rows' indices.
    Indices count rows in `load_examples` order of the training file.
    """

    spec: str | None = None  # as the user gave it: a path or builtin:NAME[:SPLIT]
    path: str | None = None  # the file or folder read (absolute)
    split: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    encoding: str | None = None  # --encoding it was read with (None in files older than the option)
    sha256: str | None = None  # of the file (or the folder's files) when it was read
    n: int | None = None  # examples used
    indices: list[int] | None = None
    indices_sha256: str | None = None  # SHA-256 of the indices as int64 bytes
    subsample_of: int | None = None  # training rows available before --max-train-samples
    held_out_from: str | None = None  # "train_data": these rows were held out of the training file
    fraction: float | None = None  # --eval-fraction of a held-out part
    seed: int | None = None  # the seed that drew a held-out part
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as read

    # A file record always writes these keys, null or not (as lorafair train always has).
    _FILE_KEYS = ("spec", "path", "split", *COLUMN_KEYS, "encoding", "sha256", "n")

    @property
    def columns(self) -> dict:
        """The column options that were given (text_column / text_pair_column / label_column)."""
        return {k: getattr(self, k) for k in COLUMN_KEYS if getattr(self, k)}

    @classmethod
    def from_dict(cls, raw: dict) -> DataRecord:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in raw.items() if k in known}, extra={k: v for k, v in raw.items() if k not in known}
        )

    def to_dict(self) -> dict:
        always = self._FILE_KEYS if self.path is not None else ()
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra" and (f.name in always or getattr(self, f.name) is not None)
        }
        return {**out, **self.extra}


@dataclass
class RunMetadata:
    """The whole of lorafair_run.json (see `lorafair.training.train.run_metadata` for how a run fills it)."""

    schema_version: int | None = SCHEMA_VERSION
    base_model: str | None = None  # resolved: a folder or hub id
    label_names: list[str] | None = None  # in label-id order
    head_name: str | None = None  # `score` / `classifier`
    head_replaced: dict | None = None  # {"base_labels": K, "labels": M}: the base was a K-label classifier
    target_modules: list[str] | None = None
    layers_to_transform: list[int] | None = None  # None: every layer
    config: dict | None = None  # the TrainConfig, as a dict
    train_data: DataRecord | None = None
    eval_data: DataRecord | None = None  # None: no evaluation after training
    seed: int | None = None
    versions: dict | None = None  # python, lorafair, torch, transformers, peft, accelerate, datasets
    device: str | None = None
    precision: str | None = None  # bf16 / fp32
    metrics: dict | None = None  # {"train": Trainer metrics, "eval": {"accuracy", "loss", "runtime", ...}}
    global_step: int | None = None
    resumed_from: str | None = None  # checkpoint-N of a --resume
    log_history: list | None = None  # the Trainer's log
    wall_time_s: float | None = None
    # --trunk-reuse: {mode, used, reason, exact, shared_layers, total_layers, dropout, source, storage, bytes,
    # bound_bytes, cache, seconds} (training/trunk_reuse.Summary); None in files written before it existed
    trunk_reuse: dict | None = None
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as read

    @classmethod
    def from_dict(cls, raw: dict) -> RunMetadata:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("train_data", "eval_data"):
            if isinstance(values.get(key), dict):
                values[key] = DataRecord.from_dict(values[key])
        values.setdefault("schema_version", None)  # a file without one says nothing about its version
        return cls(**values, extra={k: v for k, v in raw.items() if k not in known})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        for key in ("train_data", "eval_data"):
            if out[key] is not None:
                out[key] = out[key].to_dict()
        if out["wall_time_s"] is None:
            del out["wall_time_s"]
        return {**out, **self.extra}

    @property
    def train_metrics(self) -> dict:
        return (self.metrics or {}).get("train") or {}

    @property
    def eval_metrics(self) -> dict:
        return (self.metrics or {}).get("eval") or {}

    def write(self, folder: str | Path) -> Path:
        """Write FOLDER/lorafair_run.json; returns its path. `lorafair train` writes it into the staging folder
        that `atomic.publish_output` renames into place, so a reader never sees half of it."""
        path = path_in(folder)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str), encoding="utf-8")
        return path


def path_in(folder: str | Path) -> Path:
    return Path(folder) / FILE_NAME


def read(folder: str | Path) -> RunMetadata | None:
    """FOLDER/lorafair_run.json, or None where there is none (a plain peft adapter); a bad file is one line."""
    path = path_in(folder)
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LorafairError(f"could not read '{path}': {exc}".splitlines()[0]) from exc
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise LorafairError(f"'{path}' is not valid JSON: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise LorafairError(f"'{path}' holds a JSON {type(raw).__name__}, not an object")
    for key in ("train_data", "eval_data"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise LorafairError(f"'{path}': \"{key}\" is a JSON {type(raw[key]).__name__}, not an object")
    return RunMetadata.from_dict(raw)
