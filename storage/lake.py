"""The append-only Parquet lake: one file per batch and partition, written atomically."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from jobping.analysis import AnalysisResult
from jobping.contract import Envelope

logger = logging.getLogger(__name__)

TABLE = "enriched_jobs"
PARTITION = "scrape_date"

ROW_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "job_key": pl.String,
    "content_hash": pl.String,
    "prompt_version": pl.String,
    "model": pl.String,
    "site": pl.String,
    "job_id": pl.String,
    "job_url": pl.String,
    "job_url_direct": pl.String,
    "title": pl.String,
    "company": pl.String,
    "location": pl.String,
    "date_posted": pl.Date,
    "job_type": pl.String,
    "job_level": pl.String,
    "is_remote": pl.Boolean,
    "interval": pl.String,
    "min_amount": pl.Float64,
    "max_amount": pl.Float64,
    "currency": pl.String,
    "company_industry": pl.String,
    "company_url": pl.String,
    "description": pl.String,
    "description_truncated": pl.Boolean,
    "description_cut": pl.Boolean,
    "search_term": pl.String,
    "search_location": pl.String,
    "scraped_at": pl.Datetime("us", "UTC"),
    "analysed_at": pl.Datetime("us", "UTC"),
    "fit_score": pl.Int16,
    "verdict": pl.String,
    "seniority": pl.String,
    "remote_policy": pl.String,
    "skills": pl.List(pl.String),
    "salary_min_yearly": pl.Float64,
    "salary_max_yearly": pl.Float64,
    "salary_currency": pl.String,
    "red_flags": pl.List(pl.String),
    "summary": pl.String,
    "prompt_tokens": pl.Int32,
    "completion_tokens": pl.Int32,
    "cost_usd": pl.Float64,
    "message_id": pl.String,
}


@dataclass(frozen=True)
class StoredVersion:
    job_key: str
    content_hash: str
    prompt_version: str


class StoredIndex:
    """The analyses already in the lake.

    A plain object rather than a set, so that Prefect does not walk every element when the
    index is passed to a task.
    """

    def __init__(self, versions: Iterable[StoredVersion] = ()) -> None:
        self._versions = set(versions)

    def __contains__(self, version: object) -> bool:
        return version in self._versions

    def __iter__(self) -> Iterator[StoredVersion]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def add_all(self, versions: Iterable[StoredVersion]) -> None:
        self._versions.update(versions)


def table_dir(lake: Path) -> Path:
    return lake / TABLE


def lake_glob(lake: Path) -> str:
    return str(table_dir(lake) / f"{PARTITION}=*" / "*.parquet")


def has_files(lake: Path) -> bool:
    return any(table_dir(lake).glob(f"{PARTITION}=*/*.parquet"))


def to_row(envelope: Envelope, result: AnalysisResult, analysed_at: datetime, message_id: str) -> dict[str, object]:
    posting, analysis = envelope.posting, result.analysis
    return {
        "job_key": envelope.job_key,
        "content_hash": envelope.content_hash,
        "prompt_version": result.prompt_version,
        "model": result.model,
        "site": posting.site,
        "job_id": posting.id,
        "job_url": posting.job_url,
        "job_url_direct": posting.job_url_direct,
        "title": posting.title,
        "company": posting.company,
        "location": posting.location,
        "date_posted": posting.date_posted,
        "job_type": posting.job_type,
        "job_level": posting.job_level,
        "is_remote": posting.is_remote,
        "interval": posting.interval,
        "min_amount": posting.min_amount,
        "max_amount": posting.max_amount,
        "currency": posting.currency,
        "company_industry": posting.company_industry,
        "company_url": posting.company_url,
        "description": posting.description,
        "description_truncated": envelope.description_truncated,
        "description_cut": result.description_cut,
        "search_term": envelope.search.term,
        "search_location": envelope.search.location,
        "scraped_at": envelope.scraped_at,
        "analysed_at": analysed_at,
        "fit_score": analysis.fit_score,
        "verdict": analysis.verdict,
        "seniority": analysis.seniority,
        "remote_policy": analysis.remote_policy,
        "skills": analysis.skills,
        "salary_min_yearly": analysis.salary_min_yearly,
        "salary_max_yearly": analysis.salary_max_yearly,
        "salary_currency": analysis.salary_currency,
        "red_flags": analysis.red_flags,
        "summary": analysis.summary,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "message_id": message_id,
    }


def write_rows(lake: Path, rows: Sequence[dict[str, object]]) -> list[Path]:
    """Write rows as one new Parquet file per scrape date: temp file, fsync, then rename.

    A reader never sees a half-written file, and a crash leaves at most a stray temp file.
    """
    if not rows:
        return []
    frame = pl.DataFrame(rows, schema=ROW_SCHEMA)
    frame = frame.with_columns(pl.col("scraped_at").dt.date().cast(pl.String).alias(PARTITION))
    batch_id = f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    written: list[Path] = []
    for (day,), part in frame.group_by(PARTITION, maintain_order=True):
        folder = table_dir(lake) / f"{PARTITION}={day}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{batch_id}.parquet"
        temp = folder / f".{batch_id}.parquet.tmp"
        try:
            part.drop(PARTITION).write_parquet(temp, compression="zstd", statistics=True)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        written.append(final)
    return written


def stored_versions(lake: Path) -> StoredIndex:
    """Every (job_key, content_hash, prompt_version) already in the lake."""
    if not has_files(lake):
        return StoredIndex()
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT job_key, content_hash, prompt_version FROM read_parquet(?, union_by_name = true)",
            [lake_glob(lake)],
        ).fetchall()
    return StoredIndex(StoredVersion(*row) for row in rows)
