"""The lake's commands: read-only SQL over the views, and the Delta tables' upkeep."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from app.cli.common import PLAIN, console, error_exit, errors, friendly_errors, load_settings, make_table
from jobping.settings import Settings

lake_app = typer.Typer(help="The lake's Delta tables.", no_args_is_help=True, rich_markup_mode=PLAIN)


def run_query(
    settings: Settings, query: str, title: str | None = None, *, max_rows: int = 10_000, timeout: float = 60.0
) -> None:
    import duckdb

    from storage.lake import Lake
    from storage.reader import LakeEmptyError, reader
    from storage.repair import LakeDamagedError, quarantining
    from storage.sql import USER_QUERY_MEMORY_LIMIT, QueryResult, QueryTimeoutError, ReadOnlyError, run_read_only
    from storage.store import open_lake

    lake = Lake.from_settings(settings)
    with friendly_errors():
        open_lake(lake, create=False)

    def run() -> QueryResult:
        with reader(lake, memory_limit=USER_QUERY_MEMORY_LIMIT) as con:
            return run_read_only(con, query, max_rows=max_rows, timeout_seconds=timeout)

    try:
        result = quarantining(lake, run)
    except (LakeEmptyError, ReadOnlyError, QueryTimeoutError, LakeDamagedError) as exc:
        raise error_exit(exc) from exc
    except duckdb.Error as exc:
        raise error_exit(f"the query failed: {exc}") from exc
    console.print(make_table(result.columns, result.rows, title=title))
    if result.cut:
        errors.print(f"showing the first {max_rows:,} rows; --max-rows shows more, a LIMIT fewer")


def sql(
    query: Annotated[
        str | None,
        typer.Argument(help="SQL over the views enriched_jobs (latest per job) and enriched_jobs_history."),
    ] = None,
    saved: Annotated[str | None, typer.Option(help="Run a saved query by name (see --list).")] = None,
    list_saved: Annotated[bool, typer.Option("--list", help="List the saved queries.")] = False,
    max_rows: Annotated[int, typer.Option(min=1, max=1_000_000, help="Show at most this many rows.")] = 10_000,
    timeout: Annotated[float, typer.Option(min=0.1, max=86_400, help="Stop the query after this many seconds.")] = 60.0,
) -> None:
    """Run a read-only SQL query over the enriched jobs and print a table (1 GB of memory at most)."""
    from storage.sql import saved_query, saved_query_names

    if list_saved:
        for name in saved_query_names():
            console.print(f"{name}: {saved_query(name).splitlines()[0].removeprefix('-- ')}")
        return
    if saved:
        if saved not in saved_query_names():
            raise error_exit(f"no saved query {saved!r}; there are: {', '.join(saved_query_names())}", 2)
        query = saved_query(saved)
    if not query:
        raise error_exit("give a query, --saved NAME or --list", 2)
    run_query(load_settings(), query, max_rows=max_rows, timeout=timeout)


def boards(
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON, one object per board.")] = False,
) -> None:
    """Show each job board's health: its streak of failed or empty scrape runs, last status, error and success."""
    import json

    from storage.lake import Lake
    from storage.reader import read_board_health

    lake = Lake.from_settings(load_settings())
    try:
        health = read_board_health(lake)
    except Exception as exc:
        raise error_exit(f"cannot read the boards' health in {lake}: {type(exc).__name__}: {exc}") from exc
    if health is None:
        if as_json:
            print("[]")
        errors.print("no scrape has recorded its boards yet: run `jobping scrape` first")
        return
    if as_json:
        objects = [dict(zip(health.columns, row, strict=True)) for row in health.rows]
        # print, not rich: JSON for a pipe, with no markup read into it
        print(json.dumps(objects, default=str, ensure_ascii=False))
        return
    rows = [[_cell(value) for value in row] for row in health.rows]
    console.print(make_table(health.columns, rows, title="board health (streak: failed or empty runs in a row)"))


def _cell(value: object) -> object:
    """A board_health value as a table shows it: a moment to the minute, a list of statuses as words."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return value


@lake_app.command("repair")
def lake_repair(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be dropped or quarantined.")] = False,
) -> None:
    """Check every data file of the lake's tables; drop the gone ones and those outside their table, quarantine the bad.

    Each drop is a repair commit in the table's history, saying which path and why. Every command that reads
    the lake does this by itself for a few files; this does it for all of them.
    """
    from storage.lake import Lake
    from storage.repair import LakeDamagedError, repair_lake

    lake = Lake.from_settings(load_settings())
    try:
        done = repair_lake(lake, dry_run=dry_run)
    except LakeDamagedError as exc:
        raise error_exit(exc) from exc
    except Exception as exc:
        raise error_exit(f"cannot open the lake {lake}: {type(exc).__name__}: {exc}") from exc
    for line in done.lines():
        console.print(Text(line), soft_wrap=True)
    console.print(Text(done.summary()), soft_wrap=True)
