"""The Delta table primitives, read back by engines that do not know jobping: polars, pyarrow, DuckDB."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from pathlib import Path

import boto3
import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable

from storage.catalog import HISTORY_VIEW, LATEST_VIEW, reader
from storage.compaction import compact
from storage.delta import DeltaHistory, DeltaLatest, delta_extension, load_delta, s3_options
from storage.lake import Lake, write_rows
from storage.migrate import MIGRATING, migrate
from tests.test_storage import SCRAPED, row

KEY = ["job_key", "content_hash", "prompt_version", "fit_score"]


def batches() -> list[list[dict[str, object]]]:
    """Three batches over two scrape dates; job 1 is analysed twice."""
    later = SCRAPED + timedelta(days=1)
    return [
        [row("1", 40), row("2", 50)],  # type: ignore[list-item]
        [row("3", 60, scraped=later), row("1", 90, analysed=SCRAPED + timedelta(hours=1))],  # type: ignore[list-item]
        [row(str(n), n, scraped=later) for n in range(4, 9)],  # type: ignore[list-item]
    ]


def written(tmp_path: Path) -> DeltaHistory:
    history = DeltaHistory(str(tmp_path / "delta" / "enriched_jobs"))
    for batch in batches():
        history.append(batch)  # type: ignore[arg-type]
    return history


def keys(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.select(KEY).iter_rows())


def parquet_lake_view(tmp_path: Path, view: str) -> list[tuple[object, ...]]:
    """The rows the Parquet lake's ``view`` shows for the same batches."""
    lake = tmp_path / "lake"
    for batch in batches():
        write_rows(lake, batch)  # type: ignore[arg-type]
    with reader(lake) as con:
        return sorted(con.execute(f"SELECT {', '.join(KEY)} FROM {view}").fetchall())


def test_polars_pyarrow_and_duckdb_read_the_rows_the_parquet_lake_s_history_holds(tmp_path: Path) -> None:
    history = written(tmp_path)
    lake = tmp_path / "lake"
    for batch in batches():
        write_rows(lake, batch)  # type: ignore[arg-type]
    with reader(lake) as con:
        expected = sorted(con.execute(f"SELECT {', '.join(KEY)} FROM {HISTORY_VIEW}").fetchall())
    assert len(expected) == 9

    assert keys(pl.scan_delta(history.uri).collect()) == expected
    arrow = DeltaTable(history.uri).to_pyarrow_dataset().to_table(columns=KEY)
    assert keys(pl.from_arrow(arrow)) == expected  # type: ignore[arg-type]
    with duckdb.connect() as con:
        load_delta(con)
        # the guard jobping sql puts up: the lake alone, no other file, settings locked
        con.execute("SET allowed_directories = [?]", [str(tmp_path / "delta") + "/"])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        got = con.execute(f"SELECT {', '.join(KEY)} FROM delta_scan(?)", [history.uri]).fetchall()
    assert sorted(got) == expected


def test_no_file_but_parquet_lies_among_the_data_for_folder_readers_to_trip_on(tmp_path: Path) -> None:
    history = written(tmp_path)
    root = Path(history.uri)
    data = [p for p in root.rglob("*") if p.is_file() and "_delta_log" not in p.parts]
    assert data
    assert all(p.suffix == ".parquet" for p in data), [p.name for p in data]
    # a reader of the folders alone (hive partitions) gets the rows, as long as nothing was compacted
    folders = pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert folders.height == 9


def test_three_processes_appending_at_once_lose_no_commit(tmp_path: Path) -> None:
    uri = str(tmp_path / "enriched_jobs")
    script = textwrap.dedent(
        f"""
        import sys
        from storage.delta import DeltaHistory
        from tests.test_storage import row
        worker = sys.argv[1]
        history = DeltaHistory({uri!r})
        for n in range(8):
            history.append([row(f"{{worker}}-{{n}}", 50)])
        """
    )
    DeltaHistory(uri).append([row("seed", 1)])  # type: ignore[list-item]
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    table = DeltaTable(uri)
    assert table.version() == 24
    frame = pl.scan_delta(uri).collect()
    assert frame.height == 25
    assert frame["job_id"].n_unique() == 25


def test_maintenance_compacts_checkpoints_and_vacuums_without_changing_a_row(tmp_path: Path) -> None:
    history = DeltaHistory(str(tmp_path / "enriched_jobs"))
    for n in range(12):
        history.append([row(str(n), n)])  # type: ignore[list-item]
    before = keys(pl.scan_delta(history.uri).collect())
    old_version = history.table().version()
    done = history.maintain(retention=timedelta(0))
    assert done.files_removed == 12
    assert done.files_added == 1
    assert done.files_vacuumed == 12
    assert keys(pl.scan_delta(history.uri).collect()) == before
    assert len(history.table().file_uris()) == 1
    assert list((Path(history.uri) / "_delta_log").glob("*.checkpoint.parquet"))
    assert history.table().version() > old_version


def test_the_delta_extension_comes_from_the_installed_package(tmp_path: Path) -> None:
    path = delta_extension()
    assert path.is_file()
    assert f"v{duckdb.__version__}" in path.parts


def latest_rows(uri: str) -> list[tuple[object, ...]]:
    return keys(pl.scan_delta(uri).collect())


def test_the_latest_table_holds_the_rows_of_the_enriched_jobs_view(tmp_path: Path) -> None:
    history = written(tmp_path)
    lake = tmp_path / "lake"
    for batch in batches():
        write_rows(lake, batch)  # type: ignore[arg-type]
    with reader(lake) as con:
        expected = sorted(con.execute(f"SELECT {', '.join(KEY)} FROM {LATEST_VIEW}").fetchall())
    latest = DeltaLatest(str(tmp_path / "delta" / "enriched_jobs_latest"))
    merged = latest.merge(history)
    assert (merged.history_version, merged.rows_merged) == (2, 8)
    assert latest_rows(latest.uri) == expected
    assert latest.merged_up_to() == 2
    assert latest.merge(history).rows_merged == 0


def test_a_merge_reads_only_what_was_written_since_and_an_older_analysis_never_wins(tmp_path: Path) -> None:
    history = written(tmp_path)
    latest = DeltaLatest(str(tmp_path / "delta" / "enriched_jobs_latest"))
    latest.merge(history)
    newer, older = SCRAPED + timedelta(hours=5), SCRAPED - timedelta(hours=5)
    history.append([row("2", 77, analysed=newer), row("9", 10)])  # type: ignore[list-item]
    # committed later, analysed earlier (a slow consumer): the job keeps its newer analysis
    history.append([row("1", 5, analysed=older)])  # type: ignore[list-item]
    merged = latest.merge(history)
    assert (merged.history_version, merged.rows_merged) == (4, 3)
    scores = dict(pl.scan_delta(latest.uri).select("job_id", "fit_score").collect().iter_rows())
    assert (scores["1"], scores["2"], scores["9"]) == (90, 77, 10)
    assert len(scores) == 9


def test_a_lake_made_by_the_parquet_code_is_converted_with_no_row_lost_or_doubled(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for batch in batches()[:2]:
        write_rows(lake, batch)  # type: ignore[arg-type]
    compact(lake, margin=timedelta(0))
    write_rows(lake, batches()[2])  # type: ignore[arg-type]
    with reader(lake) as con:
        history = sorted(con.execute(f"SELECT {', '.join(KEY)} FROM {HISTORY_VIEW}").fetchall())
        newest = sorted(con.execute(f"SELECT {', '.join(KEY)} FROM {LATEST_VIEW}").fetchall())

    done = migrate(Lake(lake))
    assert done is not None
    assert (done.rows, done.job_keys) == (9, 8)
    uri = str(lake / "enriched_jobs")
    assert keys(pl.scan_delta(uri).collect()) == history
    latest = DeltaLatest(str(lake / "enriched_jobs_latest"))
    latest.merge(DeltaHistory(uri))
    assert latest_rows(latest.uri) == newest
    # the Parquet folders are kept, moved aside; nothing but the tables is left at the top
    assert {p.name for p in lake.iterdir()} == {"enriched_jobs", "enriched_jobs_latest", "migrated"}
    assert migrate(Lake(lake)) is None


def test_a_conversion_cut_short_during_the_swap_is_finished_by_the_next_call(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_rows(lake, batches()[0])  # type: ignore[arg-type]
    staged = DeltaHistory(str(lake / MIGRATING))
    staged.append(batches()[0])  # type: ignore[arg-type]
    (lake / "enriched_jobs").rename(tmp_path / "moved-away")  # the crash came after the old folder moved
    assert migrate(Lake(lake)) is None
    assert len(pl.scan_delta(str(lake / "enriched_jobs")).collect()) == 2


def test_three_processes_appending_to_one_s3_table_lose_no_commit(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"delta-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=bucket)
    uri, options = f"s3://{bucket}/enriched_jobs", s3_options(moto_url, "us-east-1")
    script = textwrap.dedent(
        f"""
        import sys
        from storage.delta import DeltaHistory
        from tests.test_storage import row
        history = DeltaHistory({uri!r}, {options!r})
        for n in range(5):
            history.append([row(f"{{sys.argv[1]}}-{{n}}", 50)])
        """
    )
    DeltaHistory(uri, options).append([row("seed", 1)])  # type: ignore[list-item]
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(3)]
    assert [w.wait(timeout=180) for w in workers] == [0, 0, 0]
    assert DeltaTable(uri, storage_options=options).version() == 15
    frame = pl.scan_delta(uri, storage_options=options).collect()
    assert (frame.height, frame["job_id"].n_unique()) == (16, 16)
