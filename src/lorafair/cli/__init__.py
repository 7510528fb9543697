"""`lorafair` command line: train, compare, quick, demo, assets, report.

Heavy imports (torch, transformers, peft) happen inside the handlers so `lorafair --help` is instant.
Exit codes: 0 ok, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from lorafair.config import CompareConfig, add_arguments, from_namespace
from lorafair.core.errors import LorafairError

log = logging.getLogger("lorafair")


def _compare(args: argparse.Namespace) -> int:
    from lorafair.recipes.compare import run_compare
    from lorafair.report.render import render_console
    from lorafair.report.write import write_outputs

    cfg = from_namespace(CompareConfig, args)
    from lorafair.evaluation.sweep_passes import expand_adapters

    specs = cfg.adapter_list()
    paths = expand_adapters(specs)
    if len(paths) > 1:
        return _sweep(cfg, paths)
    cfg = dataclasses.replace(cfg, adapter=specs[0] if paths == [Path(specs[0])] else str(paths[0]))
    result = run_compare(cfg)
    if _is_writer():
        out = write_outputs(result.report, result.probs, result.labels, cfg.output, cfg.overwrite)
        if not cfg.quiet:
            print(render_console(result.report))
            print(f"reports written to {out}/ (report.json, report.md, report.html, predictions.csv)")
    return 0


def _sweep(cfg: CompareConfig, paths: list) -> int:
    """Several adapters of one base: one frozen pass, one LoRA pass each (lorafair.evaluation.sweep_passes)."""
    from lorafair.recipes.sweep import run_sweep, write_sweep_outputs
    from lorafair.report.render import render_console

    result = run_sweep(cfg, paths)
    if _is_writer():
        out = write_sweep_outputs(result, cfg.output, cfg.overwrite)
        if not cfg.quiet:
            print(render_console(result.report))
            print(f"reports written to {out}/ (report.json, report.md, report.html; adapters/NAME/ per adapter)")
    return 0


def _quick(args: argparse.Namespace) -> int:
    """compare with small, fast settings: a first look, not a verdict."""
    for name, value in (("num_samples", 100), ("bootstrap", 1000), ("variants", "B,A")):
        if getattr(args, name) == getattr(CompareConfig, name):
            setattr(args, name, value)
    if args.output == CompareConfig.output:
        args.output = "outputs/quick"
    if args.data is None:
        apply_default_eval_data(args)
    return _compare(args)


def apply_default_eval_data(args: argparse.Namespace) -> None:
    """No --data: the adapter's own recorded evaluation data (its test split or held-out part)."""
    from lorafair.data.adapter_data import announce_default_eval_data

    adapters = args.adapter if isinstance(args.adapter, list) else [args.adapter]
    chosen = announce_default_eval_data(adapters[0])  # a sweep's adapters share one task: the first one's
    args.data, args.split = chosen.data, chosen.split or args.split
    for name, value in chosen.columns.items():
        setattr(args, name, value)
    if chosen.probe_data and args.probe_data is None:
        args.probe_data = chosen.probe_data
    if chosen.encoding and args.encoding == CompareConfig.encoding:  # an --encoding given by the user wins
        args.encoding = chosen.encoding


def _train(args: argparse.Namespace) -> int:
    from lorafair.training.train import run_train, train_config_from_args

    config = train_config_from_args(args)
    if args.seeds:  # one run per seed into OUTPUT/seed-K (same data and split)
        from lorafair.training.seeds import parse_seeds, run_seed_runs

        outs = run_seed_runs(config, parse_seeds(args.seeds))
    else:
        outs = [run_train(config)]
    if _is_writer():
        for out in outs:
            print(f"adapter written to {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lorafair.recipes.demo import run_demo

    return run_demo(preset=args.preset, output=args.output, overwrite=args.overwrite, quiet=args.quiet, lang=args.lang)


def _assets(args: argparse.Namespace) -> int:
    """List the built-in assets, or build some (progress on stderr; each folder's path on stdout, last)."""
    from lorafair.assets import builtin as assets
    from lorafair.assets import catalog as asset_catalog

    if args.action == "list":
        print(asset_catalog.render_asset_table(asset_catalog.asset_statuses()))
        return 0
    if not args.names:
        raise LorafairError("assets fetch needs at least one asset name; see `lorafair assets list`")
    unknown = [n for n in args.names if n not in assets.BUILTIN_MODELS and n not in assets.BUILTIN_DATA]
    if unknown:
        raise LorafairError(
            f"unknown asset {unknown[0]!r}; choose from " + ", ".join([*assets.BUILTIN_MODELS, *assets.BUILTIN_DATA])
        )
    folders = []
    for name in args.names:
        print(f"lorafair: fetching {name}", file=sys.stderr, flush=True)
        folders.append(assets.build_asset(name))
    for folder in folders:
        print(folder)
    return 0


def _report(args: argparse.Namespace) -> int:
    """Re-render an existing report.json (the single source) to the console, Markdown or HTML, in either language."""
    from lorafair.report.html import render_html
    from lorafair.report.render import render_console, render_markdown

    path = Path(args.input)
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
    render = {"console": render_console, "md": render_markdown, "html": render_html}[args.format]
    print(render(report, args.lang), end="")
    return 0


def _data_optional(parser: argparse.ArgumentParser) -> None:
    """`quick` may omit --data: it then evaluates on the adapter's recorded evaluation data."""
    for action in parser._actions:  # argparse has no public way to relax `required` after add_argument
        if action.dest == "data":
            action.required = False
            action.help += " (default here: the adapter's recorded test split or held-out part)"


def _is_writer() -> bool:
    """Under torchrun/accelerate only rank 0 writes files and prints reports."""
    return int(os.environ.get("RANK", "0")) == 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorafair", description="What did LoRA fine-tuning actually do to a model's features?"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, and third-party progress bars and warnings (silenced otherwise)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compare = sub.add_parser("compare", help="B (LoRA) vs A (frozen base + the same head), A1 (probe), R (random head)")
    add_arguments(compare, CompareConfig)
    compare.set_defaults(handler=_compare)

    quick = sub.add_parser("quick", help="compare with 100 samples, 1,000 resamples, variants B,A")
    add_arguments(quick, CompareConfig)
    _data_optional(quick)
    quick.set_defaults(handler=_quick)

    train = sub.add_parser("train", help="train a LoRA sequence classifier (transformers Trainer + peft)")
    from lorafair.training.train import add_train_arguments

    add_train_arguments(train)
    train.add_argument(
        "--seeds",
        default=None,
        help="comma-separated training seeds, e.g. 0,1,2: one adapter per "
        "seed in OUTPUT/seed-K, same data and split (compare OUTPUT then reports across seeds)",
    )
    train.set_defaults(handler=_train)

    demo = sub.add_parser("demo", help="train on the embedded default assets and compare, end to end")
    demo.add_argument(
        "--preset",
        choices=("default", "fast", "qwen", "qwen-1.5b"),
        default="default",
        help="default: SmolLM2-135M (a Llama decoder, head `score`); fast: MiniLM-L6 (BERT, head "
        "`classifier`); qwen: real Qwen2.5-Coder-0.5B on Chinese reviews, Chinese console; qwen-1.5b: "
        "the same at the seed's size (1.5B, 45 min on 2 cores)",
    )
    demo.add_argument("--output", default="outputs/demo", help="folder for the adapter and the reports")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo output")
    demo.add_argument(
        "--lang",
        choices=("en", "zh"),
        default=None,
        help=f"report language (default: the preset's, qwen presets zh; else {CompareConfig.lang})",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)

    assets_cmd = sub.add_parser("assets", help="list the built-in models, tokenizer and data sets, or build them")
    assets_cmd.add_argument("action", choices=("list", "fetch"), help="list: what exists and is built; fetch: build")
    assets_cmd.add_argument("names", nargs="*", metavar="NAME", help="assets to fetch (see `lorafair assets list`)")
    assets_cmd.set_defaults(handler=_assets)

    report = sub.add_parser("report", help="re-render an existing report.json")
    report.add_argument("input", help="report.json or the folder holding it")
    report.add_argument("--format", choices=("console", "md", "html"), default="console")
    report.add_argument("--lang", choices=("en", "zh"), default=None, help="language (default: the run's)")
    report.set_defaults(handler=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and the error
        return int(exc.code or 0)
    # lorafair's own INFO lines always; other libraries' INFO (e.g. torch's exit-time dynamo summary) only with -v
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from lorafair.core.quiet import quiet_third_party

    try:
        with quiet_third_party(verbose=args.verbose):  # no third-party bars/warnings unless -v; ours stay
            return args.handler(args)
    except LorafairError as exc:
        print(f"lorafair: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lorafair: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
