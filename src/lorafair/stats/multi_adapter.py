"""Statistics over several adapters of one base: Holm-adjusted p-values and the across-seed summary.

Torch-free (numpy, scipy through `stats`/`metrics`), so every number can be recomputed from the
per-adapter predictions.csv files.

- `sweep_records`: one record per adapter, delta and metric, with `p_holm`, Holm-Bonferroni across the
  adapters for that delta and metric (several adapters tested at once inflate the chance of a false gain).
- `across_seeds`: when the adapters are training seeds of one configuration, mean and sd of each delta
  over seeds and a two-level bootstrap CI: each resample draws seeds with replacement and, independently,
  examples of the shared evaluation set with replacement (both sources of variation, Bouthillier et al. 2021).
"""

from __future__ import annotations

import numpy as np

from lorafair.stats import paired as stats
from lorafair.stats.metrics import METRIC_NAMES, weighted_metric_arrays

MIN_SEEDS_FOR_VARIANCE = 3
# Training options that may differ between the runs of one seed set (everything else must match).
SEED_FREE_OPTIONS = (
    "seed",
    "output",
    "overwrite",
    "resume",
    "quiet",
    "logging_steps",
    "save_steps",
    "save_total_limit",
)


def holm_adjust(p_values: list) -> list:
    """Holm-Bonferroni adjusted p-values in input order; None stays None (and does not count in m)."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    adjusted: list = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))  # step-down: adjusted p never decreases
        adjusted[i] = running
    return adjusted


def sweep_records(adapters: list[dict]) -> list[dict]:
    """Flat table over adapters x deltas x metrics; `adapters` entries carry "name" and "deltas"."""
    records = []
    keys = [k for k in adapters[0]["deltas"]] if adapters else []
    for key in keys:
        for metric in METRIC_NAMES:
            entries = [a["deltas"].get(key, {}).get(metric) or {} for a in adapters]
            p_holm = holm_adjust([e.get("p_value") for e in entries])
            for adapter, entry, adjusted in zip(adapters, entries, p_holm):
                records.append(
                    {
                        "adapter": adapter["name"],
                        "delta": key,
                        "metric": metric,
                        "value": entry.get("value"),
                        "ci": entry.get("ci"),
                        "p_value": entry.get("p_value"),
                        "p_holm": adjusted,
                    }
                )
    return records


def seed_set(runs: list[dict]) -> bool:
    """True when the adapters are seed runs of one configuration (distinct seeds, all else equal).

    `runs`: per adapter {"seed": int | None, "train_config": dict | None} from its lorafair_run.json.
    """
    if len(runs) < 2 or any(r.get("seed") is None or not r.get("train_config") for r in runs):
        return False
    if len({r["seed"] for r in runs}) != len(runs):
        return False
    shared = [{k: v for k, v in r["train_config"].items() if k not in SEED_FREE_OPTIONS} for r in runs]
    return all(s == shared[0] for s in shared[1:])


def across_seeds(
    y,
    per_seed: list[dict],
    shared: dict,
    deltas,
    *,
    n_resamples: int,
    seed: int,
    alpha: float,
    pos_label: int = 1,
    chunk_size: int = 500,
) -> dict:
    """{delta: {metric: {"n_seeds", "mean", "sd", "ci", "per_seed"}}} over the seed runs.

    `per_seed`: one {variant: (n, K) probs} per seed (its B and A); `shared`: variants common to all seeds
    (A1, R). The point value of a delta for one seed is metric(new) - metric(ref) on the whole evaluation set.
    """
    y = np.asarray(y)
    n, n_seeds = len(y), len(per_seed)
    runs = [{**shared, **own} for own in per_seed]
    pairs = [(a, b) for a, b in deltas if all(a in r and b in r for r in runs)]
    ones = np.ones((1, n))
    point = {pair: {m: v[0] for m, v in _seed_deltas(y, runs, pair, ones, pos_label).items()} for pair in pairs}
    draws = {pair: {m: np.empty(n_resamples) for m in METRIC_NAMES} for pair in pairs}
    rng = np.random.default_rng(seed)
    rows = max(1, min(chunk_size, 2_000_000 // max(n, 1)))
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        counts = stats._resample_counts(rng, n, stop - start)  # level 2: examples of the shared set
        picks = rng.integers(0, n_seeds, size=(stop - start, n_seeds))  # level 1: seeds
        for pair in pairs:
            per_resample = _seed_deltas(y, runs, pair, counts, pos_label)
            for m in METRIC_NAMES:
                chosen = np.take_along_axis(per_resample[m], picks, axis=1)
                with np.errstate(invalid="ignore"):
                    draws[pair][m][start:stop] = chosen.mean(axis=1)
    out = {}
    for pair in pairs:
        out[f"{pair[0]}-{pair[1]}"] = {
            m: _summary(point[pair][m], draws[pair][m] if n_resamples else None, alpha) for m in METRIC_NAMES
        }
    return out


def _seed_deltas(y, runs, pair, counts, pos_label) -> dict:
    """{metric: (rows, n_seeds)} delta of every seed run under each row of example counts."""
    new, ref = pair
    per_metric = {m: np.empty((counts.shape[0], len(runs))) for m in METRIC_NAMES}
    for s, run in enumerate(runs):
        a = weighted_metric_arrays(y, run[new], counts, pos_label)
        b = weighted_metric_arrays(y, run[ref], counts, pos_label)
        for m in METRIC_NAMES:
            per_metric[m][:, s] = a[m] - b[m]
    return per_metric


def _summary(values: np.ndarray, draws, alpha: float) -> dict:
    values = np.asarray(values).reshape(-1)
    finite = values[~np.isnan(values)]
    n_seeds = int(values.size)
    return {
        "n_seeds": n_seeds,
        "mean": float(finite.mean()) if finite.size == n_seeds and n_seeds else None,
        "sd": float(finite.std(ddof=1)) if finite.size == n_seeds and n_seeds >= 2 else None,
        "ci": stats._percentile_ci(draws, alpha) if draws is not None and finite.size == n_seeds else None,
        "per_seed": [None if np.isnan(v) else float(v) for v in values],
    }


# ------------------------------------------------------------------------------ statements as records
HOLM_METRICS = ("accuracy",)  # the conclusion states Holm's result for these (report["sweep"] holds every metric)
SEED_METRICS = ("accuracy", "f1", "auc_roc")  # ... and the across-seed result for these


def holm_records(records: list[dict], n_adapters: int, alpha: float, metrics=HOLM_METRICS) -> list[dict]:
    """One conclusion record per delta and metric: the adapters still significant after the Holm adjustment."""
    out = []
    for key in dict.fromkeys(r["delta"] for r in records):
        for metric in metrics:
            rows = [r for r in records if r["delta"] == key and r["metric"] == metric and r["p_holm"] is not None]
            if rows:
                hits = [r["adapter"] for r in rows if r["p_holm"] < alpha]
                out.append(
                    {
                        "kind": "holm",
                        "delta": key,
                        "metric": metric,
                        "n_adapters": n_adapters,
                        "alpha": alpha,
                        "significant": hits,
                    }
                )
    return out


def seed_verdict(summary: dict) -> str:
    """robust (the two-level CI excludes 0), not_robust, or variance_unknown (fewer than 3 seeds, no CI)."""
    ci = summary.get("ci")
    if summary["n_seeds"] < MIN_SEEDS_FOR_VARIANCE or not ci or ci[0] is None:
        return "variance_unknown"
    return "robust" if ci[0] > 0 or ci[1] < 0 else "not_robust"


def across_seed_records(across: dict, metrics=SEED_METRICS) -> list[dict]:
    """One conclusion record per delta and metric of `across_seeds` output: mean, sd, CI and the verdict."""
    out = []
    for key, per_metric in across.items():
        for metric in metrics:
            s = per_metric.get(metric)
            if s and s["mean"] is not None:
                out.append(
                    {
                        "kind": "across_seeds",
                        "delta": key,
                        "metric": metric,
                        "n_seeds": s["n_seeds"],
                        "mean": s["mean"],
                        "sd": s["sd"],
                        "ci": s["ci"],
                        "verdict": seed_verdict(s),
                    }
                )
    return out
