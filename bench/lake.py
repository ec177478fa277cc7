"""A million enriched rows, generated (synthetic), and the three typical queries timed through the views.

The rows arrive as two thousand small append commits, as analyse writes them. The queries are
timed on those, then after the maintenance (merge into the latest table, optimize, checkpoint,
vacuum) with one night's new commits on top, each time beside a bare ``delta_scan`` of the
same snapshot with no deduplication.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from storage.delta import DeltaHistory, DeltaLatest, LakeSnapshot
from storage.lake import Lake
from storage.maintenance import maintain
from storage.reader import reader
from storage.rows import ROW_SCHEMA
from storage.views import scan, since_merge, view_statements

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
class StateTimings:
    """Median seconds per query, (through the view, bare scan of the files the view reads), in one state of the lake."""

    # through a reader's views (`jobping sql`), on the snapshot pinned when it opened
    reader: dict[str, tuple[float, float]]
    # through the catalog file's views (a DuckDB shell), on each table's newest snapshot
    catalog: dict[str, tuple[float, float]]
    # opening a reader: the probe of every file, and the rows since the last merge deduplicated once
    opening: float

    @property
    def worst(self) -> float:
        return max(view / bare for view, bare in self.reader.values())


@dataclass(frozen=True)
class LakeTimings:
    batches: StateTimings
    maintained: StateTimings
    compacted: StateTimings
    batch_files: int
    compaction_seconds: float
    files_after: int
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
            "message_id": [f"m-{analysed.timestamp():.3f}-{i}" for i in range(n)],
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


def generate(lake: Lake, rows: int, files: int, seed: int = 6) -> int:
    """``rows`` synthetic rows in ``files`` append commits over 30 days, some jobs analysed more than once.

    Returns the number of distinct jobs.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    per_file = rows // files
    distinct = int(rows * 0.9)
    seen: set[int] = set()
    history = DeltaHistory(lake)
    history.ensure()
    start = today - timedelta(days=DAYS)
    for n in range(files):
        # the batches spread evenly over the 30 days before today, as nightly and hourly runs write them
        analysed = start + n * timedelta(days=DAYS) / files
        day = analysed.replace(hour=0, minute=0, second=0, microsecond=0)
        keys = [rng.randrange(distinct) for _ in range(per_file)]
        seen.update(keys)
        history.append(_frame(rng, keys, day, analysed=analysed))
    return len(seen)


def add_night(lake: Lake, rows: int, files: int, key_space: int, seed: int = 7) -> None:
    """One night's commits on top: new jobs, and jobs analysed again (``NIGHT_REANALYSED`` of them)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    per_file = rows // files
    for n in range(files):
        keys = [
            rng.randrange(key_space) if rng.random() < NIGHT_REANALYSED else 10_000_000 + n * per_file + i
            for i in range(per_file)
        ]
        DeltaHistory(lake).append(_frame(rng, keys, day, now))


def _time(con: duckdb.DuckDBPyConnection, query: str, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        con.execute(query).fetchall()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def time_queries(lake: Lake, runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds of each query through ``enriched_jobs`` and on a bare scan of the snapshot it reads.

    The bare scan reads what the view reads, with no deduplication: before the first maintenance
    the history; after it, the latest table and the history rows the view adds to it. Both read
    the versions the reader pinned when it opened.
    """
    with reader(lake) as con:
        return _beside(con, bare_scan(lake, LakeSnapshot.of(lake)), runs)


def _beside(con: duckdb.DuckDBPyConnection, bare: str, runs: int) -> dict[str, tuple[float, float]]:
    """Each query timed through ``enriched_jobs`` on ``con``, then on ``bare``."""
    return {
        name: (_time(con, query.format(table="enriched_jobs"), runs), _time(con, query.format(table=bare), runs))
        for name, query in QUERIES.items()
    }


def bare_scan(lake: Lake, snapshot: LakeSnapshot | None = None) -> str:
    """What ``enriched_jobs`` reads, not deduplicated: the history, or the latest table and the history since."""
    history = scan(lake.history_uri, snapshot.history_version if snapshot else None)
    merged = snapshot.merged if snapshot else DeltaLatest(lake).merged()
    if merged is None:
        return history
    latest = scan(lake.latest_uri, snapshot.latest_version if snapshot else None)
    # our own paths, versions and a timestamp
    return f"(SELECT * FROM {latest} UNION ALL BY NAME SELECT * FROM {history} WHERE {since_merge(merged)})"  # noqa: S608


def time_catalog_queries(lake: Lake, runs: int) -> dict[str, tuple[float, float]]:
    """The same, through the catalog file's views (what a DuckDB shell reads): live, unpinned, a join."""
    with lake.connect() as con:
        con.execute("SET parquet_metadata_cache = true")
        for statement in view_statements(lake, DeltaLatest(lake).merged()):
            con.execute(statement)
        return _beside(con, bare_scan(lake), runs)


def time_state(lake: Lake, runs: int) -> StateTimings:
    openings = []
    for _ in range(runs):
        started = time.perf_counter()
        reader(lake).close()
        openings.append(time.perf_counter() - started)
    return StateTimings(time_queries(lake, runs), time_catalog_queries(lake, runs), statistics.median(openings))


def measure(path: Path, rows: int, files: int, *, night_rows: int, night_files: int, runs: int) -> LakeTimings:
    lake = Lake(path)
    jobs = generate(lake, rows, files)
    before = time_state(lake, runs)
    started = time.perf_counter()
    maintain(lake, retention=timedelta(0))
    seconds = time.perf_counter() - started
    files_after = len(DeltaHistory(lake).table().file_uris()) + len(DeltaLatest(lake).table().file_uris())
    maintained = time_state(lake, runs)
    add_night(lake, night_rows, night_files, key_space=int(rows * 0.9))
    after = time_state(lake, runs)
    return LakeTimings(before, maintained, after, files, seconds, files_after, night_rows, night_files, jobs)
