"""Report dicts of a sweep: one per adapter (exactly a single compare's report) and the top-level one.

The top-level report.json holds the adapter-independent variants (A1, R) in "variants", and adds
  "adapters": [{"name", "path", "config": {r, alpha, target_modules, layers, steps, seed}, "head_sha256",
                "variants", "deltas"}, ...],
  "sweep": [{"adapter", "delta", "metric", "value", "ci", "p_value", "p_holm"}, ...],
  "across_seeds": {delta: {metric: {"n_seeds", "mean", "sd", "ci", "per_seed"}}}   (seed sets only),
  "seed_agreement": {"adapters", "modules", "layers", "pairs", "summary", "churn", "notes", "seconds"} (seed sets
                    only: do the seeds' LoRA updates point the same way, do their B models predict alike),
and states Holm's result, the across-seed result and the seeds' agreement as conclusion records ("holm",
"across_seeds", "seed_subspace", "seed_churn").
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lorafair.config import CompareConfig, resolve_pos_label
from lorafair.core.names import ADAPTER_HEAD_VARIANTS
from lorafair.data import adapter_data
from lorafair.evaluation import run_info, seed_factors
from lorafair.evaluation.analysis_pass import single_threaded_blas
from lorafair.evaluation.sweep_passes import ADAPTERS_DIR, SHARED_VARIANTS, plan_sweep, run_sweep_variants
from lorafair.models.inference import softmax
from lorafair.recipes import compare
from lorafair.report.build import ReportInput, add_diagnosis, add_sweep_conclusions, build_report
from lorafair.stats import multi_adapter as sweep_stats
from lorafair.stats import seed_agreement


def _report_input(cfg, plan, outcome, variants, results, passes, notes, fidelity=None) -> ReportInput:
    probs = probs_of(results)
    return ReportInput(
        cfg=cfg,
        variants=variants,
        y=plan.base.y,
        probs=probs,
        heads={v: r.head_sha256 for v, r in results.items()},
        speed={v: r.speed for v, r in results.items() if r.speed is not None},
        data=run_info.data_info(plan.base, outcome.token_sha, outcome.token_seconds, outcome.truncated),
        environment=run_info.environment_info(plan.base),
        deltas=compare.DELTAS,
        passes=passes,
        notes=notes,
        head_name=plan.base.adapter.head_name,
        head=outcome.head,
        fidelity=fidelity,
        texts=plan.base.examples.subset(plan.base.eval_idx).texts,
        token_lengths=outcome.token_lengths,
    )


def adapter_comparison(cfg, plan, outcome, index: int) -> compare.Comparison:
    """The report of one adapter of the sweep: B and A its own, A1 and R shared."""
    run = outcome.runs[index]
    results = {**run.results, **outcome.shared.results}
    variants = [v for v in plan.base.variants if v in results]
    member = {"kind": "sweep_member", "index": index + 1, "count": len(outcome.runs)}
    notes = [member, *outcome.shared.notes, *run.outcome.notes]
    if "A" in results:
        notes.append({"kind": "sweep_a_from_features"})
    if "B" in results and len(outcome.runs) > 1:
        notes.append({"kind": "sweep_base_restored"})
    inp = _report_input(
        run.plan.cfg,
        plan,
        outcome,
        variants,
        {v: results[v] for v in variants},
        outcome.shared.passes + run.outcome.passes,
        notes,
        run.outcome.fidelity,
    )
    inp.data = compare.with_held_out(run.plan.cfg, inp.data)  # held-out rows: named by their training file
    inp.task_checks = adapter_data.task_records(run.plan.cfg, inp.data)  # this adapter's recorded task
    report = build_report(inp)
    add_diagnosis(report, compare.recorded_run(run.plan.cfg))  # this adapter's training; A1 shared
    return compare.Comparison(report, inp.probs, plan.base.y)


def _adapter_entry(name, path, summary, report) -> dict:
    heads = {v: b.get("head_sha256") for v, b in report["variants"].items() if v in ADAPTER_HEAD_VARIANTS}
    return {
        "name": name,
        "path": str(path),
        "config": summary,
        "head_sha256": heads.get("B") or heads.get("A"),
        "variants": report["variants"],
        "deltas": report["deltas"],
        "folder": f"{ADAPTERS_DIR}/{name}",
    }


def _across_seeds(cfg, plan, comparisons) -> dict:
    per_seed = [{v: c.probs[v] for v in ("B", "A") if v in c.probs} for c in comparisons]
    shared = {v: comparisons[0].probs[v] for v in SHARED_VARIANTS if v in comparisons[0].probs}
    binary = len(plan.base.label_names) == 2
    return sweep_stats.across_seeds(
        plan.base.y,
        per_seed,
        shared,
        compare.DELTAS,
        n_resamples=cfg.bootstrap,
        seed=cfg.seed,
        alpha=cfg.alpha,
        pos_label=resolve_pos_label(cfg.pos_label, plan.base.label_names) if binary else 1,
    )


def seed_agreement_block(plan, comparisons) -> dict:
    """Do the seeds agree: the subspaces of their ΔW per module (from the saved LoRA tensors) and the churn of
    their B predictions on the shared evaluation set (stats/seed_agreement), with the seconds each took."""
    started = time.perf_counter()
    per_module, notes = seed_factors.lora_factors(plan.adapters)
    with single_threaded_blas():  # hundreds of tiny QRs and SVDs: threads only fight over the cores (20x slower)
        block = {"adapters": list(plan.names), **seed_agreement.weight_agreement(per_module, list(plan.names))}
    weights_done = time.perf_counter()
    if all("B" in c.probs for c in comparisons):
        predictions = [c.probs["B"].argmax(axis=1) for c in comparisons]
        block["churn"] = seed_agreement.prediction_churn(plan.base.y, predictions, list(plan.names))
    block["notes"] = notes
    block["seconds"] = {"weights": weights_done - started, "churn": time.perf_counter() - weights_done}
    return block


def build_sweep_report(cfg, plan, outcome) -> SweepResult:
    comparisons = [adapter_comparison(cfg, plan, outcome, i) for i in range(len(outcome.runs))]
    shared = {v: r for v, r in outcome.shared.results.items()}
    variants = [v for v in plan.base.variants if v in shared]
    passes = outcome.shared.passes + [p for run in outcome.runs for p in _named(run)]
    inp = _report_input(cfg, plan, outcome, variants, shared, passes, list(outcome.shared.notes))
    inp.deltas = ()
    report = build_report(inp)
    report["adapters"] = [
        _adapter_entry(name, adapter.path, summary, c.report)
        for name, adapter, summary, c in zip(plan.names, plan.adapters, plan.summaries, comparisons)
    ]
    report["sweep"] = sweep_stats.sweep_records(report["adapters"])
    if sweep_stats.seed_set(plan.runs):
        report["across_seeds"] = _across_seeds(cfg, plan, comparisons)
        report["seed_agreement"] = seed_agreement_block(plan, comparisons)
    elif len(comparisons) > 1:
        report["notes"].append({"kind": "no_seed_set"})
    add_sweep_conclusions(report, len(comparisons), cfg.alpha)  # Holm and across-seed records, then the English
    logits = [{v: r.logits for v, r in run.results.items()} for run in outcome.runs]
    return SweepResult(report, inp.probs, np.asarray(plan.base.y), comparisons, logits)


def _named(run) -> list[dict]:
    return [{**p, "adapter": run.name} for p in run.outcome.passes]


# -------------------------------------------------------------------------------------------- reports
@dataclass
class SweepResult:
    report: dict  # top level: shared variants, "adapters", "sweep", "across_seeds"
    probs: dict  # shared variants' probabilities (top-level predictions.csv)
    labels: np.ndarray
    adapters: list = field(default_factory=list)  # compare.Comparison per adapter, in sweep order
    logits: list = field(default_factory=list)  # {variant: logits} per adapter (B and A), for checks


def run_sweep(cfg: CompareConfig, paths: list[Path]) -> SweepResult:
    """Compare every adapter in `paths` (one base) on the same batches; see the module docstring."""
    started = time.perf_counter()
    plan = plan_sweep(cfg, paths)
    session = compare.setup_model(plan.base)
    outcome = run_sweep_variants(plan, session)
    del session
    gc.collect()
    result = build_sweep_report(cfg, plan, outcome)
    result.report["timing"] = {"total_seconds": time.perf_counter() - started}
    return result


def write_sweep_outputs(result: SweepResult, output: str | Path, overwrite: bool) -> Path:
    """The top-level files and OUTPUT/adapters/NAME/ for each adapter, swapped into place as one folder."""
    from lorafair.core import atomic
    from lorafair.report.write import REPORTS, write_report_files

    output = atomic.check_output(output, overwrite)
    with atomic.publish_output(output, REPORTS) as staging:
        write_report_files(staging, result.report, result.probs, result.labels)
        for entry, comparison in zip(result.report["adapters"], result.adapters):
            folder = staging / ADAPTERS_DIR / entry["name"]
            folder.mkdir(parents=True)
            write_report_files(folder, comparison.report, comparison.probs, comparison.labels)
    return output


def probs_of(results: dict) -> dict:
    return {v: softmax(r.logits) for v, r in results.items()}
