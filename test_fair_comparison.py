"""The seed's quick fair-comparison check: B (LoRA) vs A (frozen base + the same head) only.

python test_fair_comparison.py --model_path ./outputs/lora_adapter --batch_size 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_evaluation.run_full_eval import to_lorafair_argv  # noqa: E402

__test__ = False  # a script, not a pytest module


def main(argv: list[str] | None = None) -> int:
    from lorafair.cli import main as lorafair_main

    parser = argparse.ArgumentParser(description="Quick fair comparison: LoRA model vs frozen base with the same head.")
    parser.add_argument("--model_path", default="./outputs/lora_adapter", help="LoRA adapter folder")
    parser.add_argument("--base_model", default=None, help="base model (default: from the adapter)")
    parser.add_argument(
        "--data",
        default=None,
        help="evaluation data file/folder or builtin:NAME (default: the "
        "adapter's recorded test split or held-out part; builtin:sentiment-zh if it records none)",
    )
    parser.add_argument("--num_samples", type=int, default=200, help="stratified sample size (0 = all)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--output_dir", default="outputs/fair_comparison")
    parser.add_argument("--lang", choices=("en", "zh"), default=None)
    args = parser.parse_args(argv)
    return lorafair_main(to_lorafair_argv(args, "B,A"))


if __name__ == "__main__":
    sys.exit(main())
