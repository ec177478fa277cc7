"""The SQL runner of `jobping sql`: one read-only statement within time and row limits, and the saved queries."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources

import duckdb

SAVED_QUERIES = "queries"
# what a user's query may hold in memory (the reader it runs on never spills to disk)
USER_QUERY_MEMORY_LIMIT = "1GB"
DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_SECONDS = 60.0
READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class ReadOnlyError(PermissionError):
    """A statement that would write, attach, copy out, install or load was refused."""


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
