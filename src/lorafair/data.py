"""Labelled text: reading tables, label mappings and seeded stratified sampling.

Readers cover CSV, TSV, JSON/JSONL, Parquet and folders written by `datasets.save_to_disk`.
Everything a user can get wrong (missing file, missing column, unknown label) raises
`LorafairError` with one line that says what was expected and what is there.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lorafair.errors import LorafairError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass
class Examples:
    """Texts (and optional second texts) with their raw labels, in file order."""

    texts: list[str]
    labels: list
    text_pairs: list[str] | None = None
    source: str = ""
    dropped: int = 0  # rows of the file without a text or a label, left out before anything else

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> Examples:
        pairs = [self.text_pairs[i] for i in indices] if self.text_pairs is not None else None
        return Examples(
            [self.texts[i] for i in indices], [self.labels[i] for i in indices], pairs, self.source, self.dropped
        )


def _read_table(path: Path, split: str | None):
    """Return a pandas DataFrame for a file or a `save_to_disk` folder."""
    import pandas as pd

    if path.is_dir():
        return _read_saved_dataset(path, split)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LorafairError(
            f"unsupported data file '{path}': expected one of {', '.join(sorted(TABLE_SUFFIXES))} "
            "or a folder written by datasets.save_to_disk"
        )
    try:
        if kind in ("csv", "tsv"):
            return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", encoding="utf-8-sig", keep_default_na=False)
        if kind == "jsonl":
            return pd.read_json(path, lines=True)
        if kind == "json":
            try:
                return pd.read_json(path)
            except ValueError:
                return pd.read_json(path, lines=True)
        return pd.read_parquet(path)
    except LorafairError:
        raise
    except Exception as exc:  # pandas raises many types; the user needs one line
        raise LorafairError(f"could not read data file '{path}': {type(exc).__name__}: {exc}".splitlines()[0]) from exc


def _read_saved_dataset(path: Path, split: str | None):
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise LorafairError("reading a save_to_disk folder needs the 'datasets' package") from exc
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise LorafairError(
            f"'{path}' is a folder but not one written by datasets.save_to_disk ({exc})".splitlines()[0]
        ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded.keys())
        if split is None:
            split = "test" if "test" in names else names[0]
            log.info("using split '%s' of %s", split, path)
        if split not in loaded:
            raise LorafairError(f"split '{split}' not in '{path}'; splits present: {', '.join(names)}")
        loaded = loaded[split]
    return loaded.to_pandas()


def load_examples(
    path: str | Path,
    *,
    split: str | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
) -> Examples:
    """Read a labelled table; rows with an empty text or label are dropped (and counted in the log)."""
    path = Path(path)
    if not path.exists():
        raise LorafairError(f"data file not found: '{path}'")
    frame = _read_table(path, split)
    columns = [str(c) for c in frame.columns]
    for role, name in (("text", text_column), ("text pair", text_pair_column), ("label", label_column)):
        if name is not None and name not in frame.columns:
            raise LorafairError(
                f"{role} column '{name}' not found in '{path}'; columns present: {', '.join(columns) or '(none)'}"
            )
    keep = frame[label_column].notna() & frame[text_column].notna()
    for column in (label_column, text_column):
        keep &= frame[column].astype(str).str.strip() != ""
    dropped = int((~keep).sum())
    if dropped:
        log.warning("dropped %d rows of '%s' with an empty text or label", dropped, path)
    frame = frame[keep]
    if len(frame) == 0:
        raise LorafairError(f"no labelled rows left in '{path}' after dropping empty texts/labels")
    labels = [_plain(v) for v in frame[label_column].tolist()]
    pairs = [str(v) for v in frame[text_pair_column].tolist()] if text_pair_column else None
    return Examples([str(t) for t in frame[text_column].tolist()], labels, pairs, str(path), dropped)


def _plain(value):
    """numpy scalars -> python scalars, integral floats -> int (pandas turns int columns with NaN into floats)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def label_names_from_values(raw_labels: Sequence) -> list[str]:
    """Sorted unique labels as strings (numbers sorted numerically), the fallback label mapping."""
    unique = set(raw_labels)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in unique):
        return [str(v) for v in sorted(unique)]
    return sorted(str(v) for v in unique)


def encode_labels(raw_labels: Sequence, label_names: Sequence[str]) -> np.ndarray:
    """Map raw labels to ids 0..K-1 by name; an int that is not a name is taken as an id when in range."""
    index = {name: i for i, name in enumerate(label_names)}
    ids = np.empty(len(raw_labels), dtype=np.int64)
    unknown: set[str] = set()
    for row, value in enumerate(raw_labels):
        key = str(value)
        if key in index:
            ids[row] = index[key]
        elif isinstance(value, int) and 0 <= value < len(label_names):
            ids[row] = value
        else:
            ids[row] = -1
            unknown.add(key)
    if unknown:
        shown = ", ".join(sorted(unknown)[:10])
        raise LorafairError(
            f"labels the head does not know: {shown}; the head's labels are {', '.join(label_names)} "
            "(ids 0..{} also accepted)".format(len(label_names) - 1)
        )
    return ids


def stratified_sample(label_ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Seeded subsample of `n` indices keeping class proportions (largest remainder); 0 or n >= len -> all.

    Returned in ascending order so the evaluation keeps file order, whatever the seed.
    """
    total = len(label_ids)
    if n <= 0 or n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(label_ids, return_counts=True)
    exact = counts * n / total
    quota = np.floor(exact).astype(int)
    short = n - quota.sum()
    for k in np.argsort(-(exact - quota), kind="stable")[:short]:
        quota[k] += 1
    picked = [rng.choice(np.flatnonzero(label_ids == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))


def split_off(label_ids: np.ndarray, exclude: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded stratified sample of up to `n` indices disjoint from `exclude` (used for probe data)."""
    remaining = np.setdiff1d(np.arange(len(label_ids)), exclude)
    if len(remaining) == 0:
        return remaining
    chosen = stratified_sample(label_ids[remaining], min(n, len(remaining)), seed)
    return remaining[chosen]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of every file of a folder (sorted relative paths and contents)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_jsonl(records: Sequence[dict], path: str | Path) -> None:
    """Helper for tests and assets: one JSON object per line, UTF-8."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
