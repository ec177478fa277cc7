"""JobSpy rows to envelopes: one per posting, with a stable job_key and a content hash."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from jobping.contract import (
    Envelope,
    PoisonMessageError,
    SearchSpec,
    content_hash,
    envelope_for,
    job_key,
    salvage_posting,
)
from tasks.jobspy.source import JOBSPY_SCHEMA

logger = logging.getLogger(__name__)

MAX_REASONS = 5


@dataclass
class Normalised:
    envelopes: list[Envelope] = field(default_factory=list)
    invalid: int = 0
    duplicates: int = 0
    already_stored: int = 0
    # what was dropped (no title or job_url) and what was cut or cleared to keep a posting
    invalid_reasons: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    new_by_site: Counter[str] = field(default_factory=Counter)
    stored_by_site: Counter[str] = field(default_factory=Counter)


def normalise(frame: pl.DataFrame, scraped_at: datetime, stored: Collection[tuple[str, str]] = ()) -> Normalised:
    """Validate, key and deduplicate postings; drop those stored with the same content already.

    Only a posting without a usable title or job_url is dropped; text over a limit is cut
    and an impossible optional value cleared, each noted in ``repairs``.
    """
    result = Normalised()
    seen: set[str] = set()
    stored_pairs = set(stored)
    for row in frame.iter_rows(named=True):
        where = f"{row.get('site')}: {str(row.get('job_url'))[:100]}"
        try:
            salvaged = salvage_posting({name: row.get(name) for name in JOBSPY_SCHEMA})
        except PoisonMessageError as exc:
            result.invalid += 1
            if len(result.invalid_reasons) < MAX_REASONS:
                result.invalid_reasons.append(f"{where}: {exc.reason}")
            continue
        result.repairs.extend(f"{where}: {note}" for note in salvaged.notes())
        posting = salvaged.posting
        key = job_key(posting)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        digest = content_hash(posting)
        if (key, digest) in stored_pairs:
            result.already_stored += 1
            result.stored_by_site[str(posting.site)] += 1
            continue
        search = SearchSpec(term=row.get("search_term"), location=row.get("search_location"))
        envelope = envelope_for(
            posting, scraped_at, search, truncated=list(salvaged.cut), cleared=list(salvaged.cleared)
        )
        result.envelopes.append(envelope)
        result.new_by_site[str(posting.site)] += 1
    return result
