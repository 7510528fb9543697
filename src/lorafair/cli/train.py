"""`lorafair train`: a LoRA sequence classifier (transformers Trainer + peft); --seeds for one run per seed."""

from __future__ import annotations

import argparse

from lorafair.cli.common import is_writer
from lorafair.config import TrainConfig, add_arguments, from_namespace

SEEDS_HELP = (
    "comma-separated training seeds, e.g. 0,1,2: one adapter per seed in OUTPUT/seed-K, same data and split "
    "(compare OUTPUT then reports across seeds)"
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help="train a LoRA sequence classifier (transformers Trainer + peft)")
    add_arguments(parser, TrainConfig)
    parser.add_argument("--seeds", default=None, help=SEEDS_HELP)
    parser.add_argument(
        "--no-trunk-reuse", dest="trunk_reuse", action="store_const", const="off", help="same as --trunk-reuse off"
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from lorafair import api

    trained = api.train(from_namespace(TrainConfig, args), seeds=args.seeds)
    if is_writer():
        for result in trained if isinstance(trained, list) else [trained]:
            print(f"adapter written to {result.adapter}")
    return 0
