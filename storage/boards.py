"""The board_health view over the scrape_runs table, as SQL (`jobping boards` reads it: storage/reader.py).

Per board: its streak of failed or empty runs (runs in a row, newest first, as jobping/board_health.py
counts it), its last status, error, success and run, the postings its last run found and the share of
them without a description, and its last runs' statuses, newest first. A run is one scrape flow run's
rows of a board.
"""

from __future__ import annotations

import polars as pl

from storage.lake import SCRAPE_RUNS_TABLE
from storage.scrape_runs import SCRAPE_RUNS_SCHEMA

SCRAPE_RUNS_VIEW = SCRAPE_RUNS_TABLE
BOARD_HEALTH_VIEW = "board_health"
# the statuses of this many of a board's newest runs are shown
RUNS_SHOWN = 10
DUCKDB_TYPES = {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Float64: "DOUBLE"}


def _duckdb_type(dtype: pl.DataType | type[pl.DataType]) -> str:
    return "TIMESTAMPTZ" if isinstance(dtype, pl.Datetime) else DUCKDB_TYPES[dtype]  # type: ignore[index]


def scrape_runs_statement(scan: str | None, *, temporary: bool = False) -> str:
    """The scrape_runs view: the table as it is (``scan``, a delta_scan), or no rows before the first scrape."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    if scan is None:
        nulls = ", ".join(f"NULL::{_duckdb_type(t)} AS {name}" for name, t in SCRAPE_RUNS_SCHEMA.items())
        return f"CREATE OR REPLACE {kind} {SCRAPE_RUNS_VIEW} AS SELECT {nulls} WHERE false"
    names = ", ".join(SCRAPE_RUNS_SCHEMA)
    return f"CREATE OR REPLACE {kind} {SCRAPE_RUNS_VIEW} AS SELECT {names} FROM {scan}"  # noqa: S608


BOARD_HEALTH_QUERY = (
    "WITH board_runs AS (SELECT board, flow_run_id, min(started_at) AS started_at, sum(found) AS found, "  # noqa: S608
    "sum(without_description) AS without_description, "
    "CASE WHEN bool_or(status = 'ok') THEN 'ok' WHEN bool_or(status = 'failed') THEN 'failed' ELSE 'empty' END "
    f"AS status, min(error) AS error FROM {SCRAPE_RUNS_VIEW} GROUP BY board, flow_run_id), "
    "ranked AS (SELECT *, row_number() OVER (PARTITION BY board ORDER BY started_at DESC, flow_run_id DESC) AS run "
    "FROM board_runs) "
    "SELECT board, coalesce(min(run) FILTER (WHERE status = 'ok') - 1, count(*)) AS streak, "
    "arg_min(status, run) AS last_status, max(started_at) AS last_run, "
    "arg_min(error, run) FILTER (WHERE error IS NOT NULL) AS last_error, "
    "max(started_at) FILTER (WHERE status = 'ok') AS last_success, "
    "max(found) FILTER (WHERE run = 1) AS found_last_run, "
    "round(max(without_description) FILTER (WHERE run = 1) / nullif(max(found) FILTER (WHERE run = 1), 0), 3) "
    "AS share_without_description, "
    f"list(status ORDER BY run) FILTER (WHERE run <= {RUNS_SHOWN}) AS last_runs, count(*) AS runs "
    "FROM ranked GROUP BY board"
)


def board_health_statement(*, temporary: bool = False) -> str:
    """The board_health view over the scrape_runs view."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    return f"CREATE OR REPLACE {kind} {BOARD_HEALTH_VIEW} AS {BOARD_HEALTH_QUERY}"


def health_statements(scan: str | None, *, temporary: bool = False) -> list[str]:
    return [scrape_runs_statement(scan, temporary=temporary), board_health_statement(temporary=temporary)]
