"""The enriched tables' columns: their types, in order, and the rows as the tables store them."""

from __future__ import annotations

import polars as pl

from jobping.stored import StoredRow

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
    "group_key": pl.String,
    "job_group": pl.String,
    "analysis_of": pl.String,
    "producer": pl.String,
}


# what the latest table holds beyond the history's columns, carried by every merge: when the posting was first
# and last scraped over all its analyses, so that a re-analysis (a new prompt, a new scraped_at) keeps first_seen
FIRST_SEEN = "first_seen"
LAST_SEEN = "last_seen"


def empty_rows() -> pl.DataFrame:
    """No rows, with the tables' columns and types: what a table is created or widened with."""
    return to_frame(pl.DataFrame(schema=ROW_SCHEMA))


def to_frame(rows: list[StoredRow] | pl.DataFrame) -> pl.DataFrame:
    """The rows as the tables store them: the columns of ROW_SCHEMA in order, then the two dates made from them."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=ROW_SCHEMA)
    frame = frame.select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)  # type: ignore[arg-type]
    return frame.with_columns(
        pl.col("analysed_at").dt.date().alias(ANALYSED_ON), pl.col("scraped_at").dt.date().alias(PARTITION)
    )
