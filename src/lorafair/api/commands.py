"""`lorafair.compare`, `sweep`, `train`, `demo`: the CLI's commands as functions returning typed results.

    import lorafair
    result = lorafair.compare(adapter="outputs/lora_adapter", data="test.csv", num_samples=500)
    result.report["deltas"]["B-A"]["accuracy"]["value"], result.predictions, result.write("outputs/compare")

Each takes a config object and/or keyword options named as the config's fields (the CLI's options with
`_` for `-`); nothing is written until `.write()`, except by `train` and `demo`, whose output is the point.
Heavy imports (torch, transformers, peft) happen inside the calls, so `import lorafair` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lorafair.api.options import document, make_config
from lorafair.api.results import CompareResult, DemoResult, SweepResult, TrainResult
from lorafair.config import CompareConfig, TrainConfig
from lorafair.core.errors import LorafairError


@document(
    """Compare a LoRA adapter (B) with its frozen base carrying the same head (A), a linear probe (A1) and a
    random head (R), on the same examples and batches; what `lorafair compare` does.

    Returns a CompareResult (.report, .predictions, .write(folder), .to_html()); several adapters (`adapter` a
    list, or a folder of seed-K/ or checkpoint-*/ adapters) are compared in one run and give a SweepResult.
    Nothing is written until `.write(folder)`; an `output` given here is checked before any work, as the
    CLI does, and is where `.write()` writes by default.
    A mistake in the input raises lorafair.LorafairError (one line).""",
    CompareConfig,
)
def compare(config: CompareConfig | None = None, /, **options) -> CompareResult | SweepResult:
    cfg = make_config(CompareConfig, config, _no_default_output(config, options), "compare")
    from lorafair.evaluation.sweep_passes import expand_adapters

    specs = cfg.adapter_list()
    paths = expand_adapters(specs)
    if len(paths) > 1:
        return _sweep(cfg, paths)
    cfg = dataclasses.replace(cfg, adapter=specs[0] if paths == [Path(specs[0])] else str(paths[0]))
    from lorafair.recipes.compare import run_compare

    comparison = run_compare(cfg)
    return CompareResult(comparison.report, comparison.probs, comparison.labels, cfg)


@document(
    """Compare several adapters of one base in one run: one frozen pass, one LoRA pass per adapter; what
    `lorafair compare --adapter X --adapter Y` (or a folder of adapters) does.

    Returns a SweepResult: .report (the top level: A1, R, "adapters", "sweep", "across_seeds"), .adapters
    (name -> CompareResult, each exactly a single compare's report), .write(folder), .to_html().""",
    CompareConfig,
)
def sweep(config: CompareConfig | None = None, /, **options) -> SweepResult:
    cfg = make_config(CompareConfig, config, _no_default_output(config, options), "sweep")
    from lorafair.evaluation.sweep_passes import expand_adapters

    return _sweep(cfg, expand_adapters(cfg.adapter_list()))


def _no_default_output(config, options: dict) -> dict:
    """Keyword options without `output`: nothing to check or write until `.write(folder)` (the CLI's default
    folder, outputs/compare, is the CLI's: a Python caller who did not name it is not writing there)."""
    return options if config is not None or "output" in options else {**options, "output": None}


def _sweep(cfg: CompareConfig, paths: list) -> SweepResult:
    from lorafair.recipes.sweep import run_sweep

    run = run_sweep(cfg, paths)
    adapters = {
        entry["name"]: CompareResult(c.report, c.probs, c.labels, dataclasses.replace(cfg, adapter=entry["path"]))
        for entry, c in zip(run.report.get("adapters", []), run.adapters)
    }
    return SweepResult(run.report, run.probs, run.labels, cfg, adapters, run)


_SEEDS_DOC = """
    seeds (str | list[int] | None, default None)
        one run per training seed, e.g. [0, 1, 2] or "0,1,2", into OUTPUT/seed-K (same data and split);
        returns a list of TrainResult, one per seed"""


@document(
    """Train a LoRA sequence classifier (transformers Trainer + peft, SEQ_CLS); what `lorafair train` does.

    Writes the adapter folder (adapter, head, tokenizer, lorafair_run.json) atomically and returns a
    TrainResult: .adapter (the folder), .metadata (its RunMetadata), .metrics ({"train", "eval"}).""",
    TrainConfig,
    extra=_SEEDS_DOC,
)
def train(
    config: TrainConfig | None = None, /, *, seeds: str | list[int] | None = None, **options
) -> TrainResult | list[TrainResult]:
    cfg = make_config(TrainConfig, config, options, "train")
    if seeds is None:
        from lorafair.training.train import train_model

        trained = train_model(cfg)
        return TrainResult(trained.output_dir, trained.metadata)
    from lorafair.training.seeds import parse_seeds, run_seed_runs

    spec = seeds if isinstance(seeds, str) else ",".join(str(s) for s in seeds)
    return [_trained(folder) for folder in run_seed_runs(cfg, parse_seeds(spec))]


def _trained(folder: Path) -> TrainResult:
    from lorafair.data import run_metadata

    return TrainResult(Path(folder), run_metadata.read(folder))


def demo(
    preset: str = "default", output: str = "outputs/demo", overwrite: bool = False, quiet: bool = False, lang=None
) -> DemoResult:
    """Train on a preset's built-in training data, then compare on its test data; what `lorafair demo` does.

    preset: default (SmolLM2-135M), fast (MiniLM-L6), qwen, qwen-1.5b; OUTPUT/adapter and OUTPUT/report are
    written (an existing OUTPUT needs overwrite=True); lang: the report's language (default: the preset's)."""
    from lorafair.recipes.demo import run_demo

    run = run_demo(preset=preset, output=output, overwrite=overwrite, quiet=quiet, lang=lang)
    comparison = run.comparison
    return DemoResult(
        TrainResult(run.trained.output_dir, run.trained.metadata),
        CompareResult(comparison.report, comparison.probs, comparison.labels, run.compare_config),
        run.report_dir,
        run.timing_line(),
    )


def read_report(path: str | Path) -> dict:
    """report.json (or the folder holding it) as a dict, checked to be a lorafair report; mistakes are one line."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise LorafairError(f"report not found: '{path}'")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise LorafairError(f"'{path}' is not valid JSON: {exc}") from exc
    if not isinstance(report, dict) or not isinstance(report.get("variants"), dict):
        raise LorafairError(f"'{path}' is not a lorafair report (no \"variants\")")
    return report


def render_report(report: dict, format: str = "console", lang: str | None = None) -> str:
    """A report dict rendered as the console tables, Markdown (md) or the HTML page, in en or zh."""
    from lorafair.report.html import render_html
    from lorafair.report.render import render_console, render_markdown

    renderers = {"console": render_console, "md": render_markdown, "html": render_html}
    if format not in renderers:
        raise LorafairError(f"unknown report format {format!r}; choose from {', '.join(renderers)}")
    return renderers[format](report, lang)
