"""Do training seeds agree? The directions of their LoRA updates, and the predictions of their B models.

Torch-free (numpy arrays in, numbers and records out); the recipe reads each seed's LoRA factors and B predictions.

Weights. LoRA's factors are not identifiable: B·A = (B M)(M⁻¹ A) for every invertible r x r M, so two seeds can
learn one update through unrelated A and B. Only ΔW = scaling · B·A, as peft merges it, is compared, never A or B
alone. In the math layout (y = W x, out x in) ΔW = scaling · B A for every module, GPT-2's Conv1D included (peft
transposes the product only to match the stored weight): left singular vectors live in the module's output space,
right ones in its input space. ΔW has rank <= r: with the thin QR decompositions B = Q_B R_B and Aᵀ = Q_A R_A,
ΔW = Q_B (scaling R_B R_Aᵀ) Q_Aᵀ, so its singular vectors are Q_B U and Q_A V from the SVD U Σ Vᵀ of the r x r
core, exactly, without forming the out x in matrix.

Two seeds' updates are compared by Hu et al. (2021, §7)'s normalised subspace similarity
φ(i, j) = ‖U_iᵀ U_j‖²_F / min(i, j) in [0, 1] of their top-i and top-j singular vectors (for i = j, the mean
squared cosine of the principal angles between the two subspaces), at three depths (DEPTHS):
    top1     the top singular direction of each: cos² of the angle between them
    energy   the directions holding 90% of ‖ΔW‖²_F, each seed its own count (weight_delta.effective_rank)
    rank     every direction of ΔW (its numerical rank: r unless B or A lost rank)
on both sides. Two random subspaces of dimensions i and j in R^d have E φ = max(i, j) / d, given as `chance`.

Predictions. Churn: the share of evaluation examples on which the seeds' B models do not all predict one class,
the mean pairwise disagreement rate, and the same for the correct / incorrect status (equal for two classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from lorafair.stats import weight_delta

SIDES = ("left", "right")  # output space, input space
DEPTHS = ("top1", "energy", "rank")
HEADLINE = ("left", "energy")  # the most and least alike layers are named by this similarity


@dataclass
class Directions:
    """The singular vectors (columns, largest singular value first) and values of one ΔW with σ > 0."""

    left: np.ndarray  # out x k
    right: np.ndarray  # in x k
    singular: np.ndarray  # k

    @property
    def rank(self) -> int:
        return int(self.singular.size)

    def depth(self, name: str) -> int:
        """How many leading directions a depth takes (0 for a zero ΔW)."""
        counts = {"top1": min(1, self.rank), "energy": weight_delta.effective_rank(self.singular), "rank": self.rank}
        return counts[name]


def delta_directions(lora_a, lora_b, scaling: float) -> Directions:
    """Singular vectors and values of ΔW = scaling · B A (out x in) from thin QRs of B and Aᵀ and an r x r SVD."""
    a = np.asarray(lora_a, dtype=np.float64)
    b = np.asarray(lora_b, dtype=np.float64)
    q_b, r_b = np.linalg.qr(b)
    q_a, r_a = np.linalg.qr(a.T)
    u, s, vt = np.linalg.svd(scaling * (r_b @ r_a.T), full_matrices=False)
    tolerance = s.max(initial=0.0) * max(b.shape[0], a.shape[1]) * np.finfo(np.float64).eps  # numpy's matrix_rank
    keep = s > tolerance
    return Directions(q_b @ u[:, keep], q_a @ vt[keep].T, s[keep])


def subspace_similarity(u1: np.ndarray, u2: np.ndarray) -> float | None:
    """Hu et al.'s φ = ‖U1ᵀ U2‖²_F / min(i, j) of two orthonormal bases (as columns); None when one is empty."""
    k = min(u1.shape[1], u2.shape[1])
    return float(np.sum((u1.T @ u2) ** 2) / k) if k else None


def pair_similarity(first: Directions, second: Directions) -> dict:
    """{"left": {depth: φ}, "right": {depth: φ}, "chance": {side: {depth: max(i, j) / d}}} of two seeds' ΔW."""
    out: dict = {"chance": {}}
    for side in SIDES:
        u1, u2 = getattr(first, side), getattr(second, side)
        out[side], out["chance"][side] = {}, {}
        for depth in DEPTHS:
            i, j = first.depth(depth), second.depth(depth)
            out[side][depth] = subspace_similarity(u1[:, :i], u2[:, :j])
            out["chance"][side][depth] = max(i, j) / u1.shape[0] if min(i, j) else None
    return out


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def average(pairs: list[dict]) -> dict:
    """The mean of every similarity and chance value over pair records (a value that is None does not count)."""
    out: dict = {"chance": {}}
    for side in SIDES:
        out[side] = {d: _mean(p[side][d] for p in pairs) for d in DEPTHS}
        out["chance"][side] = {d: _mean(p["chance"][side][d] for p in pairs) for d in DEPTHS}
    return out


def module_agreement(module: str, factors: list[tuple]) -> dict:
    """One module's record: every pair of seeds compared, and their mean. `factors`: (A, B, scaling) per seed."""
    directions = [delta_directions(a, b, scaling) for a, b, scaling in factors]
    pairs = [
        {"seeds": [i, j], **pair_similarity(directions[i], directions[j])}
        for i, j in combinations(range(len(directions)), 2)
    ]
    layer, kind = weight_delta.layer_and_kind(module)
    lora_a, lora_b, _ = factors[0]
    return {
        "module": module,
        "layer": layer,
        "kind": kind,
        "shape": [int(np.shape(lora_b)[0]), int(np.shape(lora_a)[1])],
        "r": int(np.shape(lora_a)[0]),
        "ranks": [d.rank for d in directions],
        "energy_ranks": [d.depth("energy") for d in directions],
        **average(pairs),
        "pairs": pairs,
    }


def layer_summaries(modules: list[dict]) -> list[dict]:
    """Per transformer layer: the mean over its modules and every pair of seeds."""
    layers = sorted({m["layer"] for m in modules if m["layer"] is not None})
    out = []
    for layer in layers:
        inside = [m for m in modules if m["layer"] == layer]
        out.append({"layer": layer, "modules": len(inside), **average([p for m in inside for p in m["pairs"]])})
    return out


def pair_summaries(modules: list[dict], names: list[str]) -> list[dict]:
    """Per pair of seeds: the mean over every module."""
    out = []
    for i, j in combinations(range(len(names)), 2):
        chosen = [p for m in modules for p in m["pairs"] if p["seeds"] == [i, j]]
        out.append({"seeds": [i, j], "adapters": [names[i], names[j]], **average(chosen)})
    return out


def _extreme(layers: list[dict], pick) -> dict | None:
    side, depth = HEADLINE
    scored = [(entry[side][depth], entry["layer"]) for entry in layers if entry[side][depth] is not None]
    if not scored:
        return None
    value, layer = pick(scored)
    return {"layer": layer, "value": value, "side": side, "depth": depth}


def weight_agreement(per_module: dict[str, list[tuple]], names: list[str]) -> dict:
    """{"modules", "layers", "pairs", "summary"} over every module; `per_module`: {module: [(A, B, scaling)] per seed}."""
    modules = [module_agreement(name, factors) for name, factors in per_module.items()]
    layers = layer_summaries(modules)
    summary = {
        "modules": len(modules),
        "n_seeds": len(names),
        "energy": weight_delta.ENERGY,
        **average([p for m in modules for p in m["pairs"]]),
        "most_alike": _extreme(layers, max),
        "least_alike": _extreme(layers, min),
    }
    return {"modules": modules, "layers": layers, "pairs": pair_summaries(modules, names), "summary": summary}


# ----------------------------------------------------------------------------------------- predictions
def _disagreement(matrix: np.ndarray, pairs: list) -> dict:
    """Examples on which the rows (one per seed) are not all equal, and every pair's disagreement rate."""
    differs = np.any(matrix != matrix[0], axis=0)
    pairwise = [float(np.mean(matrix[i] != matrix[j])) for i, j in pairs]
    return {
        "examples": int(differs.sum()),
        "share": float(differs.mean()),
        "pairwise": pairwise,
        "pairwise_mean": float(np.mean(pairwise)),
    }


def prediction_churn(y, predictions: list, names: list[str]) -> dict:
    """How often the seeds' B models predict differently, and differ in being right, on one evaluation set."""
    y = np.asarray(y)
    preds = np.stack([np.asarray(p) for p in predictions])
    if preds.shape[0] < 2 or preds.shape[1] != y.size or y.size == 0:
        raise ValueError(f"predictions of at least 2 seeds on the {y.size} examples expected, got {preds.shape}")
    correct = preds == y
    pairs = list(combinations(range(len(names)), 2))
    return {
        "n_seeds": len(names),
        "n": int(y.size),
        "pairs": [[i, j] for i, j in pairs],
        "predictions": _disagreement(preds, pairs),
        "correctness": _disagreement(correct, pairs),
        "all_correct": int(correct.all(axis=0).sum()),
        "none_correct": int((~correct).all(axis=0).sum()),
    }


# ------------------------------------------------------------------------------------ statements as records
def agreement_records(block: dict | None) -> list[dict]:
    """The conclusion records of report["seed_agreement"]: the churn of B's predictions, the subspace similarity."""
    if not block:
        return []
    records = []
    churn = block.get("churn")
    if churn:  # first: right after the across-seed statements it qualifies
        records.append(
            {
                "kind": "seed_churn",
                "n_seeds": churn["n_seeds"],
                "n": churn["n"],
                "examples": churn["predictions"]["examples"],
                "share": churn["predictions"]["share"],
                "pairwise": churn["predictions"]["pairwise_mean"],
                "correct_examples": churn["correctness"]["examples"],
                "correct_share": churn["correctness"]["share"],
                "correct_pairwise": churn["correctness"]["pairwise_mean"],
            }
        )
    summary = block.get("summary")
    if summary and summary["modules"]:
        records.append({"kind": "seed_subspace", **{k: summary[k] for k in ("n_seeds", "modules", *SIDES, "chance")}})
    return records
