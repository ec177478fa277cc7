"""A stored analysis: the row made from a posting and its analysis, whatever stores it.

storage/rows.py gives these keys their column types (ROW_SCHEMA); a test holds the two equal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypedDict

from jobping.analysis import AnalysisResult
from jobping.contract import Envelope
from jobping.grouping import Grouping


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
    # the job group (jobping/grouping.py): postings of one job on several boards share it
    group_key: str | None
    job_group: str
    analysis_of: str | None
    # who sent it (contract.SCRAPE_PRODUCER: our scrape); null in rows written before producers were kept
    producer: str


def to_row(
    envelope: Envelope, result: AnalysisResult, analysed_at: datetime, message_id: str, grouping: Grouping | None = None
) -> StoredRow:
    posting, analysis = envelope.posting, result.analysis
    if grouping is None:
        grouping = Grouping.alone(envelope.job_key, posting.company, posting.title, posting.location, posting.is_remote)
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
        group_key=grouping.group_key,
        job_group=grouping.job_group,
        analysis_of=grouping.analysis_of,
        producer=envelope.producer,
    )
