"""A posting's pay as yearly figures, whatever interval the board gave it in."""

from __future__ import annotations

from jobping.analysis import MAX_YEARLY_SALARY
from jobping.contract import JobPosting

# working hours, days, weeks and months in a year: what a rate for one is multiplied by
ANNUAL_FACTOR = {"hourly": 2080, "daily": 260, "weekly": 52, "monthly": 12, "yearly": 1}


def yearly_salary(posting: JobPosting, flags: list[str] | None = None) -> tuple[float | None, float | None]:
    """The posting's pay a year; an implausible figure (90,000 "hourly") is None, noted in ``flags``."""
    factor = ANNUAL_FACTOR.get(posting.interval or "yearly", 1)

    def yearly(amount: float | None) -> float | None:
        if amount is None:
            return None
        value = round(amount * factor, 2)
        if value <= MAX_YEARLY_SALARY:
            return value
        if flags is not None:
            flags.append(f"salary {amount:,.0f} {posting.interval or 'yearly'} is implausible as pay: ignored")
        return None

    return yearly(posting.min_amount), yearly(posting.max_amount)
