"""Labelled text: reading tables, label mappings and seeded stratified sampling.

Readers cover CSV, TSV, JSON/JSONL, Parquet and folders written by `datasets.save_to_disk`.
Everything a user can get wrong (missing file, missing column, unknown label) raises
`LorafairError` with one line that says what was expected and what is there.
"""

from __future__ import annotations

import codecs
import io
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lorafair.core.encodings import UNKNOWN_ENCODING, check_encoding  # noqa: F401  (data users import them here)
from lorafair.core.errors import LorafairError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
TEXT_KINDS = ("csv", "tsv", "json", "jsonl")  # the formats --encoding applies to
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


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


class _BadJson(ValueError):
    """A JSON or JSON Lines file that does not parse; the message says where."""


def _read_table(path: Path, split: str | None, encoding: str = "auto"):
    """Return a pandas DataFrame for a file or a `save_to_disk` folder.

    CSV/TSV cells are read as strings (an empty cell stays ""; `_label_values` gives the labels their type once
    the empty rows are gone). JSON Lines are parsed line by line, so a bad line is named.
    """
    import pandas as pd

    if path.is_dir():
        return _read_saved_dataset(path, split)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LorafairError(
            f"unsupported data file '{path}': expected one of {', '.join(sorted(TABLE_SUFFIXES))} "
            "or a folder written by datasets.save_to_disk"
        )
    text = decode_text(path, _file_bytes(path), encoding) if kind in TEXT_KINDS else None
    try:
        if kind in ("csv", "tsv"):
            return pd.read_csv(io.StringIO(text), sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False)
        if kind == "jsonl":
            return pd.DataFrame(_json_lines(text))
        if kind == "json":
            return _json_table(text)
        return pd.read_parquet(path)
    except _BadJson as exc:
        raise LorafairError(f"could not read data file '{path}': {exc}") from exc
    except Exception as exc:  # pandas raises many types; the user needs one line
        raise LorafairError(f"could not read data file '{path}': {type(exc).__name__}: {exc}".splitlines()[0]) from exc


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:  # unreadable (permissions, a broken mount): one line, not a traceback
        raise LorafairError(f"could not read data file '{path}': {exc.strerror or exc}") from exc


def decode_text(path: Path, raw: bytes, encoding: str = "auto") -> str:
    """The file's text. 'auto' is UTF-8 (with or without a BOM): other bytes fail, never silently mis-decoded."""
    codec = "utf-8-sig" if encoding == "auto" or _is_utf8(encoding) else encoding
    try:
        return raw.decode(codec)
    except LookupError as exc:
        raise LorafairError(f"--encoding {encoding}: {UNKNOWN_ENCODING}") from exc
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        where = f"byte {exc.start} (line {line}) is 0x{raw[exc.start]:02x}"
        guess = likely_encoding(raw)
        if encoding == "auto":
            raise LorafairError(
                f"data file '{path}' is not UTF-8: {where}; pass --encoding with the encoding it was saved in, "
                f"likely --encoding {guess}"
            ) from exc
        hint = "" if codecs.lookup(guess).name == codecs.lookup(codec).name else f", likely --encoding {guess}"
        raise LorafairError(
            f"data file '{path}' is not {encoding}: {where}; pass the --encoding it was saved in{hint}"
        ) from exc


def _is_utf8(encoding: str) -> bool:
    return check_encoding(encoding) and codecs.lookup(encoding).name == "utf-8"


def likely_encoding(raw: bytes) -> str:
    """A guess for the hint only (never used to decode): GB18030 for Chinese, cp1252/latin-1 otherwise.

    charset_normalizer is not used: on files of a few lines it names big5 for GBK and cp1250 for latin-1.
    Chinese GBK/GB18030 text is pairs of high bytes; accented latin-1 letters are single high bytes among ASCII.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = raw[: 1 << 20]  # enough to tell, and quick on a large file
    high = len(re.findall(rb"[\x80-\xff]", sample))
    # a two-byte GBK character whose second byte is high too (a latin-1 "èm" has an ASCII second byte)
    paired = 2 * sum(1 for pair in re.findall(rb"[\x81-\xfe][\x40-\x7e\x80-\xfe]", sample) if pair[1] >= 0x80)
    try:
        codecs.getincrementaldecoder("gb18030")().decode(sample, final=False)  # a cut character at the end is fine
        chinese = high > 0 and paired >= 0.8 * high
    except UnicodeDecodeError:
        chinese = False
    if chinese:
        return "gb18030"
    return "cp1252" if re.search(rb"[\x80-\x9f]", sample) else "latin-1"  # C1 bytes: cp1252's quotes and dashes


def _json_lines(text: str) -> list[dict]:
    """JSON Lines, one object a line; blank lines skipped. Only "\\n" ends a line (a JSON string may hold U+2028)."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _BadJson(f"line {number} is not valid JSON ({exc.msg}: column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise _BadJson(f"line {number} is not a JSON object ({type(record).__name__})")
        records.append(record)
    return records


def _json_table(text: str):
    """A .json file: a list of objects, pandas' column layout, or JSON Lines under a .json name."""
    import pandas as pd

    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one value, then more: JSON Lines
            return pd.DataFrame(_json_lines(text))
        raise _BadJson(f"not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from exc
    if isinstance(content, list) and all(isinstance(row, dict) for row in content):
        return pd.DataFrame(content)
    return pd.read_json(io.StringIO(text))


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
    encoding: str = "auto",
) -> Examples:
    """Read a labelled table; rows with an empty text or label are dropped (and counted in the log).

    `encoding` applies to CSV/TSV/JSON/JSONL ('auto': UTF-8, a BOM allowed); Parquet and folders carry their own.
    """
    path = Path(path)
    if not path.exists():
        raise LorafairError(f"data file not found: '{path}'")
    frame = _read_table(path, split, encoding)
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
    untyped = path.is_file() and TABLE_SUFFIXES[path.suffix.lower()] in ("csv", "tsv")
    labels = _label_values(frame[label_column].tolist(), untyped)
    pairs = [_text(v) for v in frame[text_pair_column].tolist()] if text_pair_column else None
    return Examples([str(t) for t in frame[text_column].tolist()], labels, pairs, str(path), dropped)


def load_texts(path: str | Path, *, split: str | None = None, text_column: str = "text", encoding: str = "auto"):
    """(texts, dropped) of a table without labels (out-of-domain text): rows with an empty text are dropped."""
    path = Path(path)
    if not path.exists():
        raise LorafairError(f"data file not found: '{path}'")
    frame = _read_table(path, split, encoding)
    if text_column not in frame.columns:
        columns = ", ".join(str(c) for c in frame.columns) or "(none)"
        raise LorafairError(f"text column '{text_column}' not found in '{path}'; columns present: {columns}")
    texts = [text for text in map(_text, frame[text_column].tolist()) if text.strip()]
    if not texts:
        raise LorafairError(f"no texts in '{path}' (column '{text_column}' is empty)")
    return texts, len(frame) - len(texts)


def random_sample(total: int, n: int, seed: int) -> np.ndarray:
    """Seeded sample of `n` of `total` indices without replacement, ascending; 0 or n >= total -> all."""
    if n <= 0 or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def _text(value) -> str:
    """A second text as a string; a missing one (JSON null) is empty, as an empty CSV cell is, not 'None'."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _label_values(values: list, untyped: bool) -> list:
    """Labels with their proper type, read after the empty rows are gone (one empty cell must not make them text).

    CSV/TSV cells are all text: like pandas, a column of numbers becomes numbers (integral ones ints), any other
    stays strings. Typed formats (JSON, Parquet, folders) keep their types; only strings that are plain integers
    ("0", "12") become ints, which changes no name (str(int) is the same text) and sorts them as numbers.
    """
    plain = [_plain(v) for v in values]
    if not all(isinstance(v, str) for v in plain):
        return plain
    if untyped and all(_NUMBER.fullmatch(v.strip()) for v in plain):
        numbers = [_plain(int(v) if _INTEGER.fullmatch(v.strip()) else float(v)) for v in plain]
        if all(isinstance(n, int) or math.isfinite(n) for n in numbers):  # "inf" and "1e400" stay names
            return numbers
    if all(_INTEGER.fullmatch(v) and str(int(v)) == v for v in plain):
        return [int(v) for v in plain]
    return plain


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
    """Map raw labels to ids 0..K-1 by name; an id that is not a name (1 or "1") is taken as an id when in range."""
    index = {name: i for i, name in enumerate(label_names)}
    ids = np.empty(len(raw_labels), dtype=np.int64)
    unknown: set[str] = set()
    for row, value in enumerate(raw_labels):
        key = str(value)
        as_id = _as_id(value)
        if key in index:
            ids[row] = index[key]
        elif as_id is not None and 0 <= as_id < len(label_names):
            ids[row] = as_id
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


def _as_id(value) -> int | None:
    """An int, or a string of ASCII digits, as a label id; anything else (bool, float, name) is none."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


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


def write_jsonl(records: Sequence[dict], path: str | Path) -> None:
    """Helper for tests and assets: one JSON object per line, UTF-8."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
