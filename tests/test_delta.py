"""The lake's Delta tables, read back by engines that do not know jobping: polars, pyarrow, DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from pathlib import Path

import boto3
import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from storage import ALLOCATOR_SETTINGS, ALLOCATOR_VARIABLE, POLARS_ALLOCATOR_DEFAULT
from storage.delta import DeltaHistory, DeltaLatest
from storage.lake import DELTA, Lake, extension_path, load_extension
from storage.maintenance import maintain
from storage.reader import reader
from storage.views import HISTORY_VIEW, LATE_COMMIT_MARGIN, LATEST_VIEW
from tests.lakes import write_rows
from tests.test_storage import SCRAPED, row

KEY = ["job_key", "content_hash", "prompt_version", "fit_score"]


def batches() -> list[list[dict[str, object]]]:
    """Three batches over two scrape dates; job 1 is analysed twice."""
    later = SCRAPED + timedelta(days=1)
    return [
        [row("1", 40), row("2", 50)],
        [row("3", 60, scraped=later), row("1", 90, analysed=SCRAPED + timedelta(hours=1))],
        [row(str(n), n, scraped=later) for n in range(4, 9)],
    ]


def written(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    for batch in batches():
        write_rows(lake, batch)
    return lake


def keys(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.select(KEY).iter_rows())


def view(lake: Lake, name: str) -> list[tuple[object, ...]]:
    with reader(lake) as con:
        return sorted(con.execute(f"SELECT {', '.join(KEY)} FROM {name}").fetchall())


def deduplicated(frame: pl.DataFrame) -> pl.DataFrame:
    """The newest analysis per job_key, as a reader that knows only the columns would pick it."""
    return frame.sort(["analysed_at", "message_id"], descending=True).unique("job_key", keep="first")


def engines(lake: Lake, table: str) -> dict[str, list[tuple[object, ...]]]:
    """The rows of one table as polars, deltalake's pyarrow dataset and DuckDB's delta_scan read them."""
    uri = lake.join(table)
    arrow = DeltaTable(uri).to_pyarrow_dataset().to_table(columns=KEY)
    with duckdb.connect() as con:
        load_extension(con, DELTA)
        # the guard jobping sql puts up: the lake alone, no other file, settings locked
        con.execute("SET allowed_directories = [?]", [lake.url + "/"])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        scanned = con.execute(f"SELECT {', '.join(KEY)} FROM delta_scan(?)", [uri]).fetchall()
    return {
        "polars": keys(pl.scan_delta(uri).collect()),
        "pyarrow": keys(pl.DataFrame(arrow)),
        "duckdb": sorted(scanned),
    }


def test_polars_pyarrow_and_duckdb_read_the_rows_of_the_views(tmp_path: Path) -> None:
    lake = written(tmp_path)
    history, latest = view(lake, HISTORY_VIEW), view(lake, LATEST_VIEW)
    assert (len(history), len(latest)) == (9, 8)
    for engine, rows in engines(lake, "enriched_jobs_history").items():
        assert rows == history, engine
    assert keys(deduplicated(pl.scan_delta(lake.history_uri).collect())) == latest

    maintain(lake, timedelta(0))
    # one more analysis after the maintenance: the view adds it to the latest table
    write_rows(lake, [row("2", 99, analysed=SCRAPED + timedelta(hours=2))])
    history, latest = view(lake, HISTORY_VIEW), view(lake, LATEST_VIEW)
    assert (len(history), len(latest)) == (10, 8)
    for engine, rows in engines(lake, "enriched_jobs_history").items():
        assert rows == history, engine
    assert keys(deduplicated(pl.scan_delta(lake.history_uri).collect())) == latest
    maintain(lake, timedelta(0))
    for engine, rows in engines(lake, "enriched_jobs_latest").items():
        assert rows == latest, engine


def test_folder_readers_find_only_parquet_among_the_data(tmp_path: Path) -> None:
    lake = written(tmp_path)
    maintain(lake, timedelta(0))
    for table in ("enriched_jobs_history", "enriched_jobs_latest"):
        folder = Path(lake.join(table))
        data = [p for p in folder.rglob("*") if p.is_file() and "_delta_log" not in p.parts]
        assert data, table
        assert all(p.suffix == ".parquet" for p in data), sorted(p.name for p in data)
        # pyarrow's own folder reader (it skips _delta_log, as its names start with _)
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        assert dataset.to_table(columns=["job_key"]).num_rows > 0
    # vacuumed with no retention: the folder holds the current snapshot only
    assert ds.dataset(lake.history_uri, format="parquet", partitioning="hive").count_rows() == 9


def test_three_processes_appending_at_once_lose_no_commit(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    script = textwrap.dedent(
        f"""
        import sys
        from storage.delta import DeltaHistory
        from storage.lake import Lake
        from tests.test_storage import row
        history = DeltaHistory(Lake({lake.url!r}))
        for n in range(8):
            history.append([row(f"{{sys.argv[1]}}-{{n}}", 50)])
        """
    )
    write_rows(lake, [row("seed", 1)])
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    frame = pl.scan_delta(lake.history_uri).collect()
    assert (frame.height, frame["job_id"].n_unique()) == (25, 25)
    # created, seeded, then 24 appends
    assert DeltaTable(lake.history_uri).version() == 25


def test_maintenance_compacts_checkpoints_and_vacuums_without_changing_a_row(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for n in range(12):
        write_rows(lake, [row(str(n), n)])
    history = DeltaHistory(lake)
    before = keys(pl.scan_delta(lake.history_uri).collect())
    old_version = history.table().version()
    done = maintain(lake, retention=timedelta(0))
    assert done is not None
    assert (done.history.files_removed, done.history.files_added, done.history.files_vacuumed) == (12, 1, 12)
    assert keys(pl.scan_delta(lake.history_uri).collect()) == before
    assert len(history.table().file_uris()) == 1
    assert list((Path(lake.history_uri) / "_delta_log").glob("*.checkpoint.parquet"))
    assert history.table().version() > old_version
    assert maintain(Lake(tmp_path / "empty")) is None


def test_the_delta_extension_comes_from_the_installed_package() -> None:
    path = extension_path(DELTA)
    assert path.is_file()
    assert f"v{duckdb.__version__}" in path.parts


def test_a_merge_reads_only_what_was_written_since_and_an_older_analysis_never_wins(tmp_path: Path) -> None:
    lake = written(tmp_path)
    latest = DeltaLatest(lake)
    merged = latest.merge(DeltaHistory(lake))
    # the history: created, then three appends
    assert (merged.history_version, merged.rows_merged) == (3, 8)
    assert latest.merge(DeltaHistory(lake)).rows_merged == 0
    newer, older = SCRAPED + timedelta(hours=5), SCRAPED - timedelta(hours=5)
    write_rows(lake, [row("2", 77, analysed=newer), row("9", 10, analysed=newer)])
    # committed later, analysed earlier (a slow consumer): the job keeps its newer analysis
    write_rows(lake, [row("1", 5, analysed=older)])
    expected = view(lake, LATEST_VIEW)
    merged = latest.merge(DeltaHistory(lake))
    assert (merged.history_version, merged.rows_merged) == (5, 3)
    scores = dict(pl.scan_delta(latest.uri).select("job_id", "fit_score").collect().iter_rows())
    assert (scores["1"], scores["2"], scores["9"]) == (90, 77, 10)
    assert len(scores) == 9
    # the view shows the same jobs before and after the merge
    assert view(lake, LATEST_VIEW) == expected


def test_an_analysis_stamped_long_before_the_merge_shows_from_the_next_one(tmp_path: Path) -> None:
    lake = written(tmp_path)
    maintain(lake, timedelta(0))
    # a machine whose clock is two hours behind the one whose rows the merge holds
    behind = SCRAPED + timedelta(hours=1) - LATE_COMMIT_MARGIN - timedelta(hours=1)
    write_rows(lake, [row("20", 33, analysed=behind)])
    assert "indeed:20" not in {k for k, *_ in view(lake, LATEST_VIEW)}
    assert "indeed:20" in {k for k, *_ in view(lake, HISTORY_VIEW)}
    maintain(lake, timedelta(0))
    assert "indeed:20" in {k for k, *_ in view(lake, LATEST_VIEW)}


def test_a_dropped_latest_table_is_made_again_from_the_whole_history(tmp_path: Path) -> None:
    lake = written(tmp_path)
    expected = view(lake, LATEST_VIEW)
    maintain(lake, timedelta(0))
    DeltaLatest(lake).drop()
    assert view(lake, LATEST_VIEW) == expected
    maintain(lake, timedelta(0))
    assert keys(pl.scan_delta(lake.latest_uri).collect()) == expected


def test_three_processes_appending_to_one_s3_table_lose_no_commit(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"delta-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=bucket)
    lake = Lake(f"s3://{bucket}/jobs", s3_endpoint_url=moto_url, region="us-east-1")
    script = textwrap.dedent(
        f"""
        import sys
        from storage.delta import DeltaHistory
        from storage.lake import Lake
        from tests.test_storage import row
        history = DeltaHistory(Lake({lake.url!r}, s3_endpoint_url={moto_url!r}, region="us-east-1"))
        for n in range(5):
            history.append([row(f"{{sys.argv[1]}}-{{n}}", 50)])
        """
    )
    write_rows(lake, [row("seed", 1)])
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(3)]
    assert [w.wait(timeout=180) for w in workers] == [0, 0, 0]
    options = lake.storage_options
    assert DeltaTable(lake.history_uri, storage_options=options).version() == 16
    frame = pl.scan_delta(lake.history_uri, storage_options=options).collect()
    assert (frame.height, frame["job_id"].n_unique()) == (16, 16)
    # and DuckDB reads the same table on S3, through httpfs and the delta extension from PyPI
    with reader(lake) as con:
        assert con.execute(f"SELECT count(DISTINCT job_id) FROM {HISTORY_VIEW}").fetchall() == [(16,)]


@pytest.mark.parametrize(
    ("imports", "configured", "expected"),
    [
        # storage.delta imports polars, which puts its defaults first; jemalloc takes the last of each option
        ("storage.delta", None, f"{POLARS_ALLOCATOR_DEFAULT},{ALLOCATOR_SETTINGS}"),
        ("polars, storage.delta", None, f"{POLARS_ALLOCATOR_DEFAULT},{ALLOCATOR_SETTINGS}"),
        # the user's setting wins
        ("storage.delta", "narenas:4", f"{POLARS_ALLOCATOR_DEFAULT},narenas:4"),
        ("polars, storage.delta", "narenas:4", f"{POLARS_ALLOCATOR_DEFAULT},narenas:4"),
    ],
)
def test_delta_rs_allocator_is_configured_before_deltalake_loads(
    imports: str, configured: str | None, expected: str
) -> None:
    # delta-rs's jemalloc reads its settings at its first allocation, after deltalake is imported
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_VARIABLE}
    if configured is not None:
        env[ALLOCATOR_VARIABLE] = configured
    script = f"import os, sys, {imports}; print('deltalake' in sys.modules, os.environ[{ALLOCATOR_VARIABLE!r}])"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", expected]
