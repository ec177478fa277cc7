"""A forged merge record on the latest table: a version beyond the history, a moment in the future.

A commit carrying only a merge record, as anyone able to write to the lake could add, must
neither hide later analyses from the views nor stop maintenance from merging them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting, envelope_for
from jobping.stored import to_row
from storage.delta import ANALYSED_UP_TO, MERGED_UP_TO, DeltaHistory
from storage.lake import Lake
from storage.maintenance import maintain
from storage.reader import reader
from storage.views import LATEST_VIEW

FORGERIES = {
    "a version beyond the history": {MERGED_UP_TO: "999999999", ANALYSED_UP_TO: "2026-01-01T00:00:00+00:00"},
    "a moment in 9999": {MERGED_UP_TO: "1", ANALYSED_UP_TO: "9999-12-31T00:00:00+00:00"},
}


def stored(lake: Lake, job: str, score: int) -> None:
    """One analysis of job ``job``, stored now as a batch stores it."""
    posting = JobPosting(id=job, site="indeed", job_url=f"https://x.example/{job}", title="Data Engineer")
    analysis = JobAnalysis(
        fit_score=score, verdict="maybe", seniority="mid", remote_policy="remote", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="ok",
    )  # fmt: skip
    now = datetime.now(UTC)
    result = AnalysisResult(analysis=analysis, model="probe", prompt_version="p1")
    history = DeltaHistory(lake)
    history.ensure()
    history.append([to_row(envelope_for(posting, now), result, now, f"msg-{job}")])


def shown(lake: Lake) -> set[str]:
    with reader(lake) as con:
        return {str(key) for (key,) in con.execute(f"SELECT job_key FROM {LATEST_VIEW}").fetchall()}


def probe(work: Path) -> str:
    logging.getLogger("storage.delta").setLevel(logging.CRITICAL)
    said = []
    for name, record in FORGERIES.items():
        lake = Lake(work / name.replace(" ", "-"))
        stored(lake, "1", 40)
        maintain(lake, timedelta(0))
        write_deltalake(
            lake.latest_uri, pl.scan_delta(lake.latest_uri).head(0).collect(), mode="append",
            commit_properties=CommitProperties(custom_metadata=record),
        )  # fmt: skip
        stored(lake, "2", 50)
        if shown(lake) != {"indeed:1", "indeed:2"}:
            raise AssertionError(f"{name}: the views hid an analysis stored after the forged record")
        done = maintain(lake, timedelta(0))
        if done is None or done.merged.rows_merged == 0:
            raise AssertionError(f"{name}: maintenance merged nothing after the forged record")
        stored(lake, "3", 60)
        if shown(lake) != {"indeed:1", "indeed:2", "indeed:3"}:
            raise AssertionError(f"{name}: the views hid an analysis stored after the next maintenance")
        said.append(f"{name}: refused, {done.merged.rows_merged} rows merged again")
    return f"{len(FORGERIES)} forged merge records ({'; '.join(said)}); every later analysis shown"
