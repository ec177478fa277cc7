"""Maintenance (merge, optimize, checkpoint, vacuum): the views show the same jobs before and after, beside writers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties

from jobping.contract import OUTSIDE_PRODUCER, SCRAPE_PRODUCER
from storage import views as views_module
from storage.catalog import refresh_catalog
from storage.delta import ANALYSED_UP_TO, MERGED_UP_TO, DeltaHistory, DeltaLatest
from storage.lake import DELTA, Lake, load_extension
from storage.maintenance import maintain
from storage.reader import reader
from storage.views import HISTORY_VIEW, LATEST_VIEW, MAX_HELD_RECENT_ROWS, RECENT_TABLE
from tests.lakes import write_rows
from tests.test_storage import SCRAPED, row

DAY = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def latest(lake: Lake) -> list[tuple[str, int, str]]:
    with reader(lake) as con:
        return sorted(
            (k, s, str(d))
            for k, s, d in con.execute(f"SELECT job_key, fit_score, scrape_date FROM {LATEST_VIEW}").fetchall()
        )


def history_rows(lake: Lake) -> int:
    with reader(lake) as con:
        return int(con.execute(f"SELECT count(*) FROM {HISTORY_VIEW}").fetchall()[0][0])


def write_history(
    lake: Lake, rng: random.Random, batches: int, jobs: int, start: datetime
) -> dict[str, tuple[int, str]]:
    """Batches of rows over several scrape dates, jobs analysed again later; returns the expected latest view."""
    expected: dict[str, tuple[int, str]] = {}
    clock = start
    for _ in range(batches):
        rows = []
        for _ in range(rng.randrange(1, 8)):
            job = str(rng.randrange(jobs))
            clock += timedelta(seconds=1)
            scraped = DAY + timedelta(days=rng.randrange(5))
            score = rng.randrange(101)
            rows.append(row(job, score, scraped=scraped, analysed=clock))
            expected[f"indeed:{job}"] = (score, scraped.date().isoformat())
        write_rows(lake, rows)
    return expected


def as_view(expected: dict[str, tuple[int, str]]) -> list[tuple[str, int, str]]:
    return sorted((k, s, d) for k, (s, d) in expected.items())


def test_maintenance_shows_the_same_jobs_keeps_every_row_and_leaves_few_files(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    expected = write_history(lake, random.Random(1), batches=120, jobs=60, start=DAY)
    before_history = history_rows(lake)
    # a file per batch and scrape date it touched: each of the 120 batches wrote one at least
    assert len(DeltaHistory(lake).table().file_uris()) >= 120
    assert latest(lake) == as_view(expected)

    done = maintain(lake, timedelta(0))

    assert done is not None
    assert done.merged.rows_merged == len(expected)
    assert latest(lake) == as_view(expected)
    assert history_rows(lake) == before_history
    # one file per scrape date in each table, and the replaced ones gone (no retention here)
    assert len(DeltaHistory(lake).table().file_uris()) == 5
    assert len(DeltaLatest(lake).table().file_uris()) == 5
    assert (
        len(list(Path(lake.history_uri).rglob("*.parquet")))
        - len(list(Path(lake.history_uri, "_delta_log").glob("*.parquet")))
        == 5
    )
    assert pl.scan_delta(lake.latest_uri).select(pl.len()).collect().item() == len(expected)


def test_new_analyses_beat_merged_rows_in_other_partitions_and_the_next_run_merges_them(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    expected = write_history(lake, random.Random(2), batches=40, jobs=30, start=DAY)
    maintain(lake, timedelta(0))
    # job 7 analysed again, scraped on a new date: its merged row must disappear from the view
    later = DAY + timedelta(days=9)
    write_rows(lake, [row("7", 99, scraped=later, analysed=later)])
    expected["indeed:7"] = (99, later.date().isoformat())
    assert latest(lake) == as_view(expected)

    done = maintain(lake, timedelta(0))
    assert done is not None
    assert done.merged.rows_merged == 1
    assert latest(lake) == as_view(expected)
    assert pl.scan_delta(lake.latest_uri).filter(pl.col("job_id") == "7").select("fit_score").collect().item() == 99


def test_replaced_files_stay_for_the_retention(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for n in range(3):
        write_rows(lake, [row(str(n), 10)])
    files = DeltaHistory(lake).table().file_uris()
    maintain(lake)  # the default retention: 7 days
    assert all(Path(p).exists() for p in files)  # replaced, but kept for readers of the older snapshot
    assert DeltaHistory(lake).table().file_uris() != files
    maintain(lake, timedelta(0))
    assert not any(Path(p).exists() for p in files)


def test_the_catalog_is_rewritten_when_a_merge_moves_the_views_watermark(tmp_path: Path) -> None:
    lake, catalog = Lake(tmp_path / "lake"), tmp_path / "jobping.duckdb"
    write_rows(lake, [row("1", 10)])
    assert refresh_catalog(catalog, lake)
    first = catalog.with_suffix(".version").read_text(encoding="utf-8")
    maintain(lake, timedelta(0))
    assert refresh_catalog(catalog, lake)
    assert catalog.with_suffix(".version").read_text(encoding="utf-8") != first
    write_rows(lake, [row("1", 20, analysed=datetime.now(UTC))])
    with duckdb.connect(str(catalog), read_only=True) as con:
        load_extension(con, DELTA)
        assert con.execute(f"SELECT fit_score FROM {LATEST_VIEW}").fetchall() == [(20,)]


def scores(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, int]:
    return dict(con.execute(f"SELECT job_key, fit_score FROM {view}").fetchall())


def test_a_reader_keeps_the_snapshot_it_opened_and_the_catalog_file_reads_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path / "lake")
    write_rows(lake, [row("1", 40), row("2", 50)])
    write_rows(lake, [row("1", 90, analysed=SCRAPED + timedelta(hours=1))])
    maintain(lake, timedelta(0))
    # analysed again since the merge: the view takes it from the history
    write_rows(lake, [row("2", 77, analysed=SCRAPED + timedelta(hours=5))])
    catalog = tmp_path / "catalog.duckdb"
    assert refresh_catalog(catalog, lake)
    opened = {"indeed:1": 90, "indeed:2": 77}
    with reader(lake) as con:
        assert scores(con, LATEST_VIEW) == opened
        # the rows since the merge less the margin, deduplicated once: job 1's newest (merged already) and job 2's
        assert scores(con, RECENT_TABLE) == opened
        write_rows(
            lake,
            [row("2", 11, analysed=SCRAPED + timedelta(hours=6)), row("3", 12, analysed=SCRAPED + timedelta(hours=6))],
        )
        # every view of this reader stays on the snapshot it opened
        assert scores(con, LATEST_VIEW) == opened
        assert con.execute(f"SELECT count(*) FROM {HISTORY_VIEW}").fetchall() == [(4,)]
    newest = {"indeed:1": 90, "indeed:2": 11, "indeed:3": 12}
    with reader(lake) as con:
        assert scores(con, LATEST_VIEW) == newest
    # a DuckDB shell on the catalog file reads each table's newest snapshot at every query
    with duckdb.connect(str(catalog), read_only=True) as con:
        load_extension(con, DELTA)
        assert scores(con, LATEST_VIEW) == newest
    # with more rows since the merge than a reader holds, it joins them at query time, to the same jobs
    monkeypatch.setattr(views_module, "MAX_HELD_RECENT_ROWS", 1)
    with reader(lake) as con:
        assert scores(con, LATEST_VIEW) == newest
        assert not con.execute(f"SELECT * FROM duckdb_tables() WHERE table_name = '{RECENT_TABLE}'").fetchall()


def test_a_crafted_merge_record_in_the_latest_table_runs_no_sql_and_is_merged_over(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_rows(lake, [row("1", 40), row("2", 50)])
    maintain(lake, timedelta(0))
    target = tmp_path / "written-by-the-log.csv"
    hostile = f"2026-11-27T00:00:00+00:00' UNION ALL SELECT 1; COPY (SELECT 1) TO '{target}'; --"
    # a commit to the latest table whose merge record carries SQL where a moment should be
    write_deltalake(
        lake.latest_uri, pl.scan_delta(lake.latest_uri).head(0).collect(), mode="append",
        commit_properties=CommitProperties(custom_metadata={MERGED_UP_TO: "99", ANALYSED_UP_TO: hostile}),
    )  # fmt: skip
    assert DeltaLatest(lake).merged() is None
    assert latest(lake) == [("indeed:1", 40, "2026-11-26"), ("indeed:2", 50, "2026-11-26")]
    assert refresh_catalog(tmp_path / "jobping.duckdb", lake)
    assert not target.exists()
    done = maintain(lake, timedelta(0))
    assert done is not None
    assert DeltaLatest(lake).merged() is not None
    assert latest(lake) == [("indeed:1", 40, "2026-11-26"), ("indeed:2", 50, "2026-11-26")]


def test_a_merge_after_the_log_since_the_last_one_was_cleaned_away_merges_every_row(tmp_path: Path) -> None:
    lake = Lake.of(tmp_path / "lake")
    write_rows(lake, [row("1", 10, analysed=DAY)])
    maintain(lake)
    history = DeltaHistory(lake)
    write_rows(lake, [row("3", 40, analysed=DAY)])
    # a lake left a long time: its log kept no commit from before the latest checkpoint
    history.table().alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
    table = history.table()
    table.create_checkpoint()
    table.cleanup_metadata()
    write_rows(lake, [row("1", 30, analysed=DAY + timedelta(hours=1)), row("2", 20, analysed=DAY)])
    maintain(lake)

    assert [(k, s) for k, s, _ in latest(lake)] == [("indeed:1", 30), ("indeed:2", 20), ("indeed:3", 40)]
    assert history_rows(lake) == 4


@pytest.mark.parametrize(
    ("version", "moment"),
    [("999999999", "2026-11-27T00:00:00+00:00"), ("1", "9999-12-31T00:00:00+00:00")],
    ids=["a version beyond the history", "a moment in the future"],
)
def test_an_implausible_merge_record_is_refused_loudly_and_hides_no_later_analysis(
    tmp_path: Path, version: str, moment: str, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(tmp_path / "lake")
    write_rows(lake, [row("1", 40, analysed=DAY)])
    maintain(lake, timedelta(0))
    # a commit carrying only a forged merge record, on the latest table
    write_deltalake(
        lake.latest_uri, pl.scan_delta(lake.latest_uri).head(0).collect(), mode="append",
        commit_properties=CommitProperties(custom_metadata={MERGED_UP_TO: version, ANALYSED_UP_TO: moment}),
    )  # fmt: skip
    write_rows(lake, [row("2", 50, analysed=DAY + timedelta(hours=1))])

    with caplog.at_level("ERROR", logger="storage.delta"):
        assert [k for k, _, _ in latest(lake)] == ["indeed:1", "indeed:2"]
    assert "refusing the latest table's merge record" in caplog.text
    done = maintain(lake, timedelta(0))
    assert done is not None
    assert done.merged.rows_merged == 2
    assert done.merged.history_version < int(version) or done.merged.analysed_up_to.year < 9999
    write_rows(lake, [row("3", 60, analysed=DAY + timedelta(hours=2))])
    assert [k for k, _, _ in latest(lake)] == ["indeed:1", "indeed:2", "indeed:3"]


def test_a_row_stamped_in_the_future_is_merged_and_the_record_stays_at_now(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_rows(lake, [row("1", 40, analysed=datetime(9999, 1, 1, tzinfo=UTC))])
    done = maintain(lake, timedelta(0))
    assert done is not None
    assert done.merged.analysed_up_to <= datetime.now(UTC)
    recorded = DeltaLatest(lake).merged(DeltaHistory(lake).table().version())
    assert recorded is not None
    assert recorded.analysed_up_to == done.merged.analysed_up_to
    # analysed after the merge: shown before the next one
    write_rows(lake, [row("2", 50, analysed=datetime.now(UTC))])
    assert [k for k, _, _ in latest(lake)] == ["indeed:1", "indeed:2"]


@pytest.mark.parametrize("held", [MAX_HELD_RECENT_ROWS, 0], ids=["rows held by the reader", "rows joined"])
def test_another_producer_s_posting_under_a_scraped_job_s_key_never_replaces_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: int
) -> None:
    monkeypatch.setattr(views_module, "MAX_HELD_RECENT_ROWS", held)
    lake = Lake(tmp_path / "lake")

    def sent(job: str, score: int, analysed: datetime, producer: str) -> dict[str, object]:
        return {**row(job, score, analysed=analysed), "producer": producer}

    write_rows(lake, [sent("1", 40, DAY, SCRAPE_PRODUCER), sent("2", 50, DAY, OUTSIDE_PRODUCER)])
    # a stranger's newer posting under job 1's key, and a newer one of ours for job 2
    write_rows(lake, [sent("1", 99, DAY + timedelta(hours=1), OUTSIDE_PRODUCER)])
    write_rows(lake, [sent("2", 60, DAY + timedelta(hours=1), SCRAPE_PRODUCER)])
    expected = [("indeed:1", 40, "2026-11-26"), ("indeed:2", 60, "2026-11-26")]
    assert latest(lake) == expected
    maintain(lake, timedelta(0))
    assert latest(lake) == expected
    write_rows(lake, [sent("1", 98, DAY + timedelta(hours=2), OUTSIDE_PRODUCER)])
    assert latest(lake) == expected
    maintain(lake, timedelta(0))
    assert latest(lake) == expected
    assert history_rows(lake) == 5
