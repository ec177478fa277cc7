"""The views over the lake's tables, as SQL: the catalog file's (live) and a reader's (pinned to one snapshot).

- enriched_jobs_history: every analysis; enriched_jobs: the latest per job_key, with first_seen
  and last_seen over all its analyses; job_sightings: the postings scrapes saw again unchanged;
  jobs: one row per job group; scrape_runs and board_health: what each scrape saw of each board
  (storage/boards.py). storage/catalog.py writes them into the catalog file, storage/reader.py
  runs them on a reader's connection.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

import duckdb

from jobping.columns import ANSWER_COLUMNS
from jobping.contract import SCRAPE_PRODUCER
from storage.boards import health_statements
from storage.delta import ORDER, LakeSnapshot, Merged, before
from storage.lake import Lake, sql_literal
from storage.rows import FIRST_SEEN, LAST_SEEN, empty_rows

logger = logging.getLogger(__name__)

HISTORY_VIEW = "enriched_jobs_history"
LATEST_VIEW = "enriched_jobs"
JOBS_VIEW = "jobs"
# enriched_jobs adds to the latest table the history rows analysed up to this long before its newest:
# an analysis is stamped at the moment its batch is written, so this covers the clocks of machines
# an hour apart. A row stamped earlier still (a clock further behind) shows from the next maintenance.
LATE_COMMIT_MARGIN = timedelta(hours=1)
# the tables' columns, in their order
COLUMNS = empty_rows().columns


def scan(uri: str, version: int | None = None) -> str:
    # the only values spliced in are our own lake paths, quoted, and versions read from the log as ints
    pinned = "" if version is None else f", version={int(version)}"
    return f"delta_scan({sql_literal(uri)}{pinned})"


def view_statements(
    lake: Lake, merged: Merged | None, sightings_version: int | None = None, scrape_runs_version: int | None = None
) -> list[str]:
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
    runs = None if scrape_runs_version is None else scan(lake.scrape_runs_uri)
    return [
        *_enriched_statements(lake, merged),
        sightings_statement(sightings),
        jobs_statement(),
        *health_statements(runs),
    ]


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
    # a row since the merge replaces the latest table's unless that one comes first (storage.delta.ORDER)
    recent = f"r.job_key IS NOT NULL AND (l.job_key IS NULL OR NOT ({before('l.', 'r.')}))"
    picked = ", ".join(f'CASE WHEN {recent} THEN r."{name}" ELSE l."{name}" END AS "{name}"' for name in COLUMNS)
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
            # unless the latest table's row comes first (storage.delta.ORDER)
            order = "producer, analysed_at, message_id"
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {RECENT_TABLE} AS "  # noqa: S608
                f"SELECT {held_names}, {_seen_joined('r', 'l')} "
                f"FROM ({_newest_seen(history, recent)}) r "
                f"LEFT JOIN (SELECT job_key, {order}, {FIRST_SEEN}, {LAST_SEEN} FROM {latest}) l "
                f"ON l.job_key = r.job_key WHERE l.job_key IS NULL OR NOT ({before('l.', 'r.')})"
            )
            latest_view = (
                f"SELECT {names} FROM {latest} l ANTI JOIN {RECENT_TABLE} r ON l.job_key = r.job_key "  # noqa: S608
                f"UNION ALL SELECT {names} FROM {RECENT_TABLE}"
            )
        else:
            logger.info("%d rows analysed since the last maintenance: run `jobping compact`", held)
            latest_view = _joined(history, latest, merged)
    sightings = None if snapshot.sightings_version is None else scan(lake.sightings_uri, snapshot.sightings_version)
    version = snapshot.scrape_runs_version
    runs = None if version is None else scan(lake.scrape_runs_uri, version)
    return [
        *statements,
        f"CREATE OR REPLACE TEMP VIEW {LATEST_VIEW} AS {latest_view}",
        sightings_statement(sightings, temporary=True),
        jobs_statement(temporary=True),
        *health_statements(runs, temporary=True),
    ]


# what the jobs view shows of a group's best posting (the scraped first, the best analysis, the first seen)
BEST_COLUMNS = ("title", "company", "location", "description_missing", *ANSWER_COLUMNS, "limits_broken")


def jobs_statement(*, temporary: bool = False) -> str:
    """The jobs view: one row per job group, its best analysis, every board and link, first and last seen.

    first_seen and last_seen are the group's earliest and latest scrape of any posting, over every
    analysis of it (``enriched_jobs`` carries them per posting): a re-analysis does not make a job new.
    """
    kind = "TEMP VIEW" if temporary else "VIEW"
    return f"CREATE OR REPLACE {kind} {JOBS_VIEW} AS {jobs_query(LATEST_VIEW)}"


# a row our scrape flow sent; rows written before producers were kept (null) are not
SCRAPED = f"coalesce(producer = {sql_literal(SCRAPE_PRODUCER)}, false)"


def _shown(column: str) -> str:
    # a group's boards and links: its scraped postings' when it has any, so that another producer's link rides along
    # in no ping of a job we scraped
    return (
        f"list_sort(list_distinct(CASE WHEN bool_or({SCRAPED}) OVER g "
        f"THEN list({column}) FILTER (WHERE {SCRAPED}) OVER g ELSE list({column}) OVER g END))"
    )


def jobs_query(source: str) -> str:
    """The jobs view's SELECT over ``source`` (enriched_jobs, or a subquery of some of its rows).

    One scan with window functions, so the group's best row and its lists come from one
    snapshot. A row stored before jobs had groups is a group of its own. ``last_seen`` is also
    moved by the postings' sightings (a scrape that saw them again unchanged).

    A group's best is its scraped posting with the best analysis, the one first seen on a tie: a
    posting from another producer is best only of a group without a scraped one, and a newer
    analysis never wins a tie. The boards and links are the scraped postings' when there are any.
    """
    best = ", ".join(f'"{name}"' for name in BEST_COLUMNS)
    return (
        f"SELECT job_group, {best}, "  # noqa: S608
        "best_job_key, best_board, best_job_url, boards, job_urls, postings, reused_analyses, first_seen, last_seen "
        "FROM (SELECT coalesce(job_group, job_key) AS job_group, "
        f"{best}, job_key AS best_job_key, site AS best_board, job_url AS best_job_url, "
        "row_number() OVER ranked AS best_rank, "
        f"{_shown('site')} AS boards, {_shown('job_url')} AS job_urls, "
        "count(*) OVER g AS postings, count(analysis_of) OVER g AS reused_analyses, "
        f"min({FIRST_SEEN}) OVER g AS first_seen, max(greatest({LAST_SEEN}, sighted_at)) OVER g AS last_seen "
        f"FROM {source} LEFT JOIN (SELECT job_key, max(scraped_at) AS sighted_at FROM {SIGHTINGS_VIEW} "
        "GROUP BY job_key) USING (job_key) WINDOW g AS (PARTITION BY coalesce(job_group, job_key)), "
        "ranked AS (PARTITION BY coalesce(job_group, job_key) "
        f"ORDER BY {SCRAPED} DESC, fit_score DESC, {FIRST_SEEN}, job_key)) "
        "WHERE best_rank = 1"
    )
