"""`lorafair demo`: train on the embedded default assets and compare, end to end (lorafair.recipes.demo)."""

from __future__ import annotations

import argparse

from lorafair.config import CompareConfig

PRESETS = ("default", "fast", "qwen", "qwen-1.5b")  # lorafair.recipes.demo.PRESETS (not imported: --help stays fast)
PRESET_HELP = (
    "default: SmolLM2-135M (a Llama decoder, head `score`); fast: MiniLM-L6 (BERT, head `classifier`); qwen: real "
    "Qwen2.5-Coder-0.5B on Chinese reviews, Chinese console; qwen-1.5b: the same at the seed's size (1.5B, 45 min "
    "on 2 cores)"
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("demo", help="train on the embedded default assets and compare, end to end")
    parser.add_argument("--preset", choices=PRESETS, default="default", help=PRESET_HELP)
    parser.add_argument("--output", default="outputs/demo", help="folder for the adapter and the reports")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing demo output")
    parser.add_argument(
        "--lang",
        choices=("en", "zh"),
        default=None,
        help=f"report language (default: the preset's, qwen presets zh; else {CompareConfig.lang})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from lorafair import api

    result = api.demo(
        preset=args.preset, output=args.output, overwrite=args.overwrite, quiet=args.quiet, lang=args.lang
    )
    print(result.compare.to_console())
    print(result.timing)
    print(f"adapter written to {result.train.adapter}/")
    print(f"reports written to {result.report_dir}/ ({result.compare.FILES})")
    return 0
