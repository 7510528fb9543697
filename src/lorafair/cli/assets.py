"""`lorafair assets`: list the built-in models, tokenizer and data sets, or build them."""

from __future__ import annotations

import argparse
import sys

from lorafair.core.errors import LorafairError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("assets", help="list the built-in models, tokenizer and data sets, or build them")
    parser.add_argument("action", choices=("list", "fetch"), help="list: what exists and is built; fetch: build")
    parser.add_argument("names", nargs="*", metavar="NAME", help="assets to fetch (see `lorafair assets list`)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
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
