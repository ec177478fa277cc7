"""A reader of the lake: an in-memory DuckDB connection with the views, able to read the lake and nothing else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from storage.boards import BOARD_HEALTH_VIEW, health_statements
from storage.damage import open_table
from storage.lake import SCRAPE_RUNS_TABLE, Lake, sql_literal
from storage.repair import guarded_snapshot, inside, quarantining
from storage.views import pinned_statements, scan


class LakeEmptyError(LookupError):
    """The lake holds no enriched job yet, so the views have nothing to read."""


def reader(
    lake: Lake | Path | str, *, memory_limit: str | None = None, caching: bool = True
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the views, able to read the lake and nothing else.

    With a ``memory_limit`` (what `jobping sql` gives a user's query) it never spills to disk either.
    With ``caching`` it keeps every file's footer and the bytes it read for the next query: faster
    when it is asked more than once, at the cost of memory that grows with the lake's files.

    Every query reads the snapshot of the moment the reader was opened, so one reader's queries
    agree with each other; open a new reader to see newer commits. A snapshot's files stay for
    the maintenance's retention (storage.maintenance.DEFAULT_RETENTION) after a newer one replaces them. A data file
    of the lake that cannot be read is moved to quarantine, and one that is gone or lies outside its
    table is dropped from it, by a repair commit (storage/repair.py); the views go on without it.
    """
    lake = Lake.of(lake)
    # opening runs only our own statements: any failure of theirs is the lake's data or its reach
    return quarantining(lake, lambda: _open_reader(lake, memory_limit, caching), search=True)


def _open_reader(lake: Lake, memory_limit: str | None, caching: bool) -> duckdb.DuckDBPyConnection:
    # the views read what the logs name: a path that leaves its table is dropped before anything reads it
    snapshot = guarded_snapshot(lake)
    if snapshot is None:
        raise LakeEmptyError(f"the lake {lake} holds no enriched jobs yet: run `jobping analyse` first")
    con = lake.connect()
    try:
        # no spill files, not even while the views are made: the temp directory (./.tmp by default)
        # would be a second readable place
        con.execute("SET temp_directory = ''")
        # the probe below reads every file's footer; the caches let the caller's queries reuse them
        con.execute(f"SET parquet_metadata_cache = {str(caching).lower()}")
        con.execute(f"SET enable_external_file_cache = {str(caching).lower()}")
        # a probe that reads one column of every file the snapshot names, so that a damaged one shows now
        # (a count(*) would read only the log): a page damaged in another column shows when a query reads it
        con.execute(f"SELECT count(job_key) FROM {scan(lake.history_uri, snapshot.history_version)}").fetchall()  # noqa: S608
        if snapshot.merged is not None:
            con.execute(f"SELECT count(job_key) FROM {scan(lake.latest_uri, snapshot.latest_version)}").fetchall()  # noqa: S608
        if snapshot.sightings_version is not None:
            sightings = scan(lake.sightings_uri, snapshot.sightings_version)
            con.execute(f"SELECT count(job_key) FROM {sightings}").fetchall()  # noqa: S608
        if snapshot.scrape_runs_version is not None:
            runs = scan(lake.scrape_runs_uri, snapshot.scrape_runs_version)
            con.execute(f"SELECT count(board) FROM {runs}").fetchall()  # noqa: S608
        for statement in pinned_statements(con, lake, snapshot):
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    # spliced, quoted, not bound: binding a list parameter makes DuckDB import pandas, slow and large
    con.execute(f"SET allowed_directories = [{sql_literal(lake.url + '/')}]")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{_size(memory_limit)}'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _size(text: str) -> str:
    # spliced into SET: only a number and a unit
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", text):
        raise ValueError(f"not a memory size: {text!r}")
    return text


@dataclass(frozen=True)
class BoardHealth:
    columns: list[str]
    rows: list[tuple[object, ...]]


def read_board_health(lake: Lake) -> BoardHealth | None:
    """The board_health view's rows, worst streak first; None before the first scrape recorded its runs.

    Reads the table's newest snapshot only (its files inside the table), on its own connection: it needs
    no enriched job, so it answers before the first analyse run.
    """
    table = open_table(lake, SCRAPE_RUNS_TABLE)
    if table is None:
        return None
    # a path of the log that leaves the table is dropped (a repair commit) before DuckDB reads anything
    if len(inside(lake, SCRAPE_RUNS_TABLE, table)) != len(table.file_uris()):
        table = open_table(lake, SCRAPE_RUNS_TABLE) or table
    with lake.connect() as con:
        for statement in health_statements(scan(lake.scrape_runs_uri, table.version()), temporary=True):
            con.execute(statement)
        cursor = con.execute(f"SELECT * FROM {BOARD_HEALTH_VIEW} ORDER BY streak DESC, board")  # noqa: S608
        rows = cursor.fetchall()
        return BoardHealth([d[0] for d in cursor.description or []], rows)
