"""Orchestrates one fair comparison and returns the report dict (report.json is its serialisation).

    lorafair compare --adapter outputs/lora_adapter --data builtin:polarity-en --num-samples 500

Recipe, torchtune-style: `plan_compare` checks everything a user can get wrong before any weight loads;
`setup_model` loads the base once and installs the adapter's head (A); one runner per variant (variants.py)
returns its logits, head hash and speed; `build_report` turns them into the report dict, with the data, head,
environment and timing sections of run_info.py. The order keeps peak memory at one model plus the LoRA
deltas: one frozen pass (A's logits and the pooled features that R and A1 reuse) -> merge the LoRA deltas
in place (B) -> one pass.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass

import numpy as np

from lorafair.config import CompareConfig
from lorafair.core.names import DELTAS
from lorafair.data import adapter_data, run_metadata
from lorafair.evaluation import run_info
from lorafair.evaluation.plan import ComparePlan, Session, plan_compare, setup_model  # noqa: F401
from lorafair.evaluation.variants import run_variants
from lorafair.models.inference import softmax

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------- reporting
@dataclass
class Comparison:
    """The report dict plus what predictions.csv is written from."""

    report: dict
    probs: dict
    labels: np.ndarray


def run_compare(cfg: CompareConfig) -> Comparison:
    """Evaluate the requested variants on identical batches and build the report dict."""
    clock = [("start", time.perf_counter())]
    plan = plan_compare(cfg)
    clock.append(("plan", time.perf_counter()))  # adapter, data, sampling, device
    session = setup_model(plan)
    clock.append(("load", time.perf_counter()))  # tokenising, base load, head install
    outcome = run_variants(plan, session)
    clock.append(("variants", time.perf_counter()))  # every forward pass, probe fits, analysis
    token_sha, token_seconds = session.encoded.sha256(), session.encoded.seconds
    truncated, token_lengths = session.encoded.truncated, session.encoded.lengths
    head = run_info.head_section(plan, session, outcome)
    del session  # the weights are not needed for the report: keep them out of its peak memory
    gc.collect()
    probs = {v: softmax(outcome.results[v].logits) for v in plan.variants if v in outcome.results}
    if not plan.ctx.is_main:  # every rank holds the same gathered results; rank 0 alone reports
        return Comparison({}, probs, plan.y)
    from lorafair.report.build import ReportInput, add_diagnosis, build_report

    data = with_held_out(cfg, run_info.data_info(plan, token_sha, token_seconds, truncated))
    report = build_report(
        ReportInput(
            cfg=cfg,
            variants=list(probs),
            y=plan.y,
            probs=probs,
            heads={v: r.head_sha256 for v, r in outcome.results.items()},
            speed={v: r.speed for v, r in outcome.results.items() if r.speed is not None},
            data=data,
            environment=run_info.environment_info(plan),
            deltas=DELTAS,
            passes=outcome.passes,
            notes=outcome.notes,
            head_name=plan.adapter.head_name,
            head=head,
            fidelity=outcome.fidelity,
            speed_section=outcome.speed,
            task_checks=adapter_data.task_records(cfg, data),
            texts=plan.examples.subset(plan.eval_idx).texts,
            token_lengths=token_lengths,
        )
    )
    _add_sections(report, outcome, plan.y)
    add_diagnosis(report, recorded_run(cfg))  # after the last figure it reads
    clock.append(("report", time.perf_counter()))  # statistics, bootstrap, the report dict
    report["timing"] = run_info.timing(clock, outcome.passes)
    return Comparison(report, probs, plan.y)


def _add_sections(report: dict, outcome, y: np.ndarray) -> None:
    """The layer-wise analysis and what changed beyond the task, where this run computed them."""
    if outcome.analysis.enabled:
        report["analysis"] = outcome.analysis.report(y)
    beyond = outcome.beyond.report()
    if beyond is not None:
        report["beyond_task"] = beyond


def recorded_run(cfg: CompareConfig):
    """The adapter's lorafair_run.json (RunMetadata), or None: a plain peft adapter, or a sweep's list."""
    return run_metadata.read(cfg.adapter) if isinstance(cfg.adapter, str) else None


def with_held_out(cfg: CompareConfig, data: dict) -> dict:
    """The report's data section, naming the training file and rows when the data is the adapter's held-out part.

    `lorafair quick` (no --data) evaluates on rows `lorafair train` held out, written to a cache JSONL; the report
    must say which file those rows came from and which rows they are, not only name the cache file.
    """
    adapter = cfg.adapter if isinstance(cfg.adapter, str) else None
    origin = adapter_data.held_out_origin(adapter, data.get("source"))
    if origin is None:
        return data
    rows = origin["rows"]
    evaluated = [rows[i] for i in data["indices"]]  # row j of the cache file is the j-th held-out row
    return {**data, "held_out": {**origin, "evaluated_rows": evaluated}}
