"""The DuckDB catalog: views over the lake, never written by a run while anyone reads it.

The catalog file holds only views, so it changes only when their definition does. A run
refreshes it when its sidecar version says so; if a reader holds the file, the run logs
a warning and goes on, since the views it already has read new files by themselves.
``jobping sql`` never opens the file: it defines the same views in memory.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import duckdb

from storage.lake import PARTITION, has_files, lake_glob

logger = logging.getLogger(__name__)

CATALOG_VERSION = "1"
HISTORY_VIEW = "enriched_jobs_history"
LATEST_VIEW = "enriched_jobs"
SAVED_QUERIES = "queries"


READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class ReadOnlyError(PermissionError):
    """A statement that would write, attach, copy out, install or load was refused."""


class LakeEmptyError(LookupError):
    """The lake holds no Parquet file yet, so the views have nothing to read."""


def view_statements(lake: Path, *, temporary: bool = False) -> list[str]:
    kind = "TEMP VIEW" if temporary else "VIEW"
    source = lake_glob(lake).replace("'", "''")
    # the only value spliced in is our own lake path, quoted above
    return [
        f"CREATE OR REPLACE {kind} {HISTORY_VIEW} AS "  # noqa: S608
        f"SELECT * FROM read_parquet('{source}', hive_partitioning = true, union_by_name = true, "
        f"hive_types = {{'{PARTITION}': DATE}})",
        # the latest analysis of each posting; ties broken by file order are harmless
        f"CREATE OR REPLACE {kind} {LATEST_VIEW} AS "  # noqa: S608
        f"SELECT * FROM {HISTORY_VIEW} "
        "QUALIFY row_number() OVER (PARTITION BY job_key ORDER BY analysed_at DESC, scraped_at DESC) = 1",
    ]


def _sidecar(catalog: Path) -> Path:
    return catalog.with_suffix(".version")


def _stamp(lake: Path) -> str:
    return f"{CATALOG_VERSION} {lake_glob(lake)}"


def refresh_catalog(catalog: Path, lake: Path) -> bool:
    """Create or update the catalog's views when needed; False when a reader held it."""
    if not has_files(lake):
        return False
    sidecar = _sidecar(catalog)
    if catalog.exists() and sidecar.exists() and sidecar.read_text(encoding="utf-8") == _stamp(lake):
        return True
    catalog.parent.mkdir(parents=True, exist_ok=True)
    try:
        with duckdb.connect(str(catalog)) as con:
            for statement in view_statements(lake):
                con.execute(statement)
    except duckdb.IOException as exc:
        logger.warning("the catalog %s is held by another process, its views were not refreshed: %s", catalog, exc)
        return False
    sidecar.write_text(_stamp(lake), encoding="utf-8")
    return True


def reader(lake: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the views, able to read the lake and nothing else on disk."""
    if not has_files(lake):
        raise LakeEmptyError(f"the lake {lake} holds no enriched jobs yet: run `jobping analyse` first")
    con = duckdb.connect()
    for statement in view_statements(lake, temporary=True):
        con.execute(statement)
    con.execute("SET allowed_directories = [?]", [str(lake)])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_read_only(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run a query that may only read: every statement must be a SELECT (or EXPLAIN of one)."""
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
    columns: list[str] = []
    rows: list[tuple[object, ...]] = []
    for statement in statements:
        cursor = con.execute(statement)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    return columns, rows


def saved_query(name: str) -> str:
    return resources.files("storage").joinpath(SAVED_QUERIES, f"{name}.sql").read_text(encoding="utf-8")


def saved_query_names() -> list[str]:
    folder = resources.files("storage").joinpath(SAVED_QUERIES)
    return sorted(entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql"))
