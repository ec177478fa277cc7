"""Compaction: the views show the same jobs before and after, while writers and readers run."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.catalog import HISTORY_VIEW, LATEST_VIEW, RECENT_VIEW, catalog_generation, reader, refresh_catalog
from storage.compaction import COMPACTED, CompactionBusyError, compact, compaction_lock, current_manifest
from storage.lake import Lake, write_rows
from tests.test_storage import row

DAY = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NO_MARGIN = timedelta(0)


def latest(lake: Path) -> list[tuple[str, int, str]]:
    with reader(lake) as con:
        return sorted(
            (k, s, str(d))
            for k, s, d in con.execute(f"SELECT job_key, fit_score, scrape_date FROM {LATEST_VIEW}").fetchall()
        )


def history_rows(lake: Path) -> int:
    with reader(lake) as con:
        return int(con.execute(f"SELECT count(*) FROM {HISTORY_VIEW}").fetchall()[0][0])


def write_history(
    lake: Path, rng: random.Random, batches: int, jobs: int, start: datetime
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


def test_compaction_shows_the_same_jobs_keeps_every_row_and_leaves_few_files(tmp_path: Path) -> None:
    rng = random.Random(1)
    expected = write_history(tmp_path, rng, batches=120, jobs=60, start=DAY)
    before_history = history_rows(tmp_path)
    files = len(list(tmp_path.rglob("*.parquet")))
    assert latest(tmp_path) == as_view(expected)

    report = compact(tmp_path, margin=NO_MARGIN, retain=timedelta(0))

    assert report.generation == 1
    assert report.batches_merged == files
    assert latest(tmp_path) == as_view(expected)
    assert history_rows(tmp_path) == before_history
    manifest = current_manifest(Lake(tmp_path))
    assert manifest is not None
    assert manifest.rows_latest == len(expected)
    assert manifest.rows_latest + manifest.rows_superseded == before_history
    # one latest file per scrape date, and the merged batches are gone
    assert len(manifest.latest) == 5
    batches = [p for p in (tmp_path / "enriched_jobs").rglob("*.parquet") if "placeholder" not in p.name]
    assert batches == []


def test_new_batches_beat_compacted_rows_in_other_partitions_and_the_next_run_merges_them(tmp_path: Path) -> None:
    rng = random.Random(2)
    expected = write_history(tmp_path, rng, batches=40, jobs=30, start=DAY)
    compact(tmp_path, margin=NO_MARGIN)
    first = current_manifest(Lake(tmp_path))
    assert first is not None

    # job 7 analysed again, scraped on a new date: its compacted row must disappear from the view
    later = DAY + timedelta(days=9)
    write_rows(tmp_path, [row("7", 99, scraped=later, analysed=later)])
    expected["indeed:7"] = (99, later.date().isoformat())
    assert latest(tmp_path) == as_view(expected)
    with reader(tmp_path) as con:
        assert con.execute(f"SELECT count(*) FROM {RECENT_VIEW}").fetchall() == [(1,)]

    report = compact(tmp_path, margin=NO_MARGIN)
    assert report.generation == 2
    assert report.batches_merged == 1
    assert report.partitions_rewritten == 2  # the new date, and the one that held job 7
    assert latest(tmp_path) == as_view(expected)
    second = current_manifest(Lake(tmp_path))
    assert second is not None
    # untouched partitions keep their files
    assert len(set(first.latest) & set(second.latest)) == len(first.latest) - 1
    # the counts carried from one generation to the next match the files
    assert second.rows_latest == len(expected)
    assert second.rows_latest + second.rows_superseded == history_rows(tmp_path)


def test_batches_younger_than_the_margin_wait_for_the_next_run(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 10)])
    report = compact(tmp_path, margin=timedelta(minutes=10))
    assert report.generation is None
    assert report.batches_left == 1
    assert latest(tmp_path) == [("indeed:1", 10, "2026-11-26")]


def test_replaced_files_stay_for_the_retention_and_the_catalogs_generation_stays_longer(tmp_path: Path) -> None:
    lake_dir, catalog = tmp_path / "lake", tmp_path / "jobping.duckdb"
    write_rows(lake_dir, [row("1", 10)])
    compact(lake_dir, margin=NO_MARGIN)
    refresh_catalog(catalog, lake_dir)
    assert catalog_generation(catalog) == 1
    gen1 = current_manifest(Lake(lake_dir))
    assert gen1 is not None

    write_rows(lake_dir, [row("1", 20, analysed=datetime.now(UTC))])
    compact(lake_dir, margin=NO_MARGIN, keep_generation=1)
    assert all(Path(p).exists() for p in gen1.files)  # replaced, but within the retention

    hours_later = datetime.now(UTC) + timedelta(hours=2)
    compact(lake_dir, margin=NO_MARGIN, keep_generation=1, now=hours_later)
    assert all(Path(p).exists() for p in gen1.files)  # the catalog still names generation 1

    compact(lake_dir, margin=NO_MARGIN, keep_generation=None, now=hours_later)
    assert not any(Path(p).exists() for p in gen1.files)
    assert latest(lake_dir) == [("indeed:1", 20, "2026-11-26")]


def test_a_second_compaction_at_the_same_time_is_refused(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("1", 10)])
    with compaction_lock(Lake(tmp_path)), pytest.raises(CompactionBusyError):
        compact(tmp_path, margin=NO_MARGIN)
    assert not list((tmp_path / COMPACTED).glob("manifest-*"))


def test_readers_see_every_job_once_while_writers_and_compactions_run(tmp_path: Path) -> None:
    """Writers add batches, a compactor merges them every few hundred ms, readers count."""
    stop = threading.Event()
    written: list[int] = [0]
    problems: list[str] = []
    reads = [0]

    def write() -> None:
        job = 0
        while not stop.is_set():
            rows = [row(str(job + i), 50, analysed=datetime.now(UTC)) for i in range(5)]
            write_rows(tmp_path, rows)
            job += 5
            written[0] = job
            # every tenth batch analyses earlier jobs again
            if job % 50 == 0:
                write_rows(tmp_path, [row(str(j), 70, analysed=datetime.now(UTC)) for j in range(0, job, 7)])
            time.sleep(0.01)

    def compact_often() -> None:
        while not stop.is_set():
            try:
                compact(tmp_path, margin=timedelta(milliseconds=200), retain=timedelta(seconds=30))
            except Exception as exc:
                problems.append(f"compaction: {exc!r}")
            time.sleep(0.2)

    def read() -> None:
        while not stop.is_set():
            floor = written[0]
            if floor == 0:
                time.sleep(0.01)
                continue
            try:
                with reader(tmp_path) as con:
                    total, distinct = con.execute(
                        f"SELECT count(*), count(DISTINCT job_key) FROM {LATEST_VIEW}"
                    ).fetchall()[0]
            except Exception as exc:
                problems.append(f"reader: {exc!r}")
                continue
            reads[0] += 1
            if total != distinct:
                problems.append(f"a job shown twice: {total} rows for {distinct} jobs")
            if distinct < floor:
                problems.append(f"jobs missing: {distinct} shown, {floor} written before the query")

    threads = [threading.Thread(target=f) for f in (write, compact_often, read, read)]
    for thread in threads:
        thread.start()
    time.sleep(8)
    stop.set()
    for thread in threads:
        thread.join()

    generation = current_manifest(Lake(tmp_path))
    assert generation is not None
    assert generation.generation >= 3, "the compactor should have run several times"
    assert reads[0] >= 20
    assert problems == []
    assert len(latest(tmp_path)) == written[0]


def test_a_crafted_manifest_runs_no_sql_and_is_ignored(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_rows(lake, [row("1", 40)])
    compact(lake, margin=NO_MARGIN)
    good = current_manifest(Lake(lake))
    assert good is not None
    target = tmp_path / "written-by-the-manifest.csv"
    evil = json.loads(good.to_json())
    evil["generation"] = good.generation + 1
    evil["watermark"] = f"x' UNION ALL SELECT 1); COPY (SELECT 1) TO '{target}'; --"
    (lake / COMPACTED / f"manifest-{good.generation + 1:08d}.json").write_text(json.dumps(evil))
    outside = json.loads(good.to_json()) | {"generation": good.generation + 2, "latest": ["/etc/passwd.parquet"]}
    (lake / COMPACTED / f"manifest-{good.generation + 2:08d}.json").write_text(json.dumps(outside))

    assert current_manifest(Lake(lake)) == good
    with reader(lake) as con:
        assert con.execute(f"SELECT count(*) FROM {LATEST_VIEW}").fetchall() == [(1,)]
    assert refresh_catalog(tmp_path / "jobping.duckdb", lake)
    assert not target.exists()
