"""A million enriched rows, generated (synthetic), and the three typical queries timed through the views."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from storage.catalog import reader
from storage.lake import PARTITION, ROW_SCHEMA, lake_glob, table_dir

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
BARE = "read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"


def generate(lake: Path, rows: int, files: int, seed: int = 6) -> None:
    """``rows`` synthetic rows in ``files`` files over 30 days; some jobs analysed more than once."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    today = datetime.now(UTC)
    per_file = rows // files
    distinct = int(rows * 0.9)
    for n in range(files):
        day = (today - timedelta(days=n % 30)).date()
        keys = [rng.randrange(distinct) for _ in range(per_file)]
        frame = pl.DataFrame(
            {
                "job_key": [f"indeed:{k}" for k in keys],
                "content_hash": [f"{k:064x}" for k in keys],
                "prompt_version": ["llm-v1"] * per_file,
                "model": ["gpt-4.1-mini"] * per_file,
                "site": [rng.choice(["indeed", "linkedin", "glassdoor"]) for _ in range(per_file)],
                "title": [
                    rng.choice(["Data Engineer", "Analytics Engineer", "Backend Engineer"]) for _ in range(per_file)
                ],
                "company": [f"Company {k % 5000}" for k in keys],
                "job_url": [f"https://jobs.example/{k}" for k in keys],
                "date_posted": [day - timedelta(days=rng.randrange(14)) for _ in range(per_file)],
                "scraped_at": [datetime.combine(day, datetime.min.time(), UTC)] * per_file,
                "analysed_at": [
                    datetime.combine(day, datetime.min.time(), UTC) + timedelta(seconds=i) for i in range(per_file)
                ],
                "fit_score": [rng.randrange(101) for _ in range(per_file)],
                "verdict": [rng.choice(VERDICTS) for _ in range(per_file)],
                "seniority": [rng.choice(SENIORITY) for _ in range(per_file)],
                "skills": [rng.sample(SKILLS, rng.randrange(1, 6)) for _ in range(per_file)],
                "salary_max_yearly": [rng.choice([None, 60_000.0 + rng.randrange(80_000)]) for _ in range(per_file)],
                "salary_currency": [rng.choice(["USD", "EUR"]) for _ in range(per_file)],
            }
        )
        missing = {name: pl.lit(None, dtype=dtype) for name, dtype in ROW_SCHEMA.items() if name not in frame.columns}
        frame = frame.with_columns(**missing).select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)  # type: ignore[arg-type]
        folder = table_dir(lake) / f"{PARTITION}={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / f"bench-{n:05d}.parquet", compression="zstd")


def time_queries(lake: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds of each query through the views and on a bare read_parquet scan."""
    timings: dict[str, tuple[float, float]] = {}
    bare = BARE.format(glob=lake_glob(lake))
    with reader(lake) as con:
        for name, query in QUERIES.items():
            medians = []
            for table in ("enriched_jobs", bare):
                seconds = []
                for _ in range(runs):
                    started = time.perf_counter()
                    con.execute(query.format(table=table)).fetchall()
                    seconds.append(time.perf_counter() - started)
                medians.append(statistics.median(seconds))
            timings[name] = (medians[0], medians[1])
    return timings
