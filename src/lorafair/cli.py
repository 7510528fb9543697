"""`lorafair` command line: train, compare, quick, demo, report.

Heavy imports (torch, transformers, peft) happen inside the handlers so `lorafair --help` is instant.
Exit codes: 0 ok, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from lorafair.config import CompareConfig, add_arguments, from_namespace
from lorafair.errors import LorafairError

log = logging.getLogger("lorafair")


def _compare(args: argparse.Namespace) -> int:
    from lorafair.compare import run_compare
    from lorafair.report import render_console, write_outputs

    cfg = from_namespace(CompareConfig, args)
    result = run_compare(cfg)
    if _is_writer():
        out = write_outputs(result.report, result.probs, result.labels, cfg.output, cfg.overwrite)
        if not cfg.quiet:
            print(render_console(result.report))
            print(f"reports written to {out}/ (report.json, report.md, report.html, predictions.csv)")
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
    from lorafair.adapter_data import announce_default_eval_data

    chosen = announce_default_eval_data(args.adapter)
    args.data, args.split = chosen.data, chosen.split or args.split
    for name, value in chosen.columns.items():
        setattr(args, name, value)
    if chosen.probe_data and args.probe_data is None:
        args.probe_data = chosen.probe_data


def _train(args: argparse.Namespace) -> int:
    from lorafair.train import run_train, train_config_from_args

    out = run_train(train_config_from_args(args))
    if _is_writer():
        print(f"adapter written to {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lorafair.demo import run_demo

    return run_demo(preset=args.preset, output=args.output, overwrite=args.overwrite, quiet=args.quiet,
                    lang=args.lang)


def _report(args: argparse.Namespace) -> int:
    """Re-render an existing report.json (the single source) to the console, Markdown or HTML."""
    from lorafair.report import render_console, render_markdown

    path = Path(args.input)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise LorafairError(f"report not found: '{path}'")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise LorafairError(f"'{path}' is not valid JSON: {exc}") from exc
    if args.format == "html":
        from lorafair.report_html import render_html

        print(render_html(report))
    else:
        print(render_markdown(report) if args.format == "md" else render_console(report))
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
    parser = argparse.ArgumentParser(prog="lorafair", description="What did LoRA fine-tuning actually do to a model's features?")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compare = sub.add_parser("compare", help="B (LoRA) vs A (frozen base + the same head), A1 (probe), R (random head)")
    add_arguments(compare, CompareConfig)
    compare.set_defaults(handler=_compare)

    quick = sub.add_parser("quick", help="compare with 100 samples, 1,000 resamples, variants B,A")
    add_arguments(quick, CompareConfig)
    _data_optional(quick)
    quick.set_defaults(handler=_quick)

    train = sub.add_parser("train", help="train a LoRA sequence classifier (transformers Trainer + peft)")
    from lorafair.train import add_train_arguments

    add_train_arguments(train)
    train.set_defaults(handler=_train)

    demo = sub.add_parser("demo", help="train on the embedded default assets and compare, end to end")
    demo.add_argument("--preset", choices=("default", "fast"), default="default",
                      help="default: SmolLM2-135M (a Llama decoder, head `score`); fast: MiniLM-L6 (BERT, head `classifier`)")
    demo.add_argument("--output", default="outputs/demo", help="folder for the adapter and the reports")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo output")
    demo.add_argument("--lang", choices=("en", "zh"), default=CompareConfig.lang, help="report language")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)

    report = sub.add_parser("report", help="re-render an existing report.json")
    report.add_argument("input", help="report.json or the folder holding it")
    report.add_argument("--format", choices=("console", "md", "html"), default="console")
    report.set_defaults(handler=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and the error
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return args.handler(args)
    except LorafairError as exc:
        print(f"lorafair: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lorafair: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
