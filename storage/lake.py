"""The append-only Parquet lake: one file per batch and partition, written atomically.

The lake is a local folder or ``s3://bucket/prefix``; :class:`Lake` hides which. Batches land
in ``enriched_jobs/scrape_date=YYYY-MM-DD/<stamp>-<id>.parquet``, where the stamp is the UTC
moment the file became visible, so file names sort in the order they were written. The
compaction (storage/compaction.py) merges them into ``enriched_jobs_compacted/``.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypedDict

import duckdb
import fsspec
import polars as pl

from jobping.analysis import AnalysisResult
from jobping.contract import Envelope

if TYPE_CHECKING:
    from jobping.settings import Settings

logger = logging.getLogger(__name__)

TABLE = "enriched_jobs"
# where files the readers cannot read are moved, so that one bad file stops no run
QUARANTINE = "quarantine"
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
    "truncated_fields": pl.List(pl.String),
    "cleared_fields": pl.List(pl.String),
    # the rest of JobSpy's JobPost, under its own names (its skills are posting_skills)
    "salary_source": pl.String,
    "job_function": pl.String,
    "listing_type": pl.String,
    "emails": pl.String,
    "work_from_home_type": pl.String,
    "experience_range": pl.String,
    "vacancy_count": pl.Int64,
    "posting_skills": pl.String,
    "company_logo": pl.String,
    "company_url_direct": pl.String,
    "company_addresses": pl.String,
    "company_num_employees": pl.String,
    "company_revenue": pl.String,
    "company_description": pl.String,
    "company_rating": pl.Float64,
    "company_reviews_count": pl.Int64,
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


class StoredRow(TypedDict):
    """One row of ``enriched_jobs``, key for key the columns of ROW_SCHEMA (a test holds them equal)."""

    job_key: str
    content_hash: str
    prompt_version: str
    model: str
    site: str | None
    job_id: str | None
    job_url: str
    job_url_direct: str | None
    title: str
    company: str | None
    location: str | None
    date_posted: date | None
    job_type: str | None
    job_level: str | None
    is_remote: bool | None
    interval: str | None
    min_amount: float | None
    max_amount: float | None
    currency: str | None
    company_industry: str | None
    company_url: str | None
    description: str | None
    description_truncated: bool
    description_cut: bool
    truncated_fields: list[str]
    cleared_fields: list[str]
    salary_source: str | None
    job_function: str | None
    listing_type: str | None
    emails: str | None
    work_from_home_type: str | None
    experience_range: str | None
    vacancy_count: int | None
    posting_skills: str | None
    company_logo: str | None
    company_url_direct: str | None
    company_addresses: str | None
    company_num_employees: str | None
    company_revenue: str | None
    company_description: str | None
    company_rating: float | None
    company_reviews_count: int | None
    search_term: str | None
    search_location: str | None
    scraped_at: datetime
    analysed_at: datetime
    fit_score: int
    verdict: str
    seniority: str
    remote_policy: str
    skills: list[str]
    salary_min_yearly: float | None
    salary_max_yearly: float | None
    salary_currency: str | None
    red_flags: list[str]
    summary: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    message_id: str


# JobSpy columns stored under their own name, beyond those to_row names one by one
JOBSPY_EXTRA_COLUMNS = (
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
)
DUCKDB_TYPES: dict[pl.DataType | type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Datetime("us", "UTC"): "TIMESTAMP WITH TIME ZONE",
    pl.List(pl.String): "VARCHAR[]",
}


def with_every_column(source: str) -> str:
    """``source`` (a read_parquet) as a subquery with every column of ROW_SCHEMA, in its order.

    A file written before a column existed reads that column as NULL, even when no file
    of ``source`` has it: ``UNION ALL BY NAME`` against a typed empty row fills it in.
    """
    typed = ", ".join(f'CAST(NULL AS {DUCKDB_TYPES[dtype]}) AS "{name}"' for name, dtype in ROW_SCHEMA.items())
    return f"(SELECT {typed} WHERE false UNION ALL BY NAME SELECT * FROM {source})"  # noqa: S608


STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
# the name of a batch file: a fixed-width UTC stamp, so that names sort as they were written
STAMP_WIDTH = len("20260101T000000000000Z")


def stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(STAMP_FORMAT)


class Lake:
    """Where the enriched jobs live, and the filesystem that reaches them.

    A local folder (the embedded default) or ``s3://bucket/prefix``. For S3 the credentials
    come from the usual AWS chain (environment, profile, instance role); ``s3_endpoint_url``
    points at an S3-compatible store instead of AWS.
    """

    def __init__(self, location: str | Path, *, s3_endpoint_url: str | None = None, region: str | None = None) -> None:
        text = str(location)
        self.remote = text.startswith("s3://")
        if self.remote:
            # s3fs is imported only for a lake on S3: it costs 0.25 s of every start-up
            import s3fs  # noqa: PLC0415

            client_kwargs: dict[str, str] = {}
            if s3_endpoint_url:
                client_kwargs["endpoint_url"] = s3_endpoint_url
            if region:
                client_kwargs["region_name"] = region
            # no listing cache: other machines add files at any moment
            self.fs: fsspec.AbstractFileSystem = s3fs.S3FileSystem(
                client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True
            )
            self.url = text.rstrip("/")
        else:
            self.fs = fsspec.filesystem("file")
            self.url = str(Path(text).expanduser().resolve())

    @classmethod
    def of(cls, lake: Lake | Path | str) -> Lake:
        return lake if isinstance(lake, Lake) else cls(lake)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        return cls(settings.lake_location, s3_endpoint_url=settings.lake.s3_endpoint_url, region=settings.sqs.region)

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def join(self, *parts: str) -> str:
        return "/".join([self.url, *parts])

    def glob(self, pattern: str) -> list[str]:
        """Full paths (with s3:// for a remote lake) matching a pattern under the lake, sorted."""
        found = self.fs.glob(self.join(pattern))
        prefix = "s3://" if self.remote else ""
        return sorted(prefix + str(path) if not str(path).startswith(prefix) else str(path) for path in found)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Make ``path`` hold ``data`` at once: readers see the old state or the whole new file.

        Locally a temp file, fsync and rename; on S3 one PUT, which is atomic.
        """
        if self.remote:
            self.fs.pipe_file(path, data)
            return
        _replace_atomically(Path(path), lambda handle: handle.write(data))

    def upload(self, local: Path, path: str) -> None:
        """Move a finished local file into the lake, atomically."""
        if self.remote:
            self.fs.put_file(str(local), path)
            return
        with open(local, "rb") as source:
            _replace_atomically(Path(path), lambda handle: shutil.copyfileobj(source, handle, 1 << 20))

    def delete(self, paths: Iterable[str]) -> int:
        gone = 0
        for path in paths:
            try:
                self.fs.rm_file(path)
                gone += 1
            except FileNotFoundError:
                continue
        return gone

    def modified(self, path: str) -> datetime:
        moment: datetime = self.fs.modified(path)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def connect(self, database: str = ":memory:", **kwargs: Any) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection able to read this lake (S3 through the same fsspec filesystem)."""
        con = duckdb.connect(database, **kwargs)
        # a database file opened twice in one process shares one instance, and its filesystems
        if self.remote and "s3" not in con.list_filesystems():
            con.register_filesystem(self.fs)
        return con

    def quarantine(self, path: str, reason: str) -> str:
        """Move an unreadable file to ``quarantine/`` beside the tables, with the reason beside it."""
        relative = path.removeprefix(self.url + "/")
        target = self.join(QUARANTINE, relative)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(path, target)
        self.write_bytes(target + ".reason.txt", reason.encode("utf-8"))
        logger.warning("moved the unreadable %s to %s: %s", path, target, reason)
        return target

    def quarantined(self) -> list[str]:
        """The files moved to quarantine so far."""
        return [p for p in self.glob(f"{QUARANTINE}/**") if p.endswith(".parquet")]

    @property
    def batches_glob(self) -> str:
        return self.join(TABLE, f"{PARTITION}=*", "*.parquet")

    def batch_files(self) -> list[str]:
        return self.glob(f"{TABLE}/{PARTITION}=*/*.parquet")


def _replace_atomically(final: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write a temp file beside ``final``, fsync it, then rename it over ``final``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def table_dir(lake: Path) -> Path:
    return lake / TABLE


def to_row(envelope: Envelope, result: AnalysisResult, analysed_at: datetime, message_id: str) -> StoredRow:
    posting, analysis = envelope.posting, result.analysis
    return StoredRow(
        job_key=envelope.job_key,
        content_hash=envelope.content_hash,
        prompt_version=result.prompt_version,
        model=result.model,
        site=posting.site,
        job_id=posting.id,
        job_url=posting.job_url,
        job_url_direct=posting.job_url_direct,
        title=posting.title,
        company=posting.company,
        location=posting.location,
        date_posted=posting.date_posted,
        job_type=posting.job_type,
        job_level=posting.job_level,
        is_remote=posting.is_remote,
        interval=posting.interval,
        min_amount=posting.min_amount,
        max_amount=posting.max_amount,
        currency=posting.currency,
        company_industry=posting.company_industry,
        company_url=posting.company_url,
        description=posting.description,
        description_truncated=envelope.description_truncated,
        description_cut=result.description_cut,
        truncated_fields=envelope.truncated_fields,
        cleared_fields=envelope.cleared_fields,
        salary_source=posting.salary_source,
        job_function=posting.job_function,
        listing_type=posting.listing_type,
        emails=posting.emails,
        work_from_home_type=posting.work_from_home_type,
        experience_range=posting.experience_range,
        vacancy_count=posting.vacancy_count,
        company_logo=posting.company_logo,
        company_url_direct=posting.company_url_direct,
        company_addresses=posting.company_addresses,
        company_num_employees=posting.company_num_employees,
        company_revenue=posting.company_revenue,
        company_description=posting.company_description,
        company_rating=posting.company_rating,
        company_reviews_count=posting.company_reviews_count,
        posting_skills=posting.skills,
        search_term=envelope.search.term,
        search_location=envelope.search.location,
        scraped_at=envelope.scraped_at,
        analysed_at=analysed_at,
        fit_score=analysis.fit_score,
        verdict=analysis.verdict,
        seniority=analysis.seniority,
        remote_policy=analysis.remote_policy,
        skills=analysis.skills,
        salary_min_yearly=analysis.salary_min_yearly,
        salary_max_yearly=analysis.salary_max_yearly,
        salary_currency=analysis.salary_currency,
        red_flags=analysis.red_flags,
        summary=analysis.summary,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=result.cost_usd,
        message_id=message_id,
    )


def with_partition(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its partition column: the date it was scraped, as the folder names write it."""
    return frame.with_columns(pl.col("scraped_at").dt.date().cast(pl.String).alias(PARTITION))


def write_rows(lake: Lake | Path | str, rows: Sequence[StoredRow]) -> list[str]:
    """Write rows as one new Parquet file per scrape date, each appearing whole or not at all.

    The file is named by the moment it is published (see :func:`stamp`), which the compaction
    relies on: a name older than its watermark is a file it has merged.
    """
    if not rows:
        return []
    lake = Lake.of(lake)
    frame = with_partition(pl.DataFrame(rows, schema=ROW_SCHEMA))
    written: list[str] = []
    for (day,), part in frame.group_by(PARTITION, maintain_order=True):
        buffer = io.BytesIO()
        part.drop(PARTITION).write_parquet(buffer, compression="zstd", statistics=True)
        path = lake.join(TABLE, f"{PARTITION}={day}", f"{stamp()}-{uuid.uuid4().hex[:12]}.parquet")
        lake.write_bytes(path, buffer.getvalue())
        written.append(path)
    return written
