"""Where A1's training examples come from: never the evaluation examples.

In order of preference: `--probe-data`; the adapter's own training rows (recorded by `lorafair train`, same
data budget as the LoRA had); its recorded training file, sampled; else the part of the evaluation file
outside the evaluation sample; when that is too small too, A1 is cross-fitted on the evaluation examples
themselves (each scored by a probe trained on the other folds: `cross_fit_note`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lorafair.config import CompareConfig
from lorafair.core.hashing import file_sha256
from lorafair.data import examples as data_mod
from lorafair.data.run_metadata import DataRecord
from lorafair.stats.probe import cross_fit_folds

if TYPE_CHECKING:
    from lorafair.evaluation.plan import ComparePlan


def probe_examples(plan: ComparePlan):
    """Training data for A1 and a note record saying where it came from; never the evaluation examples."""
    cfg, adapter = plan.cfg, plan.adapter
    meta = (adapter.run_metadata.train_data if adapter.run_metadata else None) or DataRecord()
    source, columns, encoding = None, {}, cfg.encoding
    if cfg.probe_data:
        source, columns = cfg.probe_data, {}
    elif meta.path and Path(meta.path).exists():
        source = meta.path
        columns = {**meta.columns, **({"split": meta.split} if meta.split else {})}
        encoding = meta.encoding or "auto"  # as `lorafair train` read it (UTF-8 before it recorded one)
    rows = None if cfg.probe_data or source is None else _recorded_training_rows(meta, source)
    if source is not None and Path(source).resolve() == Path(plan.data_path).resolve():
        encoding = cfg.encoding  # the file just read for the evaluation: the same text, so the same rows
        if rows is None:
            source = None  # the evaluation file itself: fall back to its part outside the evaluation sample
        else:  # same data budget, but never an evaluation example
            rows = np.setdiff1d(rows, plan.eval_idx)
    if source is not None:
        probe = data_mod.load_examples(
            source,
            split=columns.get("split"),
            text_column=columns.get("text_column", cfg.text_column),
            text_pair_column=columns.get("text_pair_column", cfg.text_pair_column),
            label_column=columns.get("label_column", cfg.label_column),
            encoding=encoding,
        )
        ids = data_mod.encode_labels(probe.labels, plan.label_names)
        if rows is not None:
            return _same_budget_probe(probe, ids, rows, cfg, source, len(meta.indices))
        keep = data_mod.stratified_sample(ids, cfg.probe_samples, cfg.seed)
        origin = "option" if cfg.probe_data else "recorded"  # --probe-data, or the adapter's recorded training data
        note = {"kind": "probe_data", "origin": origin, "source": str(source), "examples": len(keep)}
        return probe.subset(keep), ids[keep], note
    keep = data_mod.split_off(plan.label_ids, plan.eval_idx, cfg.probe_samples, cfg.seed + 1)
    counts = np.bincount(plan.label_ids[keep], minlength=len(plan.label_names)) if len(keep) else np.zeros(1)
    if counts.min() < 2:  # cross-validating the probe needs two examples of every class
        return None, None, cross_fit_note(plan)
    note = {"kind": "probe_eval_rest", "examples": len(keep), "data": cfg.data}
    return plan.examples.subset(keep), plan.label_ids[keep], note


def _recorded_training_rows(meta: DataRecord, source) -> np.ndarray | None:
    """The rows `lorafair train` trained on (indices into its file), if recorded and the file is unchanged."""
    if meta.indices is None or meta.sha256 != file_sha256(source):
        return None
    return np.asarray(meta.indices, dtype=np.int64)


def _same_budget_probe(probe, ids, rows, cfg: CompareConfig, source, n_trained: int):
    """A1 on the adapter's own training examples (same data budget); --probe-samples caps them, stratified."""
    if len(rows) > cfg.probe_samples > 0:
        rows = rows[data_mod.stratified_sample(ids[rows], cfg.probe_samples, cfg.seed)]
    note = {"kind": "probe_training_rows", "examples": len(rows), "trained": n_trained, "source": str(source)}
    return probe.subset(rows), ids[rows], note


def cross_fit_note(plan: ComparePlan) -> dict:
    """No probe data and too little beside the evaluation sample: A1 is cross-fitted on the evaluation set itself
    (stats/probe.cross_fitted_probe), or skipped when a class has fewer than 3 evaluation examples."""
    folds = cross_fit_folds(plan.y, plan.adapter.num_labels)
    if folds < 2:
        return {"kind": "probe_skipped"}
    return {"kind": "probe_cross_fitted", "folds": folds, "examples": len(plan.eval_idx), "data": plan.cfg.data}
