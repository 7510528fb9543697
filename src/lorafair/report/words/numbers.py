"""Numbers as the report prints them, in every language: percentage points, p-values, sizes, times.

The one home of each format, so that a delta reads the same in a sentence, a table and a plot caption.
"""

from __future__ import annotations

import math


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_pp(value: float | None, signed: bool = True, unit: bool = True, digits: int = 2) -> str:
    """A difference of fractions in percentage points ("+19.33 pp"); "n/a" for None."""
    if value is None:
        return "n/a"
    text = f"{value * 100:+.{digits}f}" if signed else f"{value * 100:.{digits}f}"
    return f"{text} pp" if unit else text


def fmt_pp_ci(ci, unit: bool = False, digits: int = 2) -> str:
    """A CI of a difference in percentage points ("[-1.20, +3.40]"); "-" where there is none."""
    if not ci or ci[0] is None:
        return "-"
    return f"[{fmt_pp(ci[0], unit=unit, digits=digits)}, {fmt_pp(ci[1], unit=unit, digits=digits)}]"


def fmt_p(p: float | None) -> str:
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return "n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def fmt_bytes(n: float | None) -> str:
    """Sizes as a person reads them: MB below a gigabyte, GB above (decimal units)."""
    if n is None:
        return "n/a"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "n/a"
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def num(value, digits: int = 4) -> str:
    """A value with fixed digits; "n/a" for None or a non-finite number."""
    return f"{value:.{digits}f}" if finite(value) else "n/a"


def signed(value, digits: int = 4) -> str:
    return f"{value:+.{digits}f}" if finite(value) else "n/a"


def fmt_percent(value, digits: int = 1, signed: bool = False) -> str:
    """A fraction in percent ("4.0%", signed: "-6.1%"); "n/a" for None or a non-finite number."""
    if not finite(value):
        return "n/a"
    return f"{value * 100:+.{digits}f}%" if signed else f"{value * 100:.{digits}f}%"


def pct(value) -> str:
    """A relative change in percent ("+4.20%")."""
    return fmt_percent(value, digits=2, signed=True)


def ci_text(ci, digits: int = 4, sign: bool = False) -> str:
    if not ci or ci[0] is None:
        return "-"
    f = signed if sign else num
    return f"[{f(ci[0], digits)}, {f(ci[1], digits)}]"


def fmt_g(value, digits: int = 3) -> str:
    """Short general format (p-values in tables: "0.0127"); "-" for None."""
    return "-" if value is None else f"{value:.{digits}g}"
