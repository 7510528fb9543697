"""What to try next, from the evidence: report["diagnosis"], rules over the report's own figures.

    report["training"] = training_summary(run_metadata.read(adapter))   # None without lorafair_run.json
    report["diagnosis"] = diagnose(report)                             # [{"kind": ..., the figures}, ...]

Each rule fires only on a measured condition and its record carries the figures that fired it (report/words
words them). Torch-free: numpy and scipy.

Thresholds, and why:
- LARGE_GAIN (3 pp): the smallest gain the power section plans for (power.EXPECTED_GAIN); an A1 - A at least
  this large and significant says A's head is a poor reader of the frozen features, i.e. it co-adapted with LoRA.
- B - A1 is "adequately powered" when its MDE (80% power, exact McNemar) is at most LARGE_GAIN: a 3 pp gain of
  LoRA over the probe would then have been seen 4 times in 5. Below that power and with MDE > |B - A1|, the run
  is "underpowered" instead.
- low rank: every adapted module's 90%-energy rank k (weight_delta.effective_rank) is at most r / 2.
- train longer: over the last tenth of the recorded training steps (at least MIN_TREND_POINTS logged losses), the
  Theil-Sen slope (median of pairwise slopes: robust to the loss's spikes) is negative, the one-sided Mann-Kendall
  trend test (Kendall's tau of loss against step, tau < 0) rejects at alpha, and the fitted fall over the window is
  at least MIN_RELATIVE_DROP of the loss's median there (a significant but negligible fall says nothing).
- linear at layer k: the first layer whose probe on A's frozen states is at least B's accuracy.
- backbone changed: mean KL(base || base+LoRA) per out-of-domain token of at least KL_LARGE = 0.1 nats. KL(p || q)
  is the extra nats per token that q pays on text drawn from p, so 0.1 nats multiplies the LoRA model's
  perplexity on the base's own text by exp(0.1) = 1.105: a 10% worse language model outside the task.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau

from lorafair.stats import verdicts
from lorafair.stats.power import EXPECTED_GAIN
from lorafair.stats.weight_delta import ENERGY

LARGE_GAIN = EXPECTED_GAIN
LOW_RANK_SHARE = 0.5  # k <= r * this in every module: "well below r"
TREND_SHARE = 0.1  # the last tenth of training
MIN_TREND_POINTS = 5  # fewer logged losses in the window: no trend (Mann-Kendall cannot reach p < 0.05 below 5)
MIN_RELATIVE_DROP = 0.01
KL_LARGE = 0.1  # nats per token


# -- report["training"]: the adapter's recorded training (lorafair_run.json) ------------------------------------
def loss_points(log_history) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) of the Trainer's logged training losses, in step order (the final summary has no "loss")."""
    points = [
        (float(e["step"]), float(e["loss"]))
        for e in log_history or []
        if isinstance(e, dict) and _finite(e.get("loss")) and _finite(e.get("step"))
    ]
    points.sort(key=lambda p: p[0])
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the slopes of every pair of points with distinct x (Theil 1950, Sen 1968)."""
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    return float(np.median((y[j] - y[i])[keep] / dx[keep]))


def loss_trend(steps: np.ndarray, losses: np.ndarray, total_steps: float, alpha: float = 0.05) -> dict:
    """The loss over the last tenth of training: Theil-Sen slope, Mann-Kendall p (falling), relative fall."""
    start = total_steps * (1 - TREND_SHARE)
    window = steps > start
    x, y = steps[window], losses[window]
    trend = {"from_step": start, "to_step": total_steps, "points": int(window.sum()), "min_points": MIN_TREND_POINTS}
    trend.update(slope=None, p_value=None, relative_drop=None, falling=False, alpha=alpha)
    if len(x) < MIN_TREND_POINTS or np.ptp(x) == 0:
        return trend
    slope = theil_sen_slope(x, y)
    tau = kendalltau(x, y, alternative="less")
    level = float(np.median(y))
    drop = -slope * (total_steps - start) / level if level > 0 else None
    p = float(tau.pvalue) if _finite(tau.pvalue) else None
    falling = slope < 0 and p is not None and p < alpha and drop is not None and drop >= MIN_RELATIVE_DROP
    trend.update(slope=slope, p_value=p, relative_drop=drop, falling=bool(falling))
    return trend


def training_summary(meta, alpha: float = 0.05) -> dict | None:
    """report["training"] from a RunMetadata (data/run_metadata.read); None without one."""
    if meta is None:
        return None
    steps, losses = loss_points(meta.log_history)
    epochs = [e.get("epoch") for e in meta.log_history or [] if isinstance(e, dict) and _finite(e.get("epoch"))]
    total = meta.global_step or (int(steps[-1]) if len(steps) else None)
    eval_metrics = meta.eval_metrics
    accuracy = eval_metrics.get("accuracy", eval_metrics.get("eval_accuracy"))
    return {
        "steps": total,
        "epochs": float(epochs[-1]) if epochs else None,
        "logged_losses": len(losses),
        "first_loss": float(losses[0]) if len(losses) else None,
        "last_loss": float(losses[-1]) if len(losses) else None,
        "eval_accuracy": float(accuracy) if _finite(accuracy) else None,
        "trend": loss_trend(steps, losses, float(total), alpha) if total and len(losses) else None,
    }


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- report["diagnosis"] ------------------------------------------------------------------------------------------
def diagnose(report: dict) -> list[dict]:
    """Every rule that fires on this report's figures, as records in reading order (what A1 is, then the deltas,
    the layers, the weights, the training, beyond the task)."""
    alpha = (report.get("config") or {}).get("alpha", 0.05)
    records = _a1_records(report)
    for rule in (head_coadapted, b_a1_power, linear_at_layer, low_rank, train_longer, backbone_changed):
        record = rule(report, alpha)  # one signature for every rule; those without a test ignore alpha
        if record is not None:
            records.append(record)
    return records


def _note(report: dict, kind: str) -> dict | None:
    return next((n for n in report.get("notes") or [] if isinstance(n, dict) and n.get("kind") == kind), None)


def _a1_records(report: dict) -> list[dict]:
    """A1 absent: B - A cannot separate the head's co-adaptation from LoRA; A1 cross-fitted: say so."""
    a1 = (report.get("variants") or {}).get("A1")
    if a1 is None:
        note = _note(report, "a1_absent") or {}
        return [{"kind": "a1_absent", "reason": note.get("reason")}]
    if a1.get("cross_fitted"):
        note = _note(report, "probe_cross_fitted") or {}
        return [{"kind": "a1_cross_fitted", "folds": note.get("folds"), "examples": note.get("examples")}]
    return []


def _accuracy(report: dict, key: str) -> dict | None:
    entry = ((report.get("deltas") or {}).get(key) or {}).get("accuracy")
    return entry if entry and entry.get("value") is not None else None


def _cited(entry: dict) -> dict:
    return {"value": entry["value"], "ci": entry.get("ci"), "p_value": entry.get("p_value")}


def head_coadapted(report: dict, alpha: float) -> dict | None:
    """A1 - A at least LARGE_GAIN and significant: the head was trained for the adapted features."""
    entry = _accuracy(report, "A1-A")
    if entry is None or not verdicts.is_significant(entry, alpha) or entry["value"] < LARGE_GAIN:
        return None
    return {"kind": "head_coadapted", **_cited(entry), "threshold": LARGE_GAIN}


def b_a1_power(report: dict, alpha: float) -> dict | None:
    """B - A1 not significant: a probe does as well (MDE <= 3 pp) or the sample is too small (MDE > |B - A1|)."""
    entry = _accuracy(report, "B-A1")
    if entry is None or verdicts.is_significant(entry, alpha) or "n_for_3pp" not in entry:
        return None
    mde = entry.get("mde")
    if mde is not None and mde <= LARGE_GAIN:
        return {"kind": "probe_suffices", **_cited(entry), "mde": mde, "gain": LARGE_GAIN}
    if mde is not None and mde <= abs(entry["value"]):
        return None
    n = (report.get("data") or {}).get("n")
    return {"kind": "b_a1_underpowered", **_cited(entry), "mde": mde, "n": n, "n_for_3pp": entry["n_for_3pp"]}


def linear_at_layer(report: dict, alpha: float = 0.05) -> dict | None:
    """The first layer whose probe on A's frozen states is at least B's accuracy."""
    b = (((report.get("variants") or {}).get("B") or {}).get("metrics") or {}).get("accuracy") or {}
    layers = (report.get("analysis") or {}).get("layers") or []
    if not _finite(b.get("value")):
        return None
    for record in sorted(layers, key=lambda r: r["layer"]):
        probe = (record.get("probe_accuracy") or {}).get("A")
        if _finite(probe) and probe >= b["value"]:
            return {
                "kind": "linear_at_layer",
                "layer": record["layer"],
                "probe_accuracy": probe,
                "b_accuracy": b["value"],
            }
    return None


def low_rank(report: dict, alpha: float = 0.05) -> dict | None:
    """Every adapted module's 90%-energy rank at most half its LoRA rank: a smaller r would hold ΔW."""
    modules = [w for w in (report.get("analysis") or {}).get("weights") or [] if w.get("effective_rank") is not None]
    if not modules or any(w["effective_rank"] > LOW_RANK_SHARE * w["rank"] for w in modules):
        return None
    return {
        "kind": "low_rank",
        "k": max(w["effective_rank"] for w in modules),
        "r": max(w["rank"] for w in modules),
        "modules": len(modules),
        "energy": ENERGY,
    }


def train_longer(report: dict, alpha: float = 0.05) -> dict | None:
    """The training loss still fell, significantly and not negligibly, over the last tenth of training."""
    trend = (report.get("training") or {}).get("trend")
    if not trend or not trend.get("falling"):
        return None
    fields = ("slope", "relative_drop", "p_value", "from_step", "to_step", "points")
    return {"kind": "train_longer", **{k: trend[k] for k in fields}}


def backbone_changed(report: dict, alpha: float = 0.05) -> dict | None:
    """Mean next-token KL(base || base+LoRA) on out-of-domain text of at least KL_LARGE nats."""
    kl = (((report.get("beyond_task") or {}).get("lm")) or {}).get("kl_mean")
    if not _finite(kl) or kl < KL_LARGE:
        return None
    return {"kind": "backbone_changed", "kl_mean": kl, "threshold": KL_LARGE, "perplexity_factor": math.exp(kl)}
