"""JobSpy rows to envelopes: one per posting, with a stable job_key and a content hash."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime

import polars as pl

from jobping.contract import (
    Envelope,
    PoisonMessageError,
    SearchSpec,
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
    # the job_keys dropped as already stored: seen again unchanged, reported to the consumer as sightings
    seen_keys: list[str] = field(default_factory=list)


def normalise(frame: pl.DataFrame, scraped_at: datetime) -> Normalised:
    """Validate, key and deduplicate postings, each validated once.

    Only a posting without a usable title or job_url is dropped; text over a limit is cut
    and an impossible optional value cleared, each noted in ``repairs``.
    """
    result = Normalised()
    seen: set[str] = set()
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
        search = SearchSpec(term=row.get("search_term"), location=row.get("search_location"))
        # the posting is a validated model already: the envelope validates only its own fields
        envelope = envelope_for(
            posting, scraped_at, search, truncated=list(salvaged.cut), cleared=list(salvaged.cleared)
        )
        result.envelopes.append(envelope)
        result.new_by_site[str(posting.site)] += 1
    return result


def drop_stored(normalised: Normalised, stored: Collection[tuple[str, str]]) -> Normalised:
    """The postings whose (job_key, content_hash) is not stored yet; the others are counted by site."""
    stored_pairs = set(stored)
    kept = replace(
        normalised, envelopes=[], new_by_site=Counter(), stored_by_site=Counter(normalised.stored_by_site),
        seen_keys=list(normalised.seen_keys),
    )  # fmt: skip
    for envelope in normalised.envelopes:
        site = str(envelope.posting.site)
        if (envelope.job_key, envelope.content_hash) in stored_pairs:
            kept.already_stored += 1
            kept.stored_by_site[site] += 1
            kept.seen_keys.append(envelope.job_key)
        else:
            kept.envelopes.append(envelope)
            kept.new_by_site[site] += 1
    return kept
