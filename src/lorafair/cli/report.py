"""`lorafair report`: re-render an existing report.json (the single source) as console, Markdown or HTML."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("report", help="re-render an existing report.json")
    parser.add_argument("input", help="report.json or the folder holding it")
    parser.add_argument("--format", choices=("console", "md", "html"), default="console")
    parser.add_argument("--lang", choices=("en", "zh"), default=None, help="language (default: the run's)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from lorafair import api

    print(api.render_report(api.read_report(args.input), args.format, args.lang), end="")
    return 0
