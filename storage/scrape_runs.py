"""The scrape_runs table: what each scrape run saw of each board and search, for the board_health view.

The scrape flow only reads the enriched tables (it creates, widens and repairs none of them); this is a
log of its own, one append commit at the end of each run, beside them in the lake. Its columns are
declared here once (:data:`SCRAPE_RUNS_SCHEMA`): the view (storage/boards.py) and `jobping boards` read them
by these names. A row's ``status`` follows jobping/board_health.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import polars as pl

from jobping.board_health import Status, run_status
from storage.damage import open_table
from storage.lake import SCRAPE_RUNS_TABLE, Lake
from storage.repair import inside
from storage.sightings import append_log

SCRAPE_RUNS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "flow_run_id": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "board": pl.String,
    "search_term": pl.String,
    "search_location": pl.String,
    "found": pl.Int64,
    # found and not stored yet with this content: what went on the queue
    "new": pl.Int64,
    "without_description": pl.Int64,
    # one line, cut; None when the board answered without one
    "error": pl.String,
    "seconds": pl.Float64,
    "status": pl.String,
}


@dataclass(frozen=True)
class SearchRun:
    """One row of the table: one board and search of one scrape run."""

    flow_run_id: str
    started_at: datetime
    board: str
    search_term: str | None
    search_location: str | None
    found: int
    new: int
    without_description: int
    error: str | None
    seconds: float
    status: Status


def record_scrape_runs(lake: Lake, runs: Sequence[SearchRun]) -> None:
    """One append commit with every board and search of a run; the first one creates the table."""
    if not runs:
        return
    frame = pl.DataFrame([vars(run) for run in runs], schema=SCRAPE_RUNS_SCHEMA)
    append_log(lake, lake.scrape_runs_uri, frame)


def scrape_runs(lake: Lake) -> pl.DataFrame:
    """Every row of the table, read from the files inside it only; empty before the first scrape."""
    table = open_table(lake, SCRAPE_RUNS_TABLE)
    if table is None:
        return pl.DataFrame(schema=SCRAPE_RUNS_SCHEMA)
    files = inside(lake, SCRAPE_RUNS_TABLE, table)
    if not files:
        return pl.DataFrame(schema=SCRAPE_RUNS_SCHEMA)
    scan = pl.scan_parquet(
        files, schema=SCRAPE_RUNS_SCHEMA, hive_partitioning=False, storage_options=lake.storage_options
    )
    return scan.collect()


@dataclass(frozen=True)
class BoardRuns:
    """A board's runs, newest first: each run's status, and the newest error among its runs."""

    board: str
    statuses: list[Status]
    last_error: str | None


def board_runs(lake: Lake, boards: Sequence[str]) -> list[BoardRuns]:
    """The runs of ``boards``, newest first, as the table holds them (a run is one flow run's rows of a board)."""
    rows = scrape_runs(lake).filter(pl.col("board").is_in(list(boards)))
    runs = (
        rows.group_by("board", "flow_run_id")
        .agg(pl.col("started_at").min(), pl.col("status"), pl.col("error").drop_nulls().first())
        .sort(["started_at", "flow_run_id"], descending=True)
    )
    found = []
    for board in boards:
        mine = runs.filter(pl.col("board") == board)
        statuses = [run_status(cast("list[Status]", searches)) for searches in mine["status"].to_list()]
        errors = [error for error in mine["error"].to_list() if error]
        found.append(BoardRuns(board, statuses, errors[0] if errors else None))
    return found
