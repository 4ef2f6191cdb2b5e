"""How figures are written in reasons and messages (plain strings, no dependencies)."""
from __future__ import annotations

import operator

__all__ = ["compared"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def compared(value: float, op: str, limit: float, digits: int = 2) -> str:
    """``"1.104 > 1.100"``: both numbers with the fewest decimals (at least ``digits``, at most 6)
    that keep the written comparison true, so a reason never reads "1.10 > 1.10" or "0.90 < 0.9"."""
    test = _OPS[op]
    for d in range(digits, 7):
        a, b = f"{value:.{d}f}", f"{limit:.{d}f}"
        if test(float(a), float(b)):
            break
    return f"{a} {op} {b}"
