"""JobSpy rows to envelopes: one per posting, with a stable job_key and a content hash."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from pydantic import ValidationError

from jobping.contract import Envelope, JobPosting, SearchSpec, content_hash, job_key
from tasks.jobspy.source import JOBSPY_SCHEMA

logger = logging.getLogger(__name__)


@dataclass
class Normalised:
    envelopes: list[Envelope] = field(default_factory=list)
    invalid: int = 0
    duplicates: int = 0
    already_stored: int = 0
    invalid_reasons: list[str] = field(default_factory=list)


def with_identity(frame: pl.DataFrame) -> pl.DataFrame:
    """Add job_key and content_hash columns, computed from the validated posting."""
    keys: list[str | None] = []
    hashes: list[str | None] = []
    for row in frame.select(list(JOBSPY_SCHEMA)).iter_rows(named=True):
        try:
            posting = JobPosting.model_validate(row)
        except ValidationError:
            keys.append(None)
            hashes.append(None)
            continue
        keys.append(job_key(posting))
        hashes.append(content_hash(posting))
    return frame.with_columns(
        pl.Series("job_key", keys, dtype=pl.String), pl.Series("content_hash", hashes, dtype=pl.String)
    )


def normalise(frame: pl.DataFrame, scraped_at: datetime, stored: Collection[tuple[str, str]] = ()) -> Normalised:
    """Validate, key and deduplicate postings; drop those stored with the same content already."""
    result = Normalised()
    keyed = with_identity(frame)
    invalid = keyed.filter(pl.col("job_key").is_null())
    result.invalid = invalid.height
    for row in invalid.head(5).iter_rows(named=True):
        result.invalid_reasons.append(
            f"{row.get('site')}: {str(row.get('job_url'))[:100]} has no valid title or job_url"
        )
    valid = keyed.filter(pl.col("job_key").is_not_null())
    unique = valid.unique(subset="job_key", keep="first", maintain_order=True)
    result.duplicates = valid.height - unique.height
    stored_pairs = set(stored)
    for row in unique.iter_rows(named=True):
        if (row["job_key"], row["content_hash"]) in stored_pairs:
            result.already_stored += 1
            continue
        posting = JobPosting.model_validate({name: row[name] for name in JOBSPY_SCHEMA})
        result.envelopes.append(
            Envelope(
                job_key=row["job_key"],
                content_hash=row["content_hash"],
                scraped_at=scraped_at,
                search=SearchSpec(term=row["search_term"], location=row["search_location"]),
                posting=posting,
            )
        )
    return result
