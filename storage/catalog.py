"""The DuckDB catalog: views over the lake's Delta tables, never written by a run while anyone reads it.

The catalog file holds only views, so it changes only when their definition does: when the
maintenance flow has merged the history into the latest table. A run refreshes it when its
sidecar version says so; if a reader holds the file, the run logs a warning and goes on, since
the views it already has read new commits by themselves. ``jobping sql`` never opens the file:
it defines the same views in memory, on the snapshot of the moment it opens (:func:`reader`).

The views (their SQL is in storage/views.py) read the tables with ``delta_scan``, from DuckDB's
delta extension: a DuckDB shell loads it before querying them (the README says how).

The file is written in DuckDB's 1.4 storage format (STORAGE_VERSION), not in the newest one
the duckdb package writes, so that older shells open it too. A DuckDB file keeps the format it
was created in, so a refresh writes a new file and renames it over the old one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from storage.delta import LakeSnapshot
from storage.lake import Lake, sql_literal
from storage.refresh import catalog_stamp, sidecar
from storage.repair import MAX_QUARANTINED_PER_OPEN, LakeDamagedError, guarded_snapshot, quarantining, unreadable
from storage.views import (
    HISTORY_VIEW,
    JOBS_VIEW,
    LATE_COMMIT_MARGIN,
    LATEST_VIEW,
    RECENT_TABLE,
    SIGHTINGS_VIEW,
    jobs_query,
    pinned_statements,
    scan,
    since_merge,
    view_statements,
)

# the views' names and SQL live in storage/views.py; readers of the lake import them from here too
__all__ = [
    "HISTORY_VIEW",
    "JOBS_VIEW",
    "LATEST_VIEW",
    "LATE_COMMIT_MARGIN",
    "MAX_QUARANTINED_PER_OPEN",
    "RECENT_TABLE",
    "SIGHTINGS_VIEW",
    "LakeDamagedError",
    "jobs_query",
    "quarantining",
    "reader",
    "refresh_catalog",
    "scan",
    "since_merge",
    "unreadable",
    "view_statements",
]

logger = logging.getLogger(__name__)

# the oldest DuckDB that opens the catalog file: 1.4 (the README says so; tests/test_duckdb_shell.py runs the 1.5 shell)
STORAGE_VERSION = "v1.4.0"
SAVED_QUERIES = "queries"
USER_QUERY_MEMORY_LIMIT = "1GB"
DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_SECONDS = 60.0
READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class ReadOnlyError(PermissionError):
    """A statement that would write, attach, copy out, install or load was refused."""


class LakeEmptyError(LookupError):
    """The lake holds no enriched job yet, so the views have nothing to read."""


@contextmanager
def _held(catalog: Path) -> Iterator[None]:
    """The existing catalog file held open read-write, so a reader holding it raises IOException.

    It stays held until the new file has replaced it: no reader opens the old file meanwhile.
    """
    if not catalog.exists():
        yield
        return
    with duckdb.connect(str(catalog)):
        yield


def _write_replacing(catalog: Path, lake: Lake, statements: list[str]) -> None:
    """Write the views into a new file in STORAGE_VERSION beside ``catalog``, then rename it over ``catalog``."""
    temp = catalog.with_name(f".{catalog.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # closing the connection checkpoints: the views are in the file and no WAL is left
        with lake.connect(str(temp), config={"storage_compatibility_version": STORAGE_VERSION}) as con:
            for statement in statements:
                con.execute(statement)
        os.replace(temp, catalog)
    finally:
        temp.unlink(missing_ok=True)
        temp.with_name(temp.name + ".wal").unlink(missing_ok=True)


def _locked(exc: duckdb.Error) -> bool:
    # "Could not set lock on file ...": another process holds the file read-write
    return "lock" in str(exc).lower()


def _damage(catalog: Path) -> str | None:
    """Why the catalog file cannot be read, or None when it can (or another process holds it)."""
    try:
        with duckdb.connect(str(catalog), read_only=True) as con:
            con.execute("SELECT count(*) FROM duckdb_views()").fetchall()
    except (duckdb.IOException, duckdb.SerializationException) as exc:
        return None if _locked(exc) else str(exc)
    except duckdb.ConnectionException:
        return None  # open in this process already (another flow refreshing it): not damage
    return None


def refresh_catalog(catalog: Path, lake: Lake | Path | str) -> bool:
    """Create, update or rebuild the catalog's views when needed; False when it could not be written.

    A reader holding the file is no error (its views read new files by themselves); a file
    that cannot be read (truncated, overwritten) is rebuilt.
    """
    lake = Lake.of(lake)
    snapshot = LakeSnapshot.of(lake)
    if snapshot is None:
        return False
    stamp = catalog_stamp(lake, snapshot.merged, sightings=snapshot.sightings_version is not None)
    if catalog.exists():
        damage = _damage(catalog)
        if damage is not None:
            logger.warning("the catalog %s is damaged (%s): rebuilding it", catalog, damage)
            sidecar(catalog).unlink(missing_ok=True)
            catalog.unlink()
        elif sidecar(catalog).exists() and sidecar(catalog).read_text(encoding="utf-8") == stamp:
            return True
    catalog.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _held(catalog):
            _write_replacing(catalog, lake, view_statements(lake, snapshot.merged, snapshot.sightings_version))
    except duckdb.Error as exc:
        if _locked(exc):
            logger.warning("the catalog %s is held by another process, its views were not refreshed", catalog)
        else:
            logger.warning("the catalog %s could not be written (%s); the lake itself is intact", catalog, exc)
        return False
    except OSError as exc:
        logger.warning("the catalog %s could not be written (%s); the lake itself is intact", catalog, exc.strerror)
        return False
    sidecar(catalog).write_text(stamp, encoding="utf-8")
    return True


def refresh_main(argv: list[str]) -> None:
    """The child process storage.refresh starts: ``CATALOG LAKE REGION ENDPOINT``; prints 1 when current, else 0."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    catalog, location, region, endpoint = argv
    refreshed = refresh_catalog(Path(catalog), Lake(location, s3_endpoint_url=endpoint or None, region=region))
    print("1" if refreshed else "0")


def reader(
    lake: Lake | Path | str, *, memory_limit: str | None = None, caching: bool = True
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the views, able to read the lake and nothing else.

    With a ``memory_limit`` (what `jobping sql` gives a user's query) it never spills to disk either.
    With ``caching`` it keeps every file's footer and the bytes it read for the next query: faster
    when it is asked more than once, at the cost of memory that grows with the lake's files.

    Every query reads the snapshot of the moment the reader was opened, so one reader's queries
    agree with each other; open a new reader to see newer commits. A snapshot's files stay for
    the maintenance's retention (storage.delta.DEFAULT_RETENTION) after a newer one replaces them. A data file
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


class QueryTimeoutError(TimeoutError):
    """The query ran past its time limit and was interrupted."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[object, ...]]
    # more rows matched than were fetched
    cut: bool = False


def run_read_only(
    con: duckdb.DuckDBPyConnection,
    query: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> QueryResult:
    """Run one statement that may only read (a SELECT, or EXPLAIN of one), within time and row limits.

    Rows are fetched up to ``max_rows``, never the whole result; past ``timeout_seconds`` the
    query is interrupted and ``QueryTimeoutError`` raised.
    """
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise duckdb.ParserException(f"cannot parse the query: {exc}") from exc
    if not statements:
        raise ReadOnlyError("the query is empty")
    for statement in statements:
        if statement.type not in READ_ONLY_STATEMENTS:
            kind = str(statement.type).rsplit(".", 1)[-1]
            raise ReadOnlyError(f"jobping sql is read-only: {kind} statements are refused, only SELECT runs")
    if len(statements) > 1:
        # only one result can be shown: the others would run unseen
        raise ReadOnlyError(f"give one statement at a time: this query has {len(statements)}")
    timer = threading.Timer(timeout_seconds, con.interrupt)
    timer.start()
    try:
        cursor = con.execute(statements[0])
        rows = cursor.fetchmany(max_rows + 1)
    except duckdb.InterruptException as exc:
        raise QueryTimeoutError(f"the query ran past {timeout_seconds:g} s and was stopped") from exc
    finally:
        timer.cancel()
    return QueryResult([d[0] for d in cursor.description or []], rows[:max_rows], cut=len(rows) > max_rows)


def saved_query(name: str) -> str:
    return resources.files("storage").joinpath(SAVED_QUERIES, f"{name}.sql").read_text(encoding="utf-8")


def saved_query_names() -> list[str]:
    folder = resources.files("storage").joinpath(SAVED_QUERIES)
    return sorted(entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql"))
