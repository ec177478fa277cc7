"""The stored row, declared once: each column's name, type, nullability, limits and where it comes from.

Everything else is made from this list: the JobSpy frame's schema (tasks/jobspy/source.py), the
posting on the queue (``JobPosting`` in jobping/contract.py), the content hash and the posting
shown to the LLM, the stored row (jobping/stored.py), the Delta tables' schema (storage/rows.py),
the views' columns (storage/views.py) and the README's column table (scripts/columns_table.py).
Adding a JobSpy field is one line here; a table stored before gains it as a column that older
rows read as NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# the stored types; storage/rows.py and tasks/jobspy/source.py give each its polars type
Kind = Literal["text", "texts", "bool", "int16", "int32", "int64", "float", "date", "timestamp"]
# where a column's value comes from: the posting's JobSpy field; the queue's envelope; the analysis
# (the analyser's answer, what produced it and what it cost); the analyse run (when, which message, which
# job group); the lake, which makes a date of a timestamp as it writes the row
Source = Literal["jobspy", "envelope", "analysis", "run", "lake"]
Interval = Literal["yearly", "monthly", "weekly", "daily", "hourly"]

MAX_TITLE_CHARS = 500
MAX_SHORT_TEXT_CHARS = 2_000
MAX_URL_CHARS = 4_096
MAX_DESCRIPTION_CHARS = 200_000
MAX_LABEL_CHARS = 100
MAX_COMPANY_DESCRIPTION_CHARS = 20_000
MAX_CURRENCY_CHARS = 10
MAX_SALARY_AMOUNT = 100_000_000.0
# counts are stored as 64-bit integers: a larger one would fail a whole batch
MAX_COUNT = 1_000_000_000
MAX_RATING = 5.0

# the UTC date the posting was scraped: the tables are partitioned by it
SCRAPE_DATE = "scrape_date"
# the UTC date of analysed_at: readers skip files by it (DuckDB's delta_scan skips none by a timestamp)
ANALYSED_ON = "analysed_on"


@dataclass(frozen=True)
class Column:
    """One stored column and, for a JobSpy one, how a posting's field is checked on its way in."""

    name: str
    kind: Kind
    source: Source
    nullable: bool = True
    # the longest text the column holds; a longer JobSpy text is cut to it, never refused
    max_chars: int | None = None
    # where the value is read, when not under the column's name: the JobSpy field, or the attribute path on the
    # envelope, the analysis result or the run
    field: str | None = None
    # a JobSpy number's bounds, the values a JobSpy text may take, an http(s) link, a list JobSpy joins with ', '
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    link: bool = False
    joined: bool = False
    # a change of a content column means the posting says something new (a new analysis); prompt columns are
    # what the LLM is shown of a posting besides its description
    content: bool = False
    prompt: bool = False
    note: str = ""

    @property
    def read_as(self) -> str:
        """The name the value is read under: the JobSpy field's, or an attribute path."""
        return self.field or self.name


COLUMNS: tuple[Column, ...] = (
    Column("job_key", "text", "envelope", nullable=False, max_chars=MAX_URL_CHARS, note="site:id, else the URL's hash"),
    Column("content_hash", "text", "envelope", nullable=False, note="sha256 of what the posting says"),
    Column("prompt_version", "text", "analysis", nullable=False),
    Column("model", "text", "analysis", nullable=False),
    Column("site", "text", "jobspy", max_chars=MAX_LABEL_CHARS, prompt=True),
    Column("job_id", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, field="id", note="the board's own id"),
    Column("job_url", "text", "jobspy", nullable=False, max_chars=MAX_URL_CHARS, link=True),
    Column("job_url_direct", "text", "jobspy", max_chars=MAX_URL_CHARS, link=True),
    Column("title", "text", "jobspy", nullable=False, max_chars=MAX_TITLE_CHARS, content=True, prompt=True),
    Column("company", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, content=True, prompt=True),
    Column("location", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, content=True, prompt=True),
    Column("date_posted", "date", "jobspy", prompt=True),
    Column("job_type", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, joined=True, content=True, prompt=True),
    Column("job_level", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, content=True, prompt=True),
    Column("is_remote", "bool", "jobspy", content=True, prompt=True),
    Column("interval", "text", "jobspy", choices=get_args(Interval), content=True, prompt=True),
    Column("min_amount", "float", "jobspy", bounds=(0, MAX_SALARY_AMOUNT), content=True, prompt=True),
    Column("max_amount", "float", "jobspy", bounds=(0, MAX_SALARY_AMOUNT), content=True, prompt=True),
    Column("currency", "text", "jobspy", max_chars=MAX_CURRENCY_CHARS, content=True, prompt=True),
    Column("company_industry", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS),
    Column("company_url", "text", "jobspy", max_chars=MAX_URL_CHARS, link=True),
    Column("description", "text", "jobspy", max_chars=MAX_DESCRIPTION_CHARS, content=True),
    Column("description_truncated", "bool", "envelope", nullable=False, note="cut to fit the queue's message"),
    Column("description_missing", "bool", "envelope", nullable=False, note="no description: judged on the rest"),
    Column("description_cut", "bool", "analysis", nullable=False, note="cut to the LLM's budget"),
    Column("truncated_fields", "texts", "envelope", nullable=False, note="the posting's fields cut to a limit"),
    Column("cleared_fields", "texts", "envelope", nullable=False, note="the posting's fields that could not be valid"),
    # the rest of JobSpy's JobPost, under its own names (its skills are posting_skills)
    Column("salary_source", "text", "jobspy", max_chars=MAX_LABEL_CHARS),
    Column("job_function", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS),
    Column("listing_type", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS),
    Column("emails", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, joined=True),
    Column("work_from_home_type", "text", "jobspy", max_chars=MAX_LABEL_CHARS, content=True, prompt=True),
    Column("experience_range", "text", "jobspy", max_chars=MAX_LABEL_CHARS, prompt=True),
    Column("vacancy_count", "int64", "jobspy", bounds=(0, MAX_COUNT)),
    Column(
        "posting_skills", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS, field="skills", joined=True, prompt=True
    ),
    Column("company_logo", "text", "jobspy", max_chars=MAX_URL_CHARS, link=True),
    Column("company_url_direct", "text", "jobspy", max_chars=MAX_URL_CHARS, link=True),
    Column("company_addresses", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS),
    Column("company_num_employees", "text", "jobspy", max_chars=MAX_LABEL_CHARS),
    Column("company_revenue", "text", "jobspy", max_chars=MAX_LABEL_CHARS),
    Column("company_description", "text", "jobspy", max_chars=MAX_COMPANY_DESCRIPTION_CHARS),
    Column("company_rating", "float", "jobspy", bounds=(0, MAX_RATING)),
    Column("company_reviews_count", "int64", "jobspy", bounds=(0, MAX_COUNT)),
    Column("search_term", "text", "envelope", field="search.term"),
    Column("search_location", "text", "envelope", field="search.location"),
    Column("scraped_at", "timestamp", "envelope", nullable=False),
    Column("analysed_at", "timestamp", "run", nullable=False),
    Column("fit_score", "int16", "analysis", nullable=False, field="analysis.fit_score", note="0-100"),
    Column("verdict", "text", "analysis", nullable=False, field="analysis.verdict", note="apply, maybe or skip"),
    Column("seniority", "text", "analysis", nullable=False, field="analysis.seniority"),
    Column("remote_policy", "text", "analysis", nullable=False, field="analysis.remote_policy"),
    Column("skills", "texts", "analysis", nullable=False, field="analysis.skills"),
    Column("salary_min_yearly", "float", "analysis", field="analysis.salary_min_yearly"),
    Column("salary_max_yearly", "float", "analysis", field="analysis.salary_max_yearly"),
    Column("salary_currency", "text", "analysis", field="analysis.salary_currency"),
    Column("red_flags", "texts", "analysis", nullable=False, field="analysis.red_flags"),
    Column("summary", "text", "analysis", nullable=False, field="analysis.summary"),
    Column("limits_broken", "texts", "analysis", nullable=False, note="the profile's hard limits it breaks"),
    Column("prompt_tokens", "int32", "analysis", nullable=False),
    Column("completion_tokens", "int32", "analysis", nullable=False),
    Column("cost_usd", "float", "analysis", nullable=False),
    Column("message_id", "text", "run", nullable=False, note="the SQS message that brought it"),
    Column("group_key", "text", "run", field="grouping.group_key"),
    Column(
        "job_group", "text", "run", nullable=False, field="grouping.job_group", note="the same job's on every board"
    ),
    Column("analysis_of", "text", "run", field="grouping.analysis_of", note="the posting whose analysis it reused"),
    Column("producer", "text", "envelope", nullable=False, note="`jobping-scrape` for our scrape's postings"),
    Column(ANALYSED_ON, "date", "lake", nullable=False, field="analysed_at", note="by which readers skip files"),
    Column(SCRAPE_DATE, "date", "lake", nullable=False, field="scraped_at", note="the partition"),
)

# what is stored of a posting, an envelope, an analysis and a run: a row as to_row makes it
ROW_COLUMNS = tuple(column for column in COLUMNS if column.source != "lake")
# the lake's dates, made of a row's timestamps as it is written
LAKE_COLUMNS = tuple(column for column in COLUMNS if column.source == "lake")
# JobSpy's JobPost as a DataFrame row, under JobSpy's names (read_as)
JOBSPY_COLUMNS = tuple(column for column in COLUMNS if column.source == "jobspy")
# the analyser's answer, as the jobs view shows a group's best analysis
ANSWER_COLUMNS = tuple(column.name for column in COLUMNS if column.read_as.startswith("analysis."))
CONTENT_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if column.content)
PROMPT_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if column.prompt)
