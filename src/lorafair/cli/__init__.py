"""`lorafair` command line: train, compare, quick, demo, assets, report (one module per subcommand).

Each subcommand module has `add_parser(subparsers)` and `run(args) -> int`; `run` calls the Python API
(`lorafair.api`) and imports it, and with it torch, transformers and peft, only when it runs, so
`lorafair --help` is instant. Exit codes: 0 ok, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from lorafair.cli import assets, compare, demo, quick, report, train
from lorafair.core.errors import LorafairError

log = logging.getLogger("lorafair")

SUBCOMMANDS = (compare, quick, train, demo, assets, report)  # in `lorafair --help` order


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
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(subparsers)
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
