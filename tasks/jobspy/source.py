"""Postings of one site, from JobSpy's scrapers or the bundled synthetic sample."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, get_args

import polars as pl

from jobping.errors import TerminalError, TransientError
from jobping.search import ScrapeParameters, SiteName

logger = logging.getLogger(__name__)

SAMPLE_FILE = "sample/postings.json"
SEARCH_COLUMNS = ("search_term", "search_location")

# jobspy's JobPost as a DataFrame row: every column as scrape_jobs returns it
JOBSPY_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.String,
    "site": pl.String,
    "job_url": pl.String,
    "job_url_direct": pl.String,
    "title": pl.String,
    "company": pl.String,
    "location": pl.String,
    "date_posted": pl.String,
    "job_type": pl.String,
    "salary_source": pl.String,
    "interval": pl.String,
    "min_amount": pl.Float64,
    "max_amount": pl.Float64,
    "currency": pl.String,
    "is_remote": pl.Boolean,
    "job_level": pl.String,
    "job_function": pl.String,
    "listing_type": pl.String,
    "emails": pl.String,
    "description": pl.String,
    "company_industry": pl.String,
    "company_url": pl.String,
    "company_logo": pl.String,
    "company_url_direct": pl.String,
    "company_addresses": pl.String,
    "company_num_employees": pl.String,
    "company_revenue": pl.String,
    "company_description": pl.String,
    "skills": pl.String,
    "experience_range": pl.String,
    "company_rating": pl.Float64,
    "company_reviews_count": pl.Int64,
    "vacancy_count": pl.Int64,
    "work_from_home_type": pl.String,
}
FRAME_SCHEMA = {**JOBSPY_SCHEMA, **dict.fromkeys(SEARCH_COLUMNS, pl.String)}


class SiteFailedError(TransientError):
    """A site answered with errors and no postings (blocked, rate-limited, down)."""


class SampleMissingError(TerminalError):
    """The bundled sample file is not installed with the package."""


@dataclass
class SiteResult:
    site: SiteName
    postings: pl.DataFrame
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _frame(records: list[dict[str, Any]], term: str | None, location: str | None) -> pl.DataFrame:
    rows = [{**record, "search_term": term, "search_location": location} for record in records]
    return pl.from_dicts(rows, schema=FRAME_SCHEMA) if rows else pl.DataFrame(schema=FRAME_SCHEMA)


def scrape_site(site: SiteName, params: ScrapeParameters) -> SiteResult:
    """Every search of the run on one site through JobSpy; errors are collected, not raised."""
    from jobspy import scrape_jobs
    from jobspy.records import FIELDS, records

    frames: list[pl.DataFrame] = []
    result = SiteResult(site=site, postings=pl.DataFrame(schema=FRAME_SCHEMA))
    for term in params.search_terms:
        for location in params.locations:
            try:
                jobs = scrape_jobs(
                    site_name=[site],
                    search_term=term,
                    google_search_term=f"{term} jobs near {location}" if site == "google" else None,
                    location=location,
                    results_wanted=params.results_wanted,
                    hours_old=params.hours_old,
                    is_remote=params.remote_only,
                    country_indeed=params.country_indeed,
                    description_format="markdown",
                    verbose=0,
                )
            except ValueError as exc:
                result.errors.append(f"{term!r} in {location!r}: {exc}")
                continue
            result.errors.extend(f"{term!r} in {location!r}: {e}" for e in jobs.attrs.get("errors", {}).values())
            for found in jobs.attrs.get("warnings", {}).values():
                result.warnings.extend(found)
            frames.append(_frame(records(jobs, FIELDS), term, location))
    if frames:
        result.postings = pl.concat(frames, how="vertical")
    return result


@cache
def _sample_records() -> tuple[dict[str, Any], ...]:
    try:
        text = resources.files("jobping").joinpath(SAMPLE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SampleMissingError(f"the bundled sample {SAMPLE_FILE} is missing from the jobping package") from exc
    return tuple(json.loads(text)["jobs"])


def sample_site(site: SiteName, params: ScrapeParameters) -> SiteResult:
    """The bundled synthetic postings of one site, as JobSpy would return them."""
    records = [record for record in _sample_records() if record.get("site") == site]
    frame = _frame(records, params.search_terms[0], params.locations[0])
    if params.remote_only:
        frame = frame.filter(pl.col("is_remote").fill_null(value=False))
    return SiteResult(site=site, postings=frame)


def sample_sites() -> list[SiteName]:
    """The sites that appear in the bundled sample."""
    known: tuple[SiteName, ...] = get_args(SiteName)
    present = {record.get("site") for record in _sample_records()}
    return [site for site in known if site in present]


# more than this share of empty descriptions means the site is serving us something odd
EMPTY_DESCRIPTION_SHARE = 0.5


def health_flags(result: SiteResult) -> list[str]:
    """What looks wrong with a site's answer even though it did not fail."""
    frame = result.postings
    if frame.is_empty():
        return ["returned no postings"]
    empty = frame.filter(pl.col("description").is_null() | (pl.col("description").str.strip_chars() == "")).height
    if empty / frame.height > EMPTY_DESCRIPTION_SHARE:
        return [f"{empty} of {frame.height} descriptions are empty"]
    return []


def fetch_site(site: SiteName, params: ScrapeParameters, source: str) -> SiteResult:
    """Postings of one site; raises ``SiteFailedError`` when the site gave errors and nothing else."""
    result = sample_site(site, params) if source == "sample" else scrape_site(site, params)
    if result.errors and result.postings.is_empty():
        raise SiteFailedError(f"{site}: " + "; ".join(result.errors)[:2_000])
    return result
