"""`lorafair compare`: B (LoRA) vs A (frozen base + the same head), A1 (probe), R (random head)."""

from __future__ import annotations

import argparse

from lorafair.cli.common import is_writer
from lorafair.config import CompareConfig, add_arguments, from_namespace

HELP = "B (LoRA) vs A (frozen base + the same head), A1 (probe), R (random head)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("compare", help=HELP)
    add_arguments(parser, CompareConfig)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """One adapter, or several of one base (a sweep): compare, then write and print the reports (rank 0)."""
    from lorafair import api

    cfg = from_namespace(CompareConfig, args)
    result = api.compare(cfg)
    if is_writer():
        out = result.write(cfg.output, cfg.overwrite)
        if not cfg.quiet:
            print(result.to_console())
            print(f"reports written to {out}/ ({result.FILES})")
    return 0
