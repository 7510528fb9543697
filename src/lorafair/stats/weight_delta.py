"""What LoRA did to the weights, per adapted module (torch-free: numpy arrays in, numbers out).

ΔW is built exactly as peft merges it: `transpose(B @ A, fan_in_fan_out) * scaling`, with
scaling = alpha / r (alpha / sqrt(r) under rslora), r the module's own rank (its lora_A rows, so
`rank_pattern` is honoured) and alpha from `alpha_pattern` matched the way peft matches it. Weights
are then read in the math layout y = W x (out x in); GPT-2's Conv1D stores Wᵀ (fan_in_fan_out), so
it is transposed first, making "left singular vectors" always live in the module's output space.

Per module: ‖ΔW‖_F, ‖ΔW‖_F / ‖W‖_F, the 90%-energy effective rank of ΔW (Biderman et al. 2024), and
the intruder dimensions of Shuttleworth et al. (2024): how many of the top-10 left singular vectors of
W + ΔW have max |cos| < 0.5 with every left singular vector of W.
"""

from __future__ import annotations

import math
import re

import numpy as np
import scipy.linalg

ENERGY = 0.9  # share of ‖ΔW‖²_F the effective rank must hold
INTRUDER_TOP = 10  # top singular vectors of W + ΔW that are checked
INTRUDER_COSINE = 0.5  # below this max |cos| with all of W's left singular vectors, a direction is new


def pattern_value(patterns: dict | None, module: str, default):
    """peft's `get_pattern_key`: the first pattern p with re.match(r"(.*\\.)?(p)$", module) wins."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def lora_scaling(config: dict, module: str, rank: int) -> float:
    """The factor peft multiplies B @ A by for `module` (LoraLayer.update_layer)."""
    alpha = pattern_value(config.get("alpha_pattern"), module, config.get("lora_alpha", 8))
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def delta_weight(lora_a, lora_b, scaling: float, fan_in_fan_out: bool = False) -> np.ndarray:
    """ΔW in the layout of the base module's stored weight, as peft's `get_delta_weight` returns it."""
    delta = (np.asarray(lora_b, dtype=np.float64) @ np.asarray(lora_a, dtype=np.float64)) * scaling
    return delta.T if fan_in_fan_out else delta


def delta_singular_values(lora_a, lora_b, scaling: float) -> np.ndarray:
    """Exact singular values of scaling · B A (rank ≤ r) from an r x r core: B = Q_B R_B, Aᵀ = Q_A R_A."""
    _, r_b = np.linalg.qr(np.asarray(lora_b, dtype=np.float64))
    _, r_a = np.linalg.qr(np.asarray(lora_a, dtype=np.float64).T)
    return np.linalg.svd(scaling * (r_b @ r_a.T), compute_uv=False)


def effective_rank(singular_values, energy: float = ENERGY) -> int:
    """The fewest singular values whose squares hold `energy` of the total (0 for a zero matrix)."""
    squares = np.sort(np.asarray(singular_values, dtype=np.float64) ** 2)[::-1]
    total = squares.sum()
    if total <= 0:
        return 0
    share = np.cumsum(squares) / total
    return int(np.searchsorted(share, energy - 1e-12) + 1)


def left_singular_vectors(matrix, top: int | None = None) -> np.ndarray:
    """Left singular vectors of an (out x in) matrix as columns, largest singular value first.

    An exact symmetric eigendecomposition of the smaller Gram matrix (M Mᵀ, or Mᵀ M with U = M V / σ for
    a tall M) in float64: several times faster than a full SVD and equal to it up to signs and rounding.
    `top`: only that many (LAPACK computes just those eigenpairs). Directions with σ = 0 are left out.
    """
    m = np.asarray(matrix, dtype=np.float64)
    wide = m.shape[0] <= m.shape[1]
    gram = m @ m.T if wide else m.T @ m
    size = gram.shape[0]
    k = size if top is None else min(top, size)
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[size - k, size - 1])
    values, vectors = values[::-1], vectors[:, ::-1]
    keep = values > values.max(initial=0.0) * size * np.finfo(np.float64).eps
    values, vectors = values[keep], vectors[:, keep]
    if wide:
        return vectors
    return (m @ vectors) / np.sqrt(values)


def count_intruders(
    base, updated, top: int = INTRUDER_TOP, threshold: float = INTRUDER_COSINE, screen: int = 4 * INTRUDER_TOP
) -> int:
    """How many of the top-`top` left singular vectors of `updated` have max |cos| < threshold with all of `base`'s.

    Exact, but usually without W's full eigendecomposition: W's left singular vectors are orthonormal, so
    the squared cosines of a unit vector with them sum to at most 1. After the leading `screen` of them, a
    candidate is decided when one cosine already reaches the threshold (not an intruder) or when the
    energy left for all the others is below threshold² (none of them can reach it). Only when some
    candidate stays undecided are all of W's left singular vectors computed.
    """
    candidates = left_singular_vectors(updated, top=top)
    leading = left_singular_vectors(base, top=screen)
    cosines = np.abs(leading.T @ candidates)
    best = cosines.max(axis=0) if len(leading.T) else np.zeros(candidates.shape[1])
    remaining = 1.0 - np.sum(cosines**2, axis=0)
    undecided = (best < threshold) & (remaining >= threshold**2 - 1e-9)  # margin: rounding never decides
    if undecided.any() and leading.shape[1] < min(np.shape(base)):
        best = np.abs(left_singular_vectors(base).T @ candidates).max(axis=0)
    return int(np.sum(best < threshold))


def module_record(
    module: str, weight, lora_a, lora_b, scaling: float, *, fan_in_fan_out: bool = False, max_dim: int | None = None
) -> dict:
    """The `analysis.weights` record of one module; `weight` in its stored layout (Conv1D: in x out).

    Intruders need the left singular vectors of W and W + ΔW; where the module's smaller side exceeds
    `max_dim` they are not computed (None, with `intruders_skipped`: {"smaller_side", "max_dim"}), never approximated.
    """
    stored = np.asarray(weight, dtype=np.float64)
    delta = delta_weight(lora_a, lora_b, scaling, fan_in_fan_out)
    if delta.shape != stored.shape:
        raise ValueError(f"{module}: ΔW {delta.shape} does not match the weight {stored.shape}")
    w = stored.T if fan_in_fan_out else stored  # math layout (out x in)
    delta_math = delta.T if fan_in_fan_out else delta
    delta_norm = float(np.linalg.norm(delta))
    weight_norm = float(np.linalg.norm(stored))
    singular = delta_singular_values(lora_a, lora_b, scaling)
    record = {
        "module": module,
        "shape": [int(s) for s in w.shape],
        "rank": int(np.asarray(lora_a).shape[0]),
        "scaling": float(scaling),
        "delta_norm": delta_norm,
        "delta_norm_ratio": delta_norm / weight_norm if weight_norm > 0 else None,
        "effective_rank": effective_rank(singular),
        "intruders": None,
    }
    if max_dim is not None and min(w.shape) > max_dim:
        record["intruders_skipped"] = {"smaller_side": int(min(w.shape)), "max_dim": int(max_dim)}
    elif delta_norm == 0:
        record["intruders"] = 0  # W + ΔW is W: its singular vectors are W's own
    else:
        record["intruders"] = count_intruders(w, w + delta_math)
    return record


def layer_and_kind(module: str) -> tuple[int | None, str]:
    """("model.layers.3.self_attn.q_proj") -> (3, "self_attn.q_proj"): the heatmap's row and column."""
    match = re.search(r"\.(\d+)\.", f".{module}.")
    if not match:
        return None, module
    return int(match.group(1)), f".{module}."[match.end() :].strip(".") or module
