"""The lake's history table and the DuckDB views over it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting, envelope_for
from jobping.engine.ports import StoredVersion
from jobping.stored import to_row
from storage.catalog import refresh_catalog
from storage.delta import ANALYSED_UP_TO, HISTORY_CONFIGURATION, MERGED_UP_TO, DeltaLatest
from storage.lake import DELTA, Lake, load_extension
from storage.maintenance import maintain
from storage.reader import LakeEmptyError, reader
from storage.rows import PARTITION, ROW_SCHEMA, to_frame
from storage.sql import QueryResult, QueryTimeoutError, ReadOnlyError, run_read_only
from storage.store import group_keys, group_members, open_lake, stored_versions
from tests.lakes import write_rows

SCRAPED = datetime(2026, 11, 26, 23, 59, tzinfo=UTC)


def row(job_id: str, score: int, *, scraped: datetime = SCRAPED, analysed: datetime = SCRAPED) -> dict[str, object]:
    posting = JobPosting(id=job_id, site="indeed", job_url=f"https://x.example/{job_id}", title="Data Engineer")
    analysis = JobAnalysis(
        fit_score=score, verdict="maybe", seniority="mid", remote_policy="remote", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="ok",
    )  # fmt: skip
    result = AnalysisResult(analysis=analysis, model="m", prompt_version="p1")
    return to_row(envelope_for(posting, scraped), result, analysed, "msg-" + job_id)


def test_a_batch_is_one_file_per_scrape_date_and_no_temp_file_remains(tmp_path: Path) -> None:
    next_day = SCRAPED + timedelta(minutes=2)
    files = write_rows(tmp_path, [row("1", 50), row("2", 60, scraped=next_day)])
    assert sorted(Path(p).parent.name for p in files) == ["scrape_date=2026-11-26", "scrape_date=2026-11-27"]
    assert not list(tmp_path.rglob("*.tmp"))
    assert set(stored_versions(tmp_path)) == {
        StoredVersion("indeed:1", row("1", 0)["content_hash"], "p1"),  # type: ignore[arg-type]
        StoredVersion("indeed:2", row("2", 0)["content_hash"], "p1"),  # type: ignore[arg-type]
    }


def test_the_latest_analysis_of_a_job_wins_and_history_keeps_both(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    write_rows(tmp_path, [row("1", 90, analysed=SCRAPED + timedelta(hours=1))])
    with reader(tmp_path) as con:
        assert con.execute("SELECT fit_score FROM enriched_jobs").fetchall() == [(90,)]
        assert con.execute("SELECT count(*) FROM enriched_jobs_history").fetchall() == [(2,)]
        assert (
            con.execute("SELECT DISTINCT scrape_date FROM enriched_jobs").fetchall()[0][0].isoformat() == "2026-11-26"
        )


def test_the_reader_refuses_an_empty_lake_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LakeEmptyError, match="no enriched jobs yet"):
        reader(tmp_path)


@pytest.mark.parametrize("caching", [True, False])
def test_a_reader_keeps_the_files_footers_and_bytes_only_when_asked(tmp_path: Path, caching: bool) -> None:
    # the pings read each file once and ask for no caches: at 800 files these held about 190 MB
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path, caching=caching) as con:
        settings = con.execute(
            "SELECT current_setting('parquet_metadata_cache'), current_setting('enable_external_file_cache')"
        ).fetchall()
        assert settings == [(caching, caching)]
        assert con.execute("SELECT fit_score FROM enriched_jobs").fetchall() == [(40,)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/jobping-out.csv'",
        "ATTACH '/tmp/jobping-other.duckdb'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ],
    ids=["read-outside", "copy-out", "attach", "install", "unlock"],
)
def test_the_reader_cannot_touch_files_outside_the_lake(tmp_path: Path, statement: str) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path) as con, pytest.raises(duckdb.Error):
        con.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; DROP VIEW enriched_jobs",
        "COPY (SELECT * FROM enriched_jobs) TO 'out.csv'",
        "ATTACH 'other.duckdb'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA enable_profiling",
    ],
    ids=["create", "drop-after-select", "copy", "attach", "install", "load", "set", "pragma"],
)
def test_jobping_sql_refuses_every_statement_but_select_with_a_clear_error(tmp_path: Path, statement: str) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path) as con, pytest.raises(ReadOnlyError, match="read-only"):
        run_read_only(con, statement)


def test_jobping_sql_refuses_two_selects_rather_than_show_only_the_last(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path) as con, pytest.raises(ReadOnlyError, match="one statement at a time: this query has 2"):
        run_read_only(con, "SELECT 1; SELECT 2")


def test_jobping_sql_runs_selects_and_explains(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path) as con:
        assert run_read_only(con, "SELECT count(*) AS n FROM enriched_jobs") == QueryResult(["n"], [(1,)])
        assert run_read_only(con, "EXPLAIN SELECT * FROM enriched_jobs").rows


def test_refresh_writes_views_once_and_then_leaves_the_catalog_alone(tmp_path: Path) -> None:
    catalog = tmp_path / "jobping.duckdb"
    lake = tmp_path / "lake"
    assert refresh_catalog(catalog, lake) is False  # nothing to view yet
    write_rows(lake, [row("1", 40)])
    assert refresh_catalog(catalog, lake) is True
    modified = catalog.stat().st_mtime_ns
    assert refresh_catalog(catalog, lake) is True
    assert catalog.stat().st_mtime_ns == modified
    write_rows(lake, [row("2", 41)])  # new files show without touching the catalog
    with duckdb.connect(str(catalog), read_only=True) as con:
        load_extension(con, DELTA)
        assert con.execute("SELECT count(*) FROM enriched_jobs").fetchall() == [(2,)]


# the columns a lake written before issue 10 lacks: the salvage's, JobSpy's beyond the first ones, the skills
LATER_COLUMNS = [
    "truncated_fields",
    "cleared_fields",
    "salary_source",
    "job_function",
    "listing_type",
    "emails",
    "work_from_home_type",
    "experience_range",
    "vacancy_count",
    "company_logo",
    "company_url_direct",
    "company_addresses",
    "company_num_employees",
    "company_revenue",
    "company_description",
    "company_rating",
    "company_reviews_count",
    "posting_skills",
]


def write_old_table(lake: Path, rows: list[dict[str, object]]) -> None:
    """A history table created by a jobping whose rows lacked LATER_COLUMNS."""
    frame = to_frame(pl.DataFrame(rows, schema=ROW_SCHEMA)).drop(LATER_COLUMNS)
    write_deltalake(Lake(lake).history_uri, frame, partition_by=[PARTITION], configuration=HISTORY_CONFIGURATION)


def test_rows_written_before_the_jobspy_columns_read_them_as_null(tmp_path: Path) -> None:
    write_old_table(tmp_path, [row("1", 40)])
    open_lake(Lake(tmp_path), create=False)
    with reader(tmp_path) as con:
        got = con.execute("SELECT job_id, emails, company_rating, truncated_fields FROM enriched_jobs").fetchall()
    assert got == [("1", None, None, None)]


def test_old_and_new_rows_read_and_merge_together(tmp_path: Path) -> None:
    write_old_table(tmp_path, [row("1", 40)])
    new = row("2", 60)
    new |= {"emails": "jobs@x.example", "company_rating": 4.5, "posting_skills": "Go, SQL"}
    write_rows(tmp_path, [new])
    query = "SELECT job_id, emails, company_rating, posting_skills FROM enriched_jobs ORDER BY job_id"
    expected = [("1", None, None, None), ("2", "jobs@x.example", 4.5, "Go, SQL")]
    with reader(tmp_path) as con:
        assert con.execute(query).fetchall() == expected
    maintain(Lake(tmp_path), timedelta(0))
    with reader(tmp_path) as con:
        assert con.execute(query).fetchall() == expected


def test_jobping_sql_stops_a_query_at_its_time_limit(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path) as con, pytest.raises(QueryTimeoutError, match=r"past 0\.5 s"):
        run_read_only(con, "SELECT count(*) FROM range(1000000000000) a", timeout_seconds=0.5)


def test_jobping_sql_fetches_at_most_max_rows_and_says_it_cut(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path) as con:
        result = run_read_only(con, "SELECT * FROM range(1000000000)", max_rows=5)
    assert (len(result.rows), result.cut) == (5, True)


def test_jobping_sql_cannot_spill_to_or_read_a_temp_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_rows(tmp_path / "lake", [row("1", 40)])
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.csv").write_text("a\n1\n", encoding="utf-8")
    with reader(tmp_path / "lake") as con, pytest.raises(duckdb.Error):
        run_read_only(con, "SELECT * FROM read_csv('.tmp/secret.csv')")


def test_a_user_s_query_runs_within_a_memory_limit_it_cannot_lift(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    with reader(tmp_path, memory_limit="1GB") as con:
        limit = run_read_only(con, "SELECT current_setting('memory_limit')").rows[0][0]
        assert str(limit).startswith(("953", "1.0 GiB", "1000")), limit
        with pytest.raises(duckdb.Error):
            con.execute("SET memory_limit = '8GB'")


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_catalog_is_rebuilt_by_the_next_refresh(tmp_path: Path, damage: str) -> None:
    catalog = tmp_path / "jobping.duckdb"
    write_rows(tmp_path / "lake", [row("1", 40)])
    assert refresh_catalog(catalog, tmp_path / "lake")
    data = catalog.read_bytes()
    catalog.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"garbage" * 100)
    assert refresh_catalog(catalog, tmp_path / "lake")
    with duckdb.connect(str(catalog), read_only=True) as con:
        load_extension(con, DELTA)
        assert con.execute("SELECT count(*) FROM enriched_jobs").fetchall() == [(1,)]


def damaged(data: bytes, damage: str) -> bytes:
    if damage == "cut in half":
        return data[: len(data) // 2]
    if damage == "not parquet":
        return b"PAR1" + b"x" * 100 + b"PAR1"
    # the pages overwritten, the footer whole: the file opens, and fails only when rows are read
    footer = int.from_bytes(data[-8:-4], "little") + 8
    return data[:4] + b"\xab" * (len(data) - 4 - footer) + data[-footer:]


@pytest.mark.parametrize("damage", ["cut in half", "not parquet", "pages overwritten"])
def test_an_unreadable_lake_file_is_quarantined_and_reading_goes_on(tmp_path: Path, damage: str) -> None:
    write_rows(tmp_path, [row("1", 40)])
    (bad,) = write_rows(tmp_path, [row("2", 50)])
    Path(bad).write_bytes(damaged(Path(bad).read_bytes(), damage))
    with reader(tmp_path) as con:
        assert con.execute("SELECT job_id FROM enriched_jobs").fetchall() == [("1",)]
    moved = Lake(tmp_path).quarantined()
    assert [Path(p).name for p in moved] == [Path(bad).name]
    assert Path(moved[0] + ".reason.txt").read_text(encoding="utf-8")
    assert {v.job_key for v in stored_versions(tmp_path)} == {"indeed:1"}


def test_a_file_damaged_inside_is_quarantined_by_the_analyse_index_and_reading_goes_on(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 40)])
    (bad,) = write_rows(tmp_path, [row("2", 50)])
    Path(bad).write_bytes(damaged(Path(bad).read_bytes(), "pages overwritten"))
    # DuckDB's error when the rows are read does not name the file: it is found by reading each
    with duckdb.connect() as con, pytest.raises(duckdb.Error) as raised:
        con.execute("SELECT job_key FROM read_parquet(?)", [str(tmp_path / "**" / "*.parquet")]).fetchall()
    assert Path(bad).name not in str(raised.value)
    assert {v.job_key for v in stored_versions(tmp_path)} == {"indeed:1"}
    assert [Path(p).name for p in Lake(tmp_path).quarantined()] == [Path(bad).name]


def test_an_unreadable_latest_file_drops_the_latest_table_and_the_views_go_on(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write_rows(lake, [row("1", 40), row("2", 50)])
    maintain(lake, timedelta(0))
    (bad,) = DeltaLatest(lake).table().file_uris()
    Path(bad).write_bytes(damaged(Path(bad).read_bytes(), "cut in half"))
    with reader(tmp_path) as con:
        assert sorted(con.execute("SELECT job_id FROM enriched_jobs").fetchall()) == [("1",), ("2",)]
    assert [Path(p).name for p in lake.quarantined()] == [Path(bad).name]
    assert not DeltaLatest(lake).exists()
    # the next maintenance makes it again from the history
    maintain(lake, timedelta(0))
    assert DeltaLatest(lake).table().count() == 2


def test_a_maintained_lake_an_older_jobping_wrote_shows_the_new_columns_before_the_next_merge(tmp_path: Path) -> None:
    write_old_table(tmp_path, [row("1", 40)])
    # the latest table as that jobping's maintenance left it, with its merge record
    merged = {MERGED_UP_TO: "0", ANALYSED_UP_TO: SCRAPED.isoformat()}
    write_deltalake(
        Lake(tmp_path).latest_uri, pl.scan_delta(Lake(tmp_path).history_uri).collect(), partition_by=[PARTITION],
        commit_properties=CommitProperties(custom_metadata=merged),
    )  # fmt: skip
    write_rows(tmp_path, [row("2", 60) | {"emails": "jobs@x.example"}])
    # the latest table still lacks the new columns: the views, which name them, bind once the lake is opened
    assert "emails" not in {f.name for f in DeltaLatest(Lake(tmp_path)).table().schema().fields}
    open_lake(Lake(tmp_path), create=False)
    with reader(tmp_path) as con:
        got = con.execute("SELECT job_id, emails FROM enriched_jobs ORDER BY job_id").fetchall()
    assert got == [("1", None), ("2", "jobs@x.example")]


def test_the_analyse_index_read_without_duckdb_is_what_the_views_say(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    # a file written before the tables had job groups: its rows read those columns as NULL
    old = to_frame([row(str(n), 10 + n) for n in range(3)]).drop(["group_key", "job_group", "analysis_of"])  # type: ignore[list-item]
    write_deltalake(lake.history_uri, old, mode="append", partition_by=[PARTITION])
    open_lake(lake)
    for batch in range(2):
        rows = []
        for n in range(4):
            later = row(str(n), 50 + 10 * batch + n, analysed=SCRAPED + timedelta(minutes=batch * 10 + n))
            later |= {"group_key": f"{n % 2:x}ab", "job_group": f"g{n % 2}", "analysis_of": "indeed:0" if n else None}
            rows.append(later)
        write_rows(lake, rows)  # type: ignore[arg-type]
    history = "enriched_jobs_history"
    with reader(lake) as con:
        versions = con.execute(f"SELECT DISTINCT job_key, content_hash, prompt_version FROM {history}").fetchall()
        keys = con.execute(f"SELECT DISTINCT group_key FROM {history} WHERE group_key IS NOT NULL").fetchall()
        members = con.execute(
            f"SELECT job_key, fit_score FROM {history} WHERE group_key IN ('0ab', '1ab') "
            "QUALIFY row_number() OVER (PARTITION BY job_key ORDER BY analysed_at DESC, message_id DESC) = 1"
        ).fetchall()
    assert set(stored_versions(lake)) == {StoredVersion(*v) for v in versions}
    assert len(versions) == 4
    assert group_keys(lake) == {k for (k,) in keys} == {"0ab", "1ab"}
    read = {m.job_key: m.result.analysis.fit_score for m in group_members(lake, ["0ab", "1ab"]) if m.result}
    assert read == dict(members) == {"indeed:0": 60, "indeed:1": 61, "indeed:2": 62, "indeed:3": 63}


def test_an_analyse_process_never_imports_duckdb() -> None:
    # DuckDB and its delta extension cost the analyse process ~60 MB: the catalog refresh runs in a child
    code = "import sys, app.cli, flows.analyse; print('duckdb' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "False"
