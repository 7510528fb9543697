"""`lorafair quick`: compare with small, fast settings (a first look, not a verdict); --data may be omitted."""

from __future__ import annotations

import argparse

from lorafair.cli.compare import run as run_compare
from lorafair.config import CompareConfig, add_arguments

QUICK = {"num_samples": 100, "bootstrap": 1000, "variants": "B,A"}  # replace the compare defaults
OUTPUT = "outputs/quick"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("quick", help="compare with 100 samples, 1,000 resamples, variants B,A")
    add_arguments(parser, CompareConfig)
    _data_optional(parser)
    parser.set_defaults(handler=run)
    return parser


def _data_optional(parser: argparse.ArgumentParser) -> None:
    """`quick` may omit --data: it then evaluates on the adapter's recorded evaluation data."""
    for action in parser._actions:  # argparse has no public way to relax `required` after add_argument
        if action.dest == "data":
            action.required = False
            action.help += " (default here: the adapter's recorded test split or held-out part)"


def run(args: argparse.Namespace) -> int:
    for name, value in QUICK.items():
        if getattr(args, name) == getattr(CompareConfig, name):  # an option the user gave wins
            setattr(args, name, value)
    if args.output == CompareConfig.output:
        args.output = OUTPUT
    if args.data is None:
        apply_default_eval_data(args)
    return run_compare(args)


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
