"""A board's health over scrape runs: how a run went for it, its streak, and when that is worth an alert.

The rule is stated once here; the ``board_health`` view (storage/boards.py) counts the streak the same
way in SQL, and a test holds the two together.

- a search that found postings is ``ok``; one that found none is ``failed`` when the board or JobSpy
  reported an error, else ``empty``;
- a board's run is ``ok`` when any of its searches was, else ``failed`` when any failed, else ``empty``;
- its streak is the number of its runs in a row, newest first, that were not ``ok``.

A board whose streak reaches exactly the threshold at a run brings one alert (not again at the next
runs of the same streak); its first ``ok`` run after a streak of the threshold or more brings one
recovery line. Both are derived from the runs alone, so no other state is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Status = Literal["ok", "empty", "failed"]
Turn = Literal["alert", "recovered"]


def search_status(found: int, error: str | None) -> Status:
    """How one search of one board went."""
    if found > 0:
        return "ok"
    return "failed" if error else "empty"


def run_status(statuses: Sequence[Status]) -> Status:
    """How a board's run went, from its searches' statuses."""
    if "ok" in statuses:
        return "ok"
    return "failed" if "failed" in statuses else "empty"


def streak(newest_first: Sequence[Status]) -> int:
    """The board's runs in a row, newest first, that failed or found nothing."""
    count = 0
    for status in newest_first:
        if status == "ok":
            break
        count += 1
    return count


def turn(newest_first: Sequence[Status], threshold: int) -> Turn | None:
    """What the newest run means to the user: an alert, a recovery, or nothing new."""
    if not newest_first:
        return None
    if newest_first[0] == "ok":
        return "recovered" if streak(newest_first[1:]) >= threshold else None
    return "alert" if streak(newest_first) == threshold else None
