"""One stored analysis: the columns of the enriched tables, and the row made from a posting and its analysis."""

from __future__ import annotations

from datetime import date, datetime
from typing import TypedDict

import polars as pl

from jobping.analysis import AnalysisResult
from jobping.contract import Envelope

# the column the tables are partitioned by: the UTC date the posting was scraped
PARTITION = "scrape_date"
# the UTC date of analysed_at: readers skip files by it (DuckDB's delta_scan skips none by a timestamp)
ANALYSED_ON = "analysed_on"

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


def to_frame(rows: list[StoredRow] | pl.DataFrame) -> pl.DataFrame:
    """The rows as the tables store them: the columns of ROW_SCHEMA in order, then the two dates made from them."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=ROW_SCHEMA)
    frame = frame.select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)  # type: ignore[arg-type]
    return frame.with_columns(
        pl.col("analysed_at").dt.date().alias(ANALYSED_ON), pl.col("scraped_at").dt.date().alias(PARTITION)
    )
