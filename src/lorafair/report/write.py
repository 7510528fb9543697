"""Writers: report.json, report.md, report.html, predictions.csv and flips.csv, written into one output folder.

The renderers live in `render` (console, Markdown) and `html`; nothing is computed
here. Files are written into a temporary folder beside the output and renamed into place, so a
failed run leaves nothing half-written; a write that fails (a full disk) is one line for the user, and a
previous output stays as it was. report.json is validated against `schema.SCHEMA` before it is written. A mismatch is
a programming error that the test suite catches (it validates every report it writes, strictly); a user's run
still gets its files, with one warning naming the first mismatch, because losing a long run's results to a
schema slip would cost far more than the slip.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import numpy as np

from lorafair.core import atomic
from lorafair.report import schema
from lorafair.report.render import render_markdown

REPORTS = "the reports"  # what the one-line error of a failed write names


log = logging.getLogger(__name__)


def predictions_csv(report: dict, probs: dict, y: np.ndarray) -> str:
    """One row per example: its index in the data file, the label, per variant the prediction and probabilities."""
    labels = [str(x) for x in report["data"]["labels"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    variants = list(report["variants"])
    writer.writerow(
        ["index", "label", *[c for v in variants for c in [f"pred_{v}", *(f"prob_{v}_{name}" for name in labels)]]]
    )
    for row, index in enumerate(report["data"]["indices"]):
        cells = [index, labels[y[row]]]
        for v in variants:
            cells.append(labels[int(np.argmax(probs[v][row]))])
            cells.extend(repr(float(p)) for p in probs[v][row])
        writer.writerow(cells)
    return buffer.getvalue()


FLIPS_COLUMNS = [
    "pair",
    "direction",
    "index",
    "label",
    "pred_reference",
    "pred_new",
    "p_true_reference",
    "p_true_new",
    "p_true_change",
]


def flips_csv(report: dict, probs: dict, y: np.ndarray) -> str:
    """Every example whose correctness differs between B and a reference (report["flips"]["pairs"]: B-A, B-A1):
    per pair the fixed ones (reference wrong, B right) by the rise of p(true class), then the broken ones by its
    fall; the probabilities are predictions.csv's. Only the header when the report has no pair."""
    labels = [str(x) for x in report["data"]["labels"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FLIPS_COLUMNS)
    rows = np.arange(len(y))
    for key, pair in ((report.get("flips") or {}).get("pairs") or {}).items():
        new, ref = probs[pair["new"]], probs[pair["reference"]]
        p_new, p_ref = new[rows, y], ref[rows, y]
        right_new, right_ref = new.argmax(axis=1) == y, ref.argmax(axis=1) == y
        change = p_new - p_ref
        fixed = np.flatnonzero(right_new & ~right_ref)
        broken = np.flatnonzero(~right_new & right_ref)
        for direction, order in (
            ("fixed", fixed[np.argsort(-change[fixed], kind="stable")]),
            ("broken", broken[np.argsort(change[broken], kind="stable")]),
        ):
            for row in order:
                writer.writerow(
                    [
                        key,
                        direction,
                        report["data"]["indices"][row],
                        labels[y[row]],
                        labels[int(ref[row].argmax())],
                        labels[int(new[row].argmax())],
                        repr(float(p_ref[row])),
                        repr(float(p_new[row])),
                        repr(float(change[row])),
                    ]
                )
    return buffer.getvalue()


def write_outputs(report: dict, probs: dict, y: np.ndarray, output: str | Path, overwrite: bool) -> Path:
    """Write every output into a temp folder, then swap it into place (atomic for the folder as a whole)."""
    output = atomic.check_output(output, overwrite)  # again: the folder may have changed during the run
    with atomic.publish_output(output, REPORTS) as staging:
        write_report_files(staging, report, probs, y)
    return output


def write_report_files(folder: Path, report: dict, probs: dict, y: np.ndarray) -> None:
    """report.json, report.md, predictions.csv, flips.csv and report.html into an existing (staging) folder; report.json's
    text is validated first (a sweep's 130 kB top-level report: ~50 ms, beside seconds of rendering plots)."""
    text = report_json(report)
    try:
        schema.validate(json.loads(text))
    except schema.ReportSchemaError as error:
        log.warning("report.json does not match its schema (written anyway; please report it): %s", error)
    (folder / "report.json").write_text(text, encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (folder / "predictions.csv").write_text(predictions_csv(report, probs, y), encoding="utf-8")
    if report.get("flips"):  # a sweep's top level compares no B: its adapters' folders hold their flips
        (folder / "flips.csv").write_text(flips_csv(report, probs, y), encoding="utf-8")
    from lorafair.report.html import render_html

    (folder / "report.html").write_text(render_html(report), encoding="utf-8")


def report_json(report: dict) -> str:
    """report.json's text: numpy scalars and arrays as plain numbers and lists."""
    return json.dumps(report, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
