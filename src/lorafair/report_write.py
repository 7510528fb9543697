"""Writers: report.json, report.md, report.html and predictions.csv, written into one output folder.

The renderers live in `report_render` (console, Markdown) and `report_html`; nothing is computed
here. Files are written into a temporary folder beside the output and renamed into place, so a
failed run leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from lorafair import atomic
from lorafair.errors import LorafairError
from lorafair.report_render import render_markdown


def check_output_dir(output: str | Path, overwrite: bool) -> None:
    """Refuse to replace an existing output folder unless asked to (checked before any heavy work)."""
    path = Path(output)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise LorafairError(f"output folder '{path}' already exists; pass --overwrite to replace it")


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


def write_outputs(report: dict, probs: dict, y: np.ndarray, output: str | Path, overwrite: bool) -> Path:
    """Write every output into a temp folder, then swap it into place (atomic for the folder as a whole)."""
    output = Path(output)
    check_output_dir(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic.publish_folder(output) as staging:
        (staging / "report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False, default=_json_default), encoding="utf-8"
        )
        (staging / "report.md").write_text(render_markdown(report), encoding="utf-8")
        (staging / "predictions.csv").write_text(predictions_csv(report, probs, y), encoding="utf-8")
        from lorafair.report_html import render_html

        (staging / "report.html").write_text(render_html(report), encoding="utf-8")
    return output


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
