"""What `lorafair.compare`, `sweep`, `train` and `demo` return: the report dict plus ways to look at it and save it.

`report` is exactly what report.json holds (it is written from it); `predictions` is predictions.csv as a pandas
DataFrame; `write(folder)` writes what the CLI writes; `to_html` / `to_markdown` / `to_console` render the report
in either language. Nothing here computes a number.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lorafair.config import CompareConfig
from lorafair.core.errors import LorafairError
from lorafair.data.run_metadata import RunMetadata


@dataclass
class _Rendered:
    report: dict  # report.json's content
    probs: dict  # variant id -> (n, K) class probabilities, rows in report["data"]["indices"] order
    labels: np.ndarray  # the true label id of each evaluated example
    config: CompareConfig

    @property
    def predictions(self):
        """predictions.csv as a DataFrame: index, label, then per variant pred_V and prob_V_LABEL (floats)."""
        import pandas as pd

        from lorafair.report.write import predictions_csv

        text = predictions_csv(self.report, self.probs, self.labels)
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        frame["index"] = frame["index"].astype(np.int64)
        for column in frame.columns:
            if column.startswith("prob_"):
                frame[column] = [float(value) for value in frame[column]]  # exact: the file holds repr(float)
        return frame

    def metric(self, variant: str, name: str = "accuracy") -> float | None:
        """One variant's metric value, e.g. result.metric("B", "f1")."""
        return self.report["variants"][variant]["metrics"][name]["value"]

    def delta(self, pair: str = "B-A", name: str = "accuracy") -> dict:
        """One delta entry ({"value", "ci", "p_value", "verdict", ...}), e.g. result.delta("B-A1", "auc_roc")."""
        return self.report["deltas"][pair][name]

    def _destination(self, folder, overwrite) -> tuple:
        """write()'s folder and overwrite: as given, else the config's output and overwrite."""
        folder = self.config.output if folder is None else folder
        if folder is None:
            raise LorafairError("no output folder: pass one, e.g. result.write('outputs/compare')")
        return folder, self.config.overwrite if overwrite is None else overwrite

    def to_html(self, lang: str | None = None) -> str:
        """report.html's content (self-contained page); lang en/zh, default the run's."""
        from lorafair.report.html import render_html

        return render_html(self.report, lang)

    def to_markdown(self, lang: str | None = None) -> str:
        from lorafair.report.render import render_markdown

        return render_markdown(self.report, lang)

    def to_console(self, lang: str | None = None) -> str:
        """The console tables `lorafair compare` prints."""
        from lorafair.report.render import render_console

        return render_console(self.report, lang)


@dataclass
class CompareResult(_Rendered):
    """One adapter compared: B, A, A1 and R on the same examples."""

    FILES = "report.json, report.md, report.html, predictions.csv, flips.csv"

    def write(self, folder: str | Path | None = None, overwrite: bool | None = None) -> Path:
        """Write report.json, report.md, report.html, predictions.csv and flips.csv into `folder` (default: the config's
        output), swapped into place as one folder; an existing folder needs overwrite=True. Returns the folder."""
        from lorafair.report.write import write_outputs

        folder, overwrite = self._destination(folder, overwrite)
        return write_outputs(self.report, self.probs, self.labels, folder, overwrite)


@dataclass
class SweepResult(_Rendered):
    """Several adapters of one base in one run. `report` is the top level (shared variants A1 and R, "adapters",
    "sweep", "across_seeds"); `adapters` holds each adapter's own result, by name, in sweep order."""

    adapters: dict = field(default_factory=dict)  # name -> CompareResult
    _run: object = field(default=None, repr=False)  # the recipe's SweepResult, for the writer

    FILES = "report.json, report.md, report.html; adapters/NAME/ per adapter"

    def write(self, folder: str | Path | None = None, overwrite: bool | None = None) -> Path:
        """The top-level files and adapters/NAME/ per adapter (what `lorafair compare` writes for a sweep)."""
        from lorafair.recipes.sweep import write_sweep_outputs

        folder, overwrite = self._destination(folder, overwrite)
        return write_sweep_outputs(self._run, folder, overwrite)


@dataclass
class TrainResult:
    """A trained adapter: its folder and what its lorafair_run.json records."""

    adapter: Path  # the adapter folder (adapter_config.json, adapter_model.safetensors, tokenizer, lorafair_run.json)
    metadata: RunMetadata

    @property
    def metrics(self) -> dict:
        """{"train": the Trainer's metrics, "eval": accuracy, loss, runtime, ... on the evaluation data}."""
        return self.metadata.metrics or {}


@dataclass
class DemoResult:
    """`lorafair demo`: the adapter it trained and the comparison it wrote."""

    train: TrainResult
    compare: CompareResult
    report_dir: Path
    timing: str  # the "demo wall time ..." line
