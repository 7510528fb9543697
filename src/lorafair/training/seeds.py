"""`lorafair train --seeds 0,1,2`: one adapter per training seed, same data and split, in OUTPUT/seed-K/.

    lorafair train --base-model smollm2-135m --data builtin:polarity-en --seeds 0,1,2 --output outputs/seeds
    lorafair compare --adapter outputs/seeds --data builtin:polarity-en:test   # adds "across_seeds"

Only the seed of the head and LoRA initialisation, shuffling and dropout changes between the runs: the
held-out split and any --max-train-samples subsample are drawn with --data-seed (default: --seed), so every
run trains on the same rows (recorded in each lorafair_run.json). Each run is an ordinary `run_train`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from lorafair.core.errors import LorafairError

log = logging.getLogger(__name__)

SEED_DIR = "seed-{seed}"


def parse_seeds(spec: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; integers, no repeats."""
    try:
        seeds = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise LorafairError(f"--seeds {spec!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise LorafairError(f"--seeds {spec!r}: give at least one seed, each once")
    return seeds


def seed_folder(output: str | Path, seed: int) -> Path:
    return Path(output) / SEED_DIR.format(seed=seed)


def run_seed_runs(config, seeds: list[int]) -> list[Path]:
    """Train one adapter per seed into OUTPUT/seed-K (config: a TrainConfig); returns the folders."""
    from lorafair.training import trunk_reuse
    from lorafair.training.train import run_train

    folders = [seed_folder(config.output, seed) for seed in seeds]
    if not (config.overwrite or config.resume):  # fail before the first run, not after it
        taken = [str(f) for f in folders if f.is_dir() and any(f.iterdir())]
        if taken:
            raise LorafairError(
                f"seed folder(s) {', '.join(taken)} exist and are not empty; pass --overwrite "
                "to replace them or --resume to continue their runs"
            )
    data_seed = config.seed if config.data_seed is None else config.data_seed
    done = []
    with trunk_reuse.shared_between_runs():  # same rows and base: the frozen layers' output is recorded once
        for seed, folder in zip(seeds, folders):
            log.info("training seed %d of %s into %s", seed, ",".join(map(str, seeds)), folder)
            done.append(run_train(replace(config, seed=seed, data_seed=data_seed, output=str(folder))))
    return done
