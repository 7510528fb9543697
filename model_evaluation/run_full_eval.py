"""The seed's full evaluation, now one paired lorafair comparison (B, A, A1 and R on identical batches).

    python model_evaluation/run_full_eval.py --model_path ./outputs/lora_adapter \
        --base_model Qwen/Qwen2.5-1.5B --batch_size 16 --max_length 256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Full fair evaluation of a LoRA adapter (wrapper over `lorafair compare`)."
    )
    parser.add_argument(
        "--model_path", required=True, help="LoRA adapter folder (adapter_config.json + adapter_model.safetensors)"
    )
    parser.add_argument(
        "--base_model", default=None, help="base model id or folder (default: the adapter's base_model_name_or_path)"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="evaluation data file/folder or builtin:NAME (default: the "
        "adapter's recorded test split or held-out part; builtin:sentiment-zh if it records none)",
    )
    parser.add_argument(
        "--encoding",
        default=None,
        help="text encoding of --data (CSV/TSV/JSON/JSONL), e.g. gbk or latin-1 (default: UTF-8; the "
        "adapter's own data is read as lorafair train recorded)",
    )
    parser.add_argument("--num_samples", type=int, default=500, help="stratified sample size (0 = all)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--output_dir", default="outputs/full_eval", help="a timestamped run folder is created inside")
    parser.add_argument("--lang", choices=("en", "zh"), default=None, help="report language (default: from the locale)")
    return parser


def to_lorafair_argv(args: argparse.Namespace, variants: str) -> list[str]:
    from lorafair.data.adapter_data import announce_default_eval_data

    data = ["--data", args.data] if args.data else announce_default_eval_data(args.model_path).compare_argv()
    argv = [
        "compare",
        "--adapter",
        args.model_path,
        *data,
        "--num-samples",
        str(args.num_samples),
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
        "--variants",
        variants,
        "--output",
        str(Path(args.output_dir) / time.strftime("%Y%m%d-%H%M%S")),
    ]
    if args.base_model:
        argv += ["--base-model", args.base_model]
    if args.lang:
        argv += ["--lang", args.lang]
    if getattr(args, "encoding", None):  # after the data's own options: the user's choice wins
        argv += ["--encoding", args.encoding]
    return argv


def main(argv: list[str] | None = None) -> int:
    from lorafair.cli import main as lorafair_main
    from lorafair.core.names import ALL_VARIANTS

    args = build_parser().parse_args(argv)
    return lorafair_main(to_lorafair_argv(args, ALL_VARIANTS))


if __name__ == "__main__":
    sys.exit(main())
