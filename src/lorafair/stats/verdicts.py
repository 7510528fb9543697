"""What a paired delta says: improved, decreased, no difference, or undefined; and which way is better.

The report builder stores the verdict of every delta; the renderers read it, and work it out here for a
report written before verdicts were stored. Pure Python: no numpy, no torch.
"""

from __future__ import annotations

LOWER_IS_BETTER = ("log_loss", "brier", "ece")  # a fall in these is an improvement


def is_significant(entry: dict, alpha: float) -> bool:
    """CI excludes 0, and the paired test (if any) agrees."""
    ci = entry.get("ci")
    if entry.get("value") is None or not ci or ci[0] is None:
        return False
    excludes_zero = ci[0] > 0 or ci[1] < 0
    p = entry.get("p_value")
    return excludes_zero and (p is None or p < alpha)


def verdict(entry: dict, alpha: float) -> str:
    """improved / decreased (CI excludes 0 and the paired test agrees), no_difference, or undefined."""
    if entry.get("value") is None:
        return "undefined"
    if not is_significant(entry, alpha):
        return "no_difference"
    return "improved" if entry["value"] > 0 else "decreased"


def mark(entry: dict, metric: str, alpha: float = 0.05) -> str | None:
    """'better' / 'worse' for a significant delta read in the metric's direction (a significant fall in log
    loss, Brier or ECE is 'better'); None when it is not significant. Uses the stored verdict where there is one."""
    said = entry.get("verdict") or verdict(entry, alpha)
    if said not in ("improved", "decreased"):
        return None
    return "better" if (said == "improved") != (metric in LOWER_IS_BETTER) else "worse"
