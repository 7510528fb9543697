"""Statistical power of the paired accuracy comparison: is n big enough to see the gain we hope for?

An accuracy delta between two variants scored on the same examples is tested with McNemar's exact test,
whose power depends on n and on the share of examples where the two variants disagree, psi = (b + c) / n.
For a true difference delta the discordant pairs favour the new variant with probability
q = (psi + delta) / (2 psi). Connor (1987) gives the normal approximation
    n = (z_{1-alpha/2} sqrt(psi) + z_power sqrt(psi - delta^2))^2 / delta^2,
i.e. delta_MDE ~= (z_{1-alpha/2} + z_power) sqrt(psi / n) for small effects. The report runs the *exact*
test, which is a little conservative (Connor's MDE reaches only ~75-79% power with it at n = 100-1000),
so the MDE here is the delta at which the exact test itself reaches 80% power, found from its exact
power function and started from Connor's value. Torch-free: numpy and scipy only.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom, norm

POWER = 0.8
EXPECTED_GAIN = 0.03  # the seed's lowest expected gain (its README: 3-8 pp)
_WINDOW_SD = 9.0  # discordant counts further than this many sd from n*psi carry no probability mass


def connor_n(delta: float, psi: float, alpha: float = 0.05, power: float = POWER) -> float:
    """Connor's (1987) sample size for McNemar's test (normal approximation)."""
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    return (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / (delta * delta)


def _rejection_bound(m: np.ndarray, alpha: float) -> np.ndarray:
    """Largest k with 2 P(Bin(m, 1/2) <= k) < alpha (-1 if none): reject when c <= k or c >= m - k.

    This is exactly the region of scipy's two-sided `binomtest(c, m, 0.5)` that `stats.mcnemar_exact` runs
    (for p = 1/2 its p-value is min(1, 2 min(P(X <= c), P(X >= c)))).
    """
    k = binom.ppf(alpha / 2, m, 0.5).astype(np.int64)  # smallest k with P(X <= k) >= alpha/2
    k = np.where(2 * binom.cdf(k, m, 0.5) < alpha, k, k - 1)
    k = np.where(2 * binom.cdf(k, m, 0.5) < alpha, k, k - 1)  # ppf can sit one above the boundary
    return np.minimum(k, (m - 1) // 2)  # the two tails must not overlap


@lru_cache(maxsize=64)
def _cached_bounds(first: int, last: int, alpha: float) -> np.ndarray:
    """`_rejection_bound` for m = first..last; the root search asks for the same window many times."""
    return _rejection_bound(np.arange(first, last + 1), alpha)


def exact_power(n: int, psi: float, delta: float, alpha: float = 0.05) -> float:
    """Power of the exact McNemar test at alpha when the true discordant share is psi and the true delta is delta."""
    if n < 1 or psi <= 0 or delta <= 0:
        return 0.0 if delta > 0 else alpha  # (delta = 0: the size, not the power)
    delta = min(delta, psi)
    mean, sd = n * psi, math.sqrt(n * psi * (1 - psi))
    lo = max(0, int(mean - _WINDOW_SD * sd) - 1)
    hi = min(n, int(mean + _WINDOW_SD * sd) + 2)
    m = np.arange(max(lo, 1), hi + 1)
    weight = binom.pmf(m, n, psi)
    k = _cached_bounds(max(lo, 1), hi, alpha)
    q = (psi + delta) / (2 * psi)  # P(a discordant pair favours the new variant)
    reject = np.where(k >= 0, binom.cdf(k, m, q) + binom.sf(m - k - 1, m, q), 0.0)
    return float(np.sum(weight * reject))


def mde(n: int, psi: float, alpha: float = 0.05, power: float = POWER) -> float | None:
    """Smallest true accuracy difference the exact McNemar test detects with `power` (None: none can be)."""
    if n < 1 or psi <= 0 or exact_power(n, psi, psi, alpha) < power:
        return None
    return float(brentq(lambda d: exact_power(n, psi, d, alpha) - power, 1e-9, psi, xtol=1e-7))


def n_for_effect(delta: float, psi: float, alpha: float = 0.05, power: float = POWER) -> int | None:
    """Examples needed for the exact test to detect `delta` with `power`, keeping the discordant share psi.

    A true difference delta needs at least delta discordant, so psi is raised to delta where it is below.
    """
    delta = abs(delta)
    if delta <= 0:
        return None
    psi = min(1.0, max(psi, delta))
    n = max(2, math.ceil(connor_n(delta, psi, alpha, power)))
    while exact_power(n, psi, delta, alpha) < power:  # Connor is a little optimistic for the exact test
        n = max(n + 1, math.ceil(n * 1.01))
    return n


def power_fields(discordant: list, n: int, alpha: float) -> dict:
    """The `mde`, `n_for_3pp` and `psi` entries of one paired accuracy delta (b, c = discordant counts)."""
    psi = sum(discordant) / n if n else 0.0
    fields = {
        "psi": psi,
        "mde": mde(n, psi, alpha),
        "n_for_3pp": n_for_effect(EXPECTED_GAIN, psi, alpha),
        "power": POWER,
    }
    if fields["mde"] is None:
        fields["mde_reason"] = "too_few_discordant"  # no difference is detectable at this power with so few
    return fields


def annotate_deltas(delta_blocks: dict, n: int, alpha: float) -> None:
    """Add the power fields to every accuracy delta that carries McNemar's discordant counts (in place)."""
    for per_metric in delta_blocks.values():
        entry = per_metric.get("accuracy") or {}
        if entry.get("value") is not None and entry.get("discordant") is not None:
            entry.update(power_fields(entry["discordant"], n, alpha))


# ------------------------------------------------------------------------------------ underpowered runs
def _ci_includes_zero(entry: dict, alpha: float) -> bool:
    ci = entry.get("ci")
    if ci and ci[0] is not None:
        return ci[0] <= 0 <= ci[1]
    return entry.get("p_value") is None or entry["p_value"] >= alpha  # no bootstrap: the test decides


def underpowered_records(report: dict, alpha: float) -> list[dict]:
    """One record per accuracy delta whose CI includes 0 while its MDE exceeds the observed |delta|."""
    n, available = report["data"]["n"], report["data"].get("n_available")
    records = []
    for key, per_metric in report["deltas"].items():
        entry = per_metric.get("accuracy") or {}
        if entry.get("value") is None or "psi" not in entry or not _ci_includes_zero(entry, alpha):
            continue
        if entry["mde"] is not None and entry["mde"] <= abs(entry["value"]):
            continue
        needed = n_for_effect(entry["value"], entry["psi"], alpha) if entry["value"] else None
        target = needed or entry["n_for_3pp"]
        records.append(
            {
                "kind": "underpowered",
                "delta": key,
                "metric": "accuracy",
                "value": entry["value"],
                "mde": entry["mde"],
                "n": n,
                "n_needed": needed,
                "n_for_3pp": entry["n_for_3pp"],
                "growth": target / n if n else None,
                "exceeds_data": bool(available and target > available),
                "n_available": available,
            }
        )
    return records


def annotate_report(report: dict, alpha: float) -> None:
    """ "mde" / "n_for_3pp" on every paired accuracy delta, and report["power"]: the underpowered records
    (report.words words them in either language)."""
    annotate_deltas(report["deltas"], report["data"]["n"], alpha)
    report["power"] = underpowered_records(report, alpha)
