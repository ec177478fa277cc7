"""What to scrape: the scrape flow's parameters, one typed model the Prefect UI renders as a form."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SiteName = Literal[
    "linkedin", "indeed", "zip_recruiter", "glassdoor", "google", "bayt", "naukri", "bdjobs", "hellowork"
]
Source = Literal["jobspy", "sample"]
DEFAULT_SITES: list[SiteName] = ["indeed", "linkedin", "zip_recruiter", "glassdoor"]
MAX_SEARCH_TERMS = 20
MAX_LOCATIONS = 20
MAX_RESULTS_WANTED = 1_000


class ScrapeParameters(BaseModel):
    """The searches of one scrape run: every term in every location on every site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search_terms: list[str] = Field(
        default=["data engineer"],
        min_length=1,
        max_length=MAX_SEARCH_TERMS,
        description="What to search for, e.g. 'data engineer'. Each term is one search per site and location.",
    )
    locations: list[str] = Field(
        default=["Berlin, Germany"],
        min_length=1,
        max_length=MAX_LOCATIONS,
        description="Where to search, e.g. 'Berlin, Germany' or 'Austin, TX'.",
    )
    sites: list[SiteName] = Field(
        default_factory=lambda: list(DEFAULT_SITES),
        min_length=1,
        description="Job boards to scrape (JobSpy's sites). Each site is its own task.",
    )
    results_wanted: int = Field(
        default=20, ge=1, le=MAX_RESULTS_WANTED, description="Postings wanted per site and search."
    )
    hours_old: int | None = Field(
        default=72, ge=1, le=24 * 365, description="Only postings newer than this many hours; empty for any age."
    )
    remote_only: bool = Field(default=False, description="Only remote postings.")
    linkedin_fetch_description: bool = Field(
        default=False,
        description="Fetch each LinkedIn posting's own page for its description: one more request a posting.",
    )
    country_indeed: str = Field(
        default="usa", min_length=2, max_length=40, description="Country for Indeed and Glassdoor, e.g. 'germany'."
    )
    source: Source | None = Field(
        default=None,
        description="'jobspy' scrapes the job boards, 'sample' reads the bundled synthetic postings; "
        "empty uses JOBPING_SCRAPE_SOURCE.",
    )

    @field_validator("search_terms", "locations")
    @classmethod
    def _non_blank(cls, values: list[str]) -> list[str]:
        cleaned = [value.strip() for value in values]
        if any(not value or len(value) > 200 for value in cleaned):
            raise ValueError("each entry must be 1 to 200 characters")
        return list(dict.fromkeys(cleaned))

    @field_validator("sites")
    @classmethod
    def _unique(cls, values: list[SiteName]) -> list[SiteName]:
        return list(dict.fromkeys(values))
