"""A million enriched rows, generated (synthetic), and the three typical queries timed through the views.

The rows arrive as thousands of small batch files, as analyse writes them. The queries are
timed on those, then after a compaction with one night's new batches on top, each time
beside a bare ``read_parquet`` scan of the same files.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from storage.catalog import reader
from storage.compaction import compact, current_manifest, read_files, stamp_of
from storage.lake import PARTITION, ROW_SCHEMA, Lake, stamp, table_dir

SKILLS = ["python", "sql", "aws", "airflow", "dbt", "spark", "kafka", "go", "kubernetes", "terraform", "react"]
SENIORITY = ["intern", "junior", "mid", "senior", "staff", "manager", "unknown"]
VERDICTS = ["apply", "maybe", "skip"]
QUERIES = {
    "top skills": "SELECT skill, count(*) AS n FROM (SELECT unnest(skills) AS skill FROM {table}) "
    "GROUP BY skill ORDER BY n DESC LIMIT 15",
    "salary by seniority": "SELECT seniority, salary_currency, count(*) AS n, median(salary_max_yearly) AS m "
    "FROM {table} WHERE salary_max_yearly IS NOT NULL GROUP BY ALL ORDER BY m DESC",
    "new matches today": "SELECT fit_score, title, company, job_url FROM {table} WHERE verdict = 'apply' "
    "AND analysed_at >= current_date ORDER BY fit_score DESC LIMIT 50",
}
DAYS = 30
# re-analysed share of one night's new rows (a changed posting or a new prompt)
NIGHT_REANALYSED = 0.5


@dataclass(frozen=True)
class LakeTimings:
    """Median seconds per query: (through the view, bare scan of the files the view reads)."""

    batches: dict[str, tuple[float, float]]
    compacted: dict[str, tuple[float, float]]
    batch_files: int
    compaction_seconds: float
    night_rows: int
    night_files: int
    jobs: int


def _frame(rng: random.Random, keys: list[int], day: datetime, analysed: datetime) -> pl.DataFrame:
    n = len(keys)
    frame = pl.DataFrame(
        {
            "job_key": [f"indeed:{k}" for k in keys],
            "content_hash": [f"{k:064x}" for k in keys],
            "prompt_version": ["llm-v1"] * n,
            "model": ["gpt-4.1-mini"] * n,
            "site": [rng.choice(["indeed", "linkedin", "glassdoor"]) for _ in range(n)],
            "title": [rng.choice(["Data Engineer", "Analytics Engineer", "Backend Engineer"]) for _ in range(n)],
            "company": [f"Company {k % 5000}" for k in keys],
            "job_url": [f"https://jobs.example/{k}" for k in keys],
            "date_posted": [day.date() - timedelta(days=rng.randrange(14)) for _ in range(n)],
            "scraped_at": [day] * n,
            "analysed_at": [analysed + timedelta(milliseconds=i) for i in range(n)],
            "fit_score": [rng.randrange(101) for _ in range(n)],
            "verdict": [rng.choice(VERDICTS) for _ in range(n)],
            "seniority": [rng.choice(SENIORITY) for _ in range(n)],
            "skills": [rng.sample(SKILLS, rng.randrange(1, 6)) for _ in range(n)],
            "salary_max_yearly": [rng.choice([None, 60_000.0 + rng.randrange(80_000)]) for _ in range(n)],
            "salary_currency": [rng.choice(["USD", "EUR"]) for _ in range(n)],
        }
    )
    missing = {name: pl.lit(None, dtype=dtype) for name, dtype in ROW_SCHEMA.items() if name not in frame.columns}
    return frame.with_columns(**missing).select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)  # type: ignore[arg-type]


def _write_batch(lake: Path, frame: pl.DataFrame, day: datetime, written: datetime) -> None:
    folder = table_dir(lake) / f"{PARTITION}={day.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / f"{stamp(written)}-{uuid.uuid4().hex[:12]}.parquet", compression="zstd")


def generate(lake: Path, rows: int, files: int, seed: int = 6) -> int:
    """``rows`` synthetic rows in ``files`` batch files over 30 days, some jobs analysed more than once.

    Returns the number of distinct jobs. Files are named as analyse names them, by the
    moment they were written, oldest first, so that a compaction merges them all.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    per_file = rows // files
    distinct = int(rows * 0.9)
    seen: set[int] = set()
    for n in range(files):
        day = today - timedelta(days=DAYS - 1 - (n * DAYS // files))
        keys = [rng.randrange(distinct) for _ in range(per_file)]
        seen.update(keys)
        analysed = day + timedelta(minutes=n % 600)
        _write_batch(lake, _frame(rng, keys, day, analysed), day, written=analysed - timedelta(days=1))
    return len(seen)


def add_night(lake: Path, rows: int, files: int, key_space: int, seed: int = 7) -> None:
    """One night's batches on top: new jobs, and jobs analysed again (``NIGHT_REANALYSED`` of them)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    per_file = rows // files
    for n in range(files):
        keys = [
            rng.randrange(key_space) if rng.random() < NIGHT_REANALYSED else 10_000_000 + n * per_file + i
            for i in range(per_file)
        ]
        _write_batch(lake, _frame(rng, keys, day, now), day, written=now)


def _time(con: duckdb.DuckDBPyConnection, query: str, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        con.execute(query).fetchall()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def time_queries(lake: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds of each query through ``enriched_jobs`` and on a bare scan of the files it reads.

    The bare scan reads the compacted latest files (if any) and the batch files newer than the
    compaction, with no deduplication: what the view costs on top is its overhead.
    """
    manifest = current_manifest(Lake(lake))
    batches = Lake(lake).batch_files()
    if manifest is not None:
        batches = [p for p in batches if stamp_of(p) > manifest.watermark]
    files = [*(manifest.latest if manifest else ()), *batches]
    bare = read_files(files)
    timings: dict[str, tuple[float, float]] = {}
    with reader(lake) as con:
        for name, query in QUERIES.items():
            # alternate, so that both see the same machine
            view = _time(con, query.format(table="enriched_jobs"), runs)
            scan = _time(con, query.format(table=bare), runs)
            timings[name] = (view, scan)
    return timings


def measure(lake: Path, rows: int, files: int, *, night_rows: int, night_files: int, runs: int) -> LakeTimings:
    jobs = generate(lake, rows, files)
    before = time_queries(lake, runs)
    started = time.perf_counter()
    compact(lake, margin=timedelta(0), retain=timedelta(0))
    seconds = time.perf_counter() - started
    add_night(lake, night_rows, night_files, key_space=int(rows * 0.9))
    after = time_queries(lake, runs)
    return LakeTimings(before, after, files, seconds, night_rows, night_files, jobs)
