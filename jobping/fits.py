"""What a ping is: the one rule of a fitting analysis, shared by the pings and `jobping eval`.

The rule is written with ``>=``, ``==`` and ``&`` only, so that the same function judges one
analysis (plain values, a bool) and a whole table (polars expressions, an expression): the
digest and the evaluation can never disagree on what fits.
"""

from __future__ import annotations

from typing import Any, overload

# the verdict a fitting analysis gives
PING_VERDICT = "apply"


@overload
def fits(verdict: str, fit_score: int, min_score: int, limits_broken: int = 0) -> bool: ...
@overload
def fits(verdict: Any, fit_score: Any, min_score: int, limits_broken: Any = 0) -> Any: ...
def fits(verdict: Any, fit_score: Any, min_score: int, limits_broken: Any = 0) -> Any:
    """An analysis fits (it is pinged) when it says apply with a fit_score of at least ``min_score`` and
    breaks none of the profile's hard limits (``limits_broken``: how many it breaks)."""
    return (fit_score >= min_score) & (verdict == PING_VERDICT) & (limits_broken == 0)
