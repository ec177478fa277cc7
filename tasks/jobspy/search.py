"""What to scrape: the scrape flow's parameters, one typed model the Prefect UI renders as a form.

Every search option is JobSpy's own (``scrape_jobs``), named and typed as JobSpy names and types it:
``country_indeed`` is JobSpy's ``Country`` and ``job_type`` its ``JobType``, so the deployment's
parameter schema lists exactly the values JobSpy knows (the form shows them as a choice, and the
Prefect server refuses a run with any other), and the whole search is checked by JobSpy's own
``ScraperInput`` when the run is created, not when a board is asked. It lives beside the JobSpy
source, not in the ``jobping`` package, because the ground may not import JobSpy.
"""

from __future__ import annotations

import re

from jobspy.model import Country, JobType, ScraperInput
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobping.errors import describe
from jobping.search import DEFAULT_SITES, SiteName, Source

MAX_SEARCH_TERMS = 20
MAX_LOCATIONS = 20
MAX_RESULTS_WANTED = 1_000
MAX_COMPANY_IDS = 100
# what Indeed and Glassdoor search when neither the run nor the location names a country
JOBSPY_DEFAULT_COUNTRY: Country = ScraperInput.model_fields["country_indeed"].default
JOBSPY_DEFAULT_DISTANCE = 50
# the last part of "Austin, TX" names a US state: Indeed USA
US_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "
    "OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR"
)
US_STATES = frozenset(US_STATE_CODES.split())
LINKEDIN_FETCH_HELP = (
    "Read each LinkedIn posting's own page for its description, pay and job type. On by default: without it "
    "LinkedIn gives only title, company and place. Costs one more request per LinkedIn posting, made one after "
    "the other (JobSpy waits up to 15 s for each, and pauses 3 to 7 s only between result pages of 10): "
    "20 postings take 22 requests instead of 2, and LinkedIn throttles sooner."
)
FETCH_HELP = (
    "Read each posting's own page on the other boards that support it (Glassdoor, ZipRecruiter, Bayt, Naukri, "
    "BDJobs, HelloWork): one more request per posting, slower and blocked more often. Indeed gives descriptions "
    "with its search anyway."
)


def country_of(location: str) -> Country | None:
    """The country a location names, as JobSpy knows it: 'Berlin, Germany' is Germany, 'Austin, TX' the USA.

    The last comma-separated part is read with JobSpy's own ``Country`` (its names and aliases, any case);
    a US state's two-letter code means the USA; anything else names no country.
    """
    last = location.rsplit(",", 1)[-1].strip()
    if re.fullmatch(r"[A-Za-z]{2}", last) and last.upper() in US_STATES and "," in location:
        return Country.USA
    try:
        return Country(last)
    except ValueError:
        return None


class ScrapeParameters(BaseModel):
    """The searches of one scrape run: every term in every location on every site, with JobSpy's options."""

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
    remote_only: bool = Field(default=False, description="Only remote postings (JobSpy's is_remote).")
    country_indeed: Country | None = Field(
        default=None,
        description="Country of Indeed's and Glassdoor's site. Empty: each location's own country ('Berlin, "
        f"Germany' searches Indeed Germany, 'Austin, TX' the USA), or JobSpy's default "
        f"({JOBSPY_DEFAULT_COUNTRY.value}) for a location that names none.",
    )
    distance: int | None = Field(
        default=JOBSPY_DEFAULT_DISTANCE, ge=0, le=500, description="Search radius around the location, in miles."
    )
    job_type: JobType | None = Field(
        default=None, description="Only this kind of job; empty for any. LinkedIn ignores it."
    )
    easy_apply: bool | None = Field(
        default=None, description="Only jobs applied for on the board itself (LinkedIn, Indeed, ZipRecruiter)."
    )
    linkedin_company_ids: list[int] | None = Field(
        default=None,
        max_length=MAX_COMPANY_IDS,
        description="LinkedIn's numeric company ids: LinkedIn searches only these companies' postings.",
    )
    offset: int = Field(default=0, ge=0, le=10_000, description="Skip the first this many results of each search.")
    enforce_annual_salary: bool = Field(
        default=False, description="Convert hourly, daily, weekly and monthly pay to yearly."
    )
    user_agent: str | None = Field(
        default=None, min_length=1, max_length=500, description="User-Agent header to send; empty for JobSpy's."
    )
    linkedin_fetch_description: bool = Field(default=True, description=LINKEDIN_FETCH_HELP)
    fetch_description: bool = Field(default=False, description=FETCH_HELP)
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

    @model_validator(mode="after")
    def _jobspy_accepts(self) -> ScrapeParameters:
        # JobSpy's own check of every search of the run, before any board is asked
        for location in self.locations:
            try:
                ScraperInput.model_validate(jobspy_options(self, location))
            except ValidationError as exc:
                raise ValueError(f"JobSpy refused the search in {location!r}: {describe(exc)}") from None
        return self

    def country(self, location: str) -> Country:
        """The country Indeed and Glassdoor search for this location."""
        return self.country_indeed or country_of(location) or JOBSPY_DEFAULT_COUNTRY


def jobspy_options(params: ScrapeParameters, location: str) -> dict[str, object]:
    """The run's options as ``scrape_jobs`` takes them for a search in this location, empty ones left out."""
    options: dict[str, object] = {
        "site_name": list(params.sites),
        "location": location,
        "results_wanted": params.results_wanted,
        "hours_old": params.hours_old,
        "is_remote": params.remote_only,
        "country_indeed": params.country(location),
        "distance": params.distance,
        "job_type": params.job_type,
        "easy_apply": params.easy_apply,
        "linkedin_company_ids": params.linkedin_company_ids,
        "offset": params.offset,
        "enforce_annual_salary": params.enforce_annual_salary,
        "user_agent": params.user_agent,
        "fetch_description": params.fetch_description,
    }
    return {name: value for name, value in options.items() if value is not None}
