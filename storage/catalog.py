"""The DuckDB catalog: views over the lake's Delta tables, never written by a run while anyone reads it.

The catalog file holds only views, so it changes only when their definition does: when the
maintenance flow has merged the history into the latest table. A run refreshes it when its
sidecar version says so; if a reader holds the file, the run logs a warning and goes on, since
the views it already has read new commits by themselves. ``jobping sql`` never opens the file:
it defines the same views in memory, on the snapshot of the moment it opens (:func:`reader`).

The views read the tables with ``delta_scan``, from DuckDB's delta extension: a DuckDB shell
loads it before querying them (the README says how).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from importlib import resources
from pathlib import Path
from typing import TypeVar

import duckdb

from jobping.text import one_line
from storage.delta import ORDER, DeltaHistory, DeltaLatest, DeltaSightings, LakeSnapshot, Merged
from storage.lake import Lake, sql_literal
from storage.refresh import catalog_stamp, sidecar
from storage.rows import FIRST_SEEN, LAST_SEEN, empty_rows

T = TypeVar("T")

logger = logging.getLogger(__name__)

# the oldest DuckDB that opens the catalog file: 1.4 (the README says so; tests/test_duckdb_shell.py runs the 1.5 shell)
STORAGE_VERSION = "v1.4.0"
HISTORY_VIEW = "enriched_jobs_history"
LATEST_VIEW = "enriched_jobs"
JOBS_VIEW = "jobs"
SAVED_QUERIES = "queries"
# enriched_jobs adds to the latest table the history rows analysed up to this long before its newest:
# an analysis is stamped at the moment its batch is written, so this covers the clocks of machines
# an hour apart. A row stamped earlier still (a clock further behind) shows from the next maintenance.
LATE_COMMIT_MARGIN = timedelta(hours=1)
# the tables' columns, in their order
COLUMNS = empty_rows().columns


USER_QUERY_MEMORY_LIMIT = "1GB"
DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_SECONDS = 60.0
# unreadable files one reader moves aside before it gives up and asks for a person
MAX_QUARANTINED_PER_OPEN = 20
READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class ReadOnlyError(PermissionError):
    """A statement that would write, attach, copy out, install or load was refused."""


class LakeDamagedError(RuntimeError):
    """The lake has more unreadable files than one open quarantines; someone should look."""


class LakeEmptyError(LookupError):
    """The lake holds no enriched job yet, so the views have nothing to read."""


def scan(uri: str, version: int | None = None) -> str:
    # the only values spliced in are our own lake paths, quoted, and versions read from the log as ints
    pinned = "" if version is None else f", version={int(version)}"
    return f"delta_scan({sql_literal(uri)}{pinned})"


def view_statements(lake: Lake, merged: Merged | None, sightings_version: int | None = None) -> list[str]:
    """The catalog file's views over the lake's tables, reading each table's newest snapshot.

    - enriched_jobs_history: every row ever stored, the history table as it is;
    - enriched_jobs: the latest row per job_key. The latest table holds it as of the last
      merge (``merged``); the history rows analysed since, less LATE_COMMIT_MARGIN, replace
      theirs, newest first: the choice the next merge makes, so the view shows the same jobs
      before and after it. Those rows (what analyse wrote since the last maintenance) are
      deduplicated at query time and joined to the latest table by job_key. Each row also has
      ``first_seen`` and ``last_seen``: the job's earliest and latest ``scraped_at`` over all its
      analyses, which the latest table carries from merge to merge (storage/delta.py).

    The history is read once per query (one snapshot: a commit landing meanwhile cannot show
    a job twice), in a full outer join whose columns are picked per row. Unlike a union with an
    anti-join, that lets DuckDB read only the columns a query names (bench/RESULTS.md). A
    :func:`reader` pins its snapshot instead, and can use the faster union (:func:`pinned_statements`).
    """
    sightings = None if sightings_version is None else scan(lake.sightings_uri)
    return [*_enriched_statements(lake, merged), sightings_statement(sightings), jobs_statement()]


SIGHTINGS_VIEW = "job_sightings"


def sightings_statement(sightings: str | None, *, temporary: bool = False) -> str:
    """The job_sightings view: when a scrape saw a posting again unchanged (job_key, scraped_at); empty before any."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    rows = (
        "SELECT NULL::VARCHAR AS job_key, NULL::TIMESTAMPTZ AS scraped_at WHERE false"
        if sightings is None
        else f"SELECT job_key, scraped_at FROM {sightings}"  # noqa: S608
    )
    return f"CREATE OR REPLACE {kind} {SIGHTINGS_VIEW} AS {rows}"


def _dedupe() -> str:
    return f"QUALIFY row_number() OVER (PARTITION BY job_key ORDER BY {ORDER}) = 1"


def _newest_seen(history: str, where: str = "") -> str:
    """The newest row per job_key of ``history`` (filtered by ``where``), with its first and last scrape among them.

    The windows share the deduplication's partition, so they cost one sort of the rows read.
    """
    seen = f"min(scraped_at) OVER k AS {FIRST_SEEN}, max(scraped_at) OVER k AS {LAST_SEEN}"
    condition = f"WHERE {where} " if where else ""
    return f"SELECT *, {seen} FROM {history} {condition}WINDOW k AS (PARTITION BY job_key) {_dedupe()}"  # noqa: S608


def _seen_joined(recent: str, latest: str) -> str:
    # the earliest and the latest scrape of a job: the latest table's (every merged analysis) and the rows' since
    return (
        f"least({latest}.{FIRST_SEEN}, {recent}.{FIRST_SEEN}) AS {FIRST_SEEN}, "
        f"greatest({latest}.{LAST_SEEN}, {recent}.{LAST_SEEN}) AS {LAST_SEEN}"
    )


def since_merge(merged: Merged) -> str:
    """The history rows the enriched_jobs view adds to the latest table: analysed since its newest, less the margin."""
    since = (merged.analysed_up_to - LATE_COMMIT_MARGIN).astimezone(UTC)
    # analysed_on lets delta_scan skip the older files: it skips none by a timestamp with a time zone
    return f"analysed_on >= DATE '{since.date().isoformat()}' AND analysed_at > TIMESTAMPTZ '{since.isoformat()}'"


def _enriched_statements(lake: Lake, merged: Merged | None) -> list[str]:
    history = scan(lake.history_uri)
    latest = _newest_seen(history) if merged is None else _joined(history, scan(lake.latest_uri), merged)
    return [
        f"CREATE OR REPLACE VIEW {HISTORY_VIEW} AS SELECT * FROM {history}",  # noqa: S608
        f"CREATE OR REPLACE VIEW {LATEST_VIEW} AS {latest}",
    ]


def _joined(history: str, latest: str, merged: Merged) -> str:
    """The latest table and the history rows since its merge, deduplicated, in a full outer join picking each column."""
    picked = ", ".join(
        f'CASE WHEN r.job_key IS NULL THEN l."{name}" ELSE r."{name}" END AS "{name}"' for name in COLUMNS
    )
    return (
        f"SELECT {picked}, {_seen_joined('r', 'l')} FROM {latest} l FULL OUTER JOIN "  # noqa: S608
        f"({_newest_seen(history, since_merge(merged))}) r ON l.job_key = r.job_key"
    )


# the rows analysed since the last maintenance, held by a reader (maintenance runs hourly by default)
RECENT_TABLE = "enriched_jobs_recent"
# more rows than this since the last maintenance, and a reader joins them at query time instead of holding them
MAX_HELD_RECENT_ROWS = 20_000


def pinned_statements(con: duckdb.DuckDBPyConnection, lake: Lake, snapshot: LakeSnapshot) -> list[str]:
    """The reader's views, every one reading ``snapshot``; run on ``con``, as it holds a table.

    The rows analysed since the last maintenance are deduplicated once, into a temporary
    table, and ``enriched_jobs`` is the latest table less their jobs, plus them: a union whose
    filters and columns DuckDB pushes into the latest table's scan (bench/RESULTS.md). Two
    scans of one pinned version see the same rows, which the catalog file's live views
    cannot promise. With more than MAX_HELD_RECENT_ROWS since the last maintenance, the
    reader uses the catalog's join instead, on the same snapshot.
    """
    history = scan(lake.history_uri, snapshot.history_version)
    statements = [f"CREATE OR REPLACE TEMP VIEW {HISTORY_VIEW} AS SELECT * FROM {history}"]  # noqa: S608
    merged = snapshot.merged
    if merged is None:
        latest_view = _newest_seen(history)
    else:
        latest, recent = scan(lake.latest_uri, snapshot.latest_version), since_merge(merged)
        names = ", ".join(f'"{name}"' for name in (*COLUMNS, FIRST_SEEN, LAST_SEEN))
        (held,) = con.execute(f"SELECT count(*) FROM {history} WHERE {recent}").fetchall()[0]  # noqa: S608
        if held <= MAX_HELD_RECENT_ROWS:
            # each held row takes the first and last scrape the latest table knows for its job (a join on the
            # keys held, reading three columns of the latest table once)
            held_names = ", ".join(f'r."{name}"' for name in COLUMNS)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {RECENT_TABLE} AS "  # noqa: S608
                f"SELECT {held_names}, {_seen_joined('r', 'l')} "
                f"FROM ({_newest_seen(history, recent)}) r "
                f"LEFT JOIN (SELECT job_key, {FIRST_SEEN}, {LAST_SEEN} FROM {latest}) l ON l.job_key = r.job_key"
            )
            latest_view = (
                f"SELECT {names} FROM {latest} l ANTI JOIN {RECENT_TABLE} r ON l.job_key = r.job_key "  # noqa: S608
                f"UNION ALL SELECT {names} FROM {RECENT_TABLE}"
            )
        else:
            logger.info("%d rows analysed since the last maintenance: run `jobping compact`", held)
            latest_view = _joined(history, latest, merged)
    sightings = None if snapshot.sightings_version is None else scan(lake.sightings_uri, snapshot.sightings_version)
    return [
        *statements,
        f"CREATE OR REPLACE TEMP VIEW {LATEST_VIEW} AS {latest_view}",
        sightings_statement(sightings, temporary=True),
        jobs_statement(temporary=True),
    ]


# what the jobs view shows of a group's best posting (the best analysis, then the newest)
BEST_COLUMNS = (
    "title", "company", "location", "fit_score", "verdict", "seniority", "remote_policy", "skills",
    "salary_min_yearly", "salary_max_yearly", "salary_currency", "red_flags", "summary",
)  # fmt: skip


def jobs_statement(*, temporary: bool = False) -> str:
    """The jobs view: one row per job group, its best analysis, every board and link, first and last seen.

    first_seen and last_seen are the group's earliest and latest scrape of any posting, over every
    analysis of it (``enriched_jobs`` carries them per posting): a re-analysis does not make a job new.
    """
    kind = "TEMP VIEW" if temporary else "VIEW"
    return f"CREATE OR REPLACE {kind} {JOBS_VIEW} AS {jobs_query(LATEST_VIEW)}"


def jobs_query(source: str) -> str:
    """The jobs view's SELECT over ``source`` (enriched_jobs, or a subquery of some of its rows).

    One scan with window functions, so the group's best row and its lists come from one
    snapshot. A row stored before jobs had groups is a group of its own. ``last_seen`` is also
    moved by the postings' sightings (a scrape that saw them again unchanged).
    """
    best = ", ".join(f'"{name}"' for name in BEST_COLUMNS)
    return (
        f"SELECT job_group, {best}, "  # noqa: S608
        "best_job_key, best_board, best_job_url, boards, job_urls, postings, reused_analyses, first_seen, last_seen "
        "FROM (SELECT coalesce(job_group, job_key) AS job_group, "
        f"{best}, job_key AS best_job_key, site AS best_board, job_url AS best_job_url, "
        "row_number() OVER ranked AS best_rank, "
        "list_sort(list_distinct(list(site) OVER g)) AS boards, "
        "list_sort(list_distinct(list(job_url) OVER g)) AS job_urls, "
        "count(*) OVER g AS postings, count(analysis_of) OVER g AS reused_analyses, "
        f"min({FIRST_SEEN}) OVER g AS first_seen, max(greatest({LAST_SEEN}, sighted_at)) OVER g AS last_seen "
        f"FROM {source} LEFT JOIN (SELECT job_key, max(scraped_at) AS sighted_at FROM {SIGHTINGS_VIEW} "
        "GROUP BY job_key) USING (job_key) WINDOW g AS (PARTITION BY coalesce(job_group, job_key)), "
        "ranked AS (PARTITION BY coalesce(job_group, job_key) ORDER BY fit_score DESC, analysed_at DESC, job_key)) "
        "WHERE best_rank = 1"
    )


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
    when it is asked more than once; about 240 KB a file of analyse batches (190 MB at 800 files).

    Every query reads the snapshot of the moment the reader was opened, so one reader's queries
    agree with each other; open a new reader to see newer commits. A snapshot's files stay for
    the maintenance's retention (7 days by default) after a newer one replaces them. A data file
    of the lake that cannot be read is moved to quarantine (see :func:`quarantine_file`) and the
    views go on without it.
    """
    lake = Lake.of(lake)
    # opening runs only our own statements: any failure of theirs is the lake's data or its reach
    return quarantining(lake, lambda: _open_reader(lake, memory_limit, caching), search=True)


def quarantining(
    lake: Lake,
    work: Callable[[], T],
    *,
    search: bool = False,
    errors: tuple[type[Exception], ...] = (duckdb.Error,),
) -> T:
    """Run ``work``; when it fails on a lake file that cannot be read, quarantine the file and run it again.

    The reader's probe finds a damaged footer when it opens; a damaged page inside a file shows
    only when a query reads it, so whatever reads the lake's rows runs under this too. DuckDB
    does not always name the file (a damaged page header), nor does another reader (``errors``):
    with ``search``, for work whose only failure can be the data, every file of the lake is read
    to find the damaged ones.
    """
    for _attempt in range(MAX_QUARANTINED_PER_OPEN + 1):
        try:
            return work()
        except errors as exc:
            if _quarantine_named_file(lake, exc):
                continue
            if not (search and _quarantine_unreadable(lake)):
                raise
    raise LakeDamagedError(f"more than {MAX_QUARANTINED_PER_OPEN} unreadable files in {lake}; see its quarantine/")


def _open_reader(lake: Lake, memory_limit: str | None, caching: bool) -> duckdb.DuckDBPyConnection:
    snapshot = LakeSnapshot.of(lake)
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
    # spliced, quoted, not bound: binding a list parameter makes DuckDB import pandas (0.3 s, 50 MB)
    con.execute(f"SET allowed_directories = [{sql_literal(lake.url + '/')}]")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{_size(memory_limit)}'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


# DuckDB names the file in single quotes when opening it, in double quotes when reading its pages
UNREADABLE_FILE = re.compile(r"""file ['"]([^'"]+\.parquet)['"]""", re.IGNORECASE)


def _quarantine_named_file(lake: Lake, error: Exception) -> bool:
    """Quarantine the lake file ``error`` names, if it really cannot be read; True when one was moved."""
    found = UNREADABLE_FILE.search(str(error))
    if found is None or not found.group(1).startswith(lake.url + "/"):
        return False
    path = found.group(1)
    why = unreadable(lake, path)
    if why is None:
        return False
    quarantine_file(lake, path, why)
    return True


def quarantine_file(lake: Lake, path: str, why: str) -> None:
    """Move a data file of the lake to quarantine, and make its table go on without it.

    The history (or the sightings table) commits the removal of the file (its rows stay in quarantine,
    with the reason);
    the latest table, made from the history, is dropped and made again by the next maintenance,
    the views deduplicating the history meanwhile.
    """
    lake.quarantine(path, why)
    if path.startswith(lake.latest_uri + "/"):
        DeltaLatest(lake).drop()
    elif path.startswith(lake.history_uri + "/"):
        DeltaHistory(lake).forget_missing_files()
    elif path.startswith(lake.sightings_uri + "/"):
        DeltaSightings(lake).forget_missing_files()


def unreadable(lake: Lake, path: str) -> str | None:
    """Why the lake file ``path`` cannot be read, or None when it can (or cannot be reached now)."""
    with lake.connect() as probe:
        try:
            # every column of every row: a count alone reads only the footer
            probe.execute("SELECT max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM read_parquet(?)", [path]).fetchall()
        except (duckdb.IOException, duckdb.HTTPException):
            return None  # could not be reached (network, permissions): not proof that the file is bad
        except duckdb.Error as exc:
            return one_line(exc, 1_000)
    return None


def _quarantine_unreadable(lake: Lake) -> bool:
    """Read every data file of the tables' snapshots; quarantine those that cannot be read. True when one was."""
    moved = False
    for table in (DeltaHistory(lake), DeltaLatest(lake), DeltaSightings(lake)):
        if not table.exists():
            continue
        for path in table.table().file_uris():
            why = unreadable(lake, path)
            if why is not None:
                quarantine_file(lake, path, why)
                moved = True
    return moved


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
