"""The scrape path through JobSpy's own ``scrape_jobs``, with only its network scrapers replaced."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterator
from datetime import date
from enum import Enum
from importlib.metadata import version
from typing import Any, ClassVar, Union, get_args, get_origin

import jobspy
import pandas as pd
import polars as pl
import pytest
from jobspy.model import JobPost, Location, Scraper, ScraperInput, Site

from flows.analyse import analyse
from flows.scrape import AllSitesFailedError, SiteDataError, scrape
from jobping.columns import MAX_DESCRIPTION_CHARS
from jobping.settings import Settings
from storage.reader import reader
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import (
    JOBSPY_SCHEMA,
    JOBSPY_VERSION,
    NormalisationError,
    SearchRejectedError,
    SiteFailedError,
    fetch_site,
    jobspy_frame,
    sample_posts,
    sample_sites,
    scrape_site,
)
from tests import jobspy_boards
from tests.jobspy_boards import (
    LONG_BOARD,
    LONG_DESCRIPTION_CHARS,
    BlockedBoard,
    MistypedBoard,
    RaisingBoard,
    full_post,
    sparse_post,
)

ALL_SITES = [site.value for site in Site]
TERM = "data engineer"
# each board answers a search with two full postings and a sparse one
PER_SEARCH = 3


@pytest.fixture
def boards() -> Iterator[None]:
    with jobspy_boards.offline():
        yield


def expected_rows(site: Site) -> list[dict[str, Any]]:
    """What JobSpy's own serializer makes of each posting a board returns, in JobSpy's column names."""
    posts = [full_post(site, TERM, 0), full_post(site, TERM, 1), sparse_post(site, TERM)]
    return [post.model_copy(update={"site": site.value}).model_dump() for post in posts]


def polars_type_of(annotation: Any) -> type[pl.DataType]:
    """The polars column a JobPost field becomes in scrape_jobs' frame, from its annotation."""
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if get_origin(annotation) is list:
        return pl.String  # the serializer joins lists with ', '
    if isinstance(annotation, type) and issubclass(annotation, Enum | Location):
        return pl.String
    simple: dict[Any, type[pl.DataType]] = {
        str: pl.String, date: pl.Date, float: pl.Float64, int: pl.Int64, bool: pl.Boolean
    }  # fmt: skip
    return simple[annotation]


def test_jobping_reads_every_jobspy_column_in_its_type_and_notices_an_upgrade() -> None:
    # a JobSpy that adds, drops or retypes a JobPost field fails here, before it mangles a night
    assert version("python-jobspy") == JOBSPY_VERSION
    jobspy_columns = {name: polars_type_of(field.annotation) for name, field in JobPost.model_fields.items()}
    assert jobspy_columns == JOBSPY_SCHEMA


@pytest.mark.usefixtures("boards")
@pytest.mark.parametrize("site", list(Site), ids=ALL_SITES)
def test_every_board_reaches_jobping_with_every_field_as_jobspy_gave_it(site: Site) -> None:
    result = scrape_site(site.value, ScrapeParameters(search_terms=[TERM], hours_old=None))
    assert result.errors == []
    got = result.postings.to_dicts()
    assert [{name: row[name] for name in JOBSPY_SCHEMA} for row in got] == expected_rows(site)
    assert {row["search_term"] for row in got} == {TERM}
    first = got[0]
    assert isinstance(first["date_posted"], date)
    assert first["company_reviews_count"] == 1_284  # an int, though pandas held it as a float beside a NaN
    assert first["emails"] == f"jobs@{site.value}.example, talent@cafe.example"
    assert first["job_type"] == "parttime"
    assert got[1]["job_type"] == "fulltime, contract"


@pytest.mark.usefixtures("boards")
def test_a_scraper_that_raises_and_one_that_reports_failure_are_site_failures() -> None:
    jobspy.SCRAPER_MAPPING[Site.GLASSDOOR] = RaisingBoard
    jobspy.SCRAPER_MAPPING[Site.ZIP_RECRUITER] = BlockedBoard
    for site, reason in [("glassdoor", "ConnectionError: connection reset by peer"), ("zip_recruiter", "429")]:
        result = scrape_site(site, ScrapeParameters())  # type: ignore[arg-type]
        assert result.postings.height == 0
        assert any(reason in error for error in result.errors)
        with pytest.raises(SiteFailedError, match=reason):
            fetch_site(site, ScrapeParameters(), "jobspy")  # type: ignore[arg-type]


@pytest.mark.usefixtures("boards")
def test_a_value_jobping_cannot_read_is_a_terminal_error_naming_the_site_and_column() -> None:
    jobspy.SCRAPER_MAPPING[Site.BAYT] = MistypedBoard
    with pytest.raises(NormalisationError, match=r"bayt: .*'date_posted'.*int") as caught:
        scrape_site("bayt", ScrapeParameters())
    assert (caught.value.site, caught.value.column) == ("bayt", "date_posted")


@pytest.mark.usefixtures("boards")
def test_a_search_jobspy_refuses_is_our_error_not_the_board_s() -> None:
    # parameters made without their check (ScrapeParameters refuses the country when made)
    unchecked = ScrapeParameters.model_construct(country_indeed="atlantis")
    with pytest.raises(SearchRejectedError, match="country_indeed"):
        scrape_site("indeed", unchecked)


@pytest.mark.parametrize("site", sample_sites())
def test_the_sample_reaches_jobping_exactly_as_scrape_jobs_returns_it(site: Any, boards: None) -> None:
    class SampleBoard(Scraper):
        def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
            return sample_posts(site)

    jobspy.SCRAPER_MAPPING[Site(site)] = SampleBoard
    theirs = jobspy.scrape_jobs(site_name=site, results_wanted=1_000, verbose=0)
    ours = jobspy_frame(sample_posts(site))
    pd.testing.assert_frame_equal(ours, theirs)
    assert theirs["date_posted"].map(type).isin([date, type(None)]).all()


class CountingMistypedBoard(MistypedBoard):
    calls: ClassVar[int] = 0

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        type(self).calls += 1
        return super().scrape(scraper_input)


def lake_rows(settings: Settings, query: str) -> list[dict[str, Any]]:
    with reader(settings.lake_dir) as con:
        result = con.execute(query)
        names = [column[0] for column in result.description or []]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


@pytest.mark.usefixtures("boards", "prefect_api")
def test_every_board_is_scraped_analysed_and_stored_with_every_jobspy_column(settings: Settings) -> None:
    report = scrape(ScrapeParameters(source="jobspy", sites=ALL_SITES, search_terms=[TERM], hours_old=None))  # type: ignore[arg-type]
    assert report.scraped == dict.fromkeys(ALL_SITES, PER_SEARCH)
    assert report.published == len(ALL_SITES) * PER_SEARCH
    assert (report.site_errors, report.site_bugs, report.invalid) == ({}, {}, 0)

    analysed = asyncio.run(analyse())
    assert (analysed.stored, analysed.dead_lettered) == (len(ALL_SITES) * PER_SEARCH, 0)
    stored = {row["job_url"]: row for row in lake_rows(settings, "SELECT * FROM enriched_jobs")}
    for site in Site:
        for given in expected_rows(site):
            row = stored[given["job_url"]]
            renamed = {"id": "job_id", "skills": "posting_skills"}
            for name, value in given.items():
                if name != "description":
                    assert row[renamed.get(name, name)] == value, (site, name)
            assert row["skills"] is not None  # the analyser's own skills, beside JobSpy's
    long = stored[full_post(LONG_BOARD, TERM, 0).job_url]
    assert long["description_truncated"] is True
    assert "description" in long["truncated_fields"]
    assert len(long["description"]) == MAX_DESCRIPTION_CHARS < LONG_DESCRIPTION_CHARS
    assert full_post(LONG_BOARD, TERM, 0).description.startswith(long["description"])  # type: ignore[union-attr]


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_failing_boards_are_named_and_the_others_are_stored(settings: Settings) -> None:
    jobspy.SCRAPER_MAPPING[Site.GLASSDOOR] = RaisingBoard
    jobspy.SCRAPER_MAPPING[Site.ZIP_RECRUITER] = BlockedBoard
    report = scrape(ScrapeParameters(source="jobspy", sites=ALL_SITES, search_terms=[TERM]))  # type: ignore[arg-type]
    answering = sorted(set(ALL_SITES) - {"glassdoor", "zip_recruiter"})
    assert set(report.site_errors) == {"glassdoor", "zip_recruiter"}
    assert "connection reset by peer" in report.site_errors["glassdoor"]
    assert "429 Too Many Requests" in report.site_errors["zip_recruiter"]
    assert report.published == len(answering) * PER_SEARCH
    assert asyncio.run(analyse()).stored == len(answering) * PER_SEARCH
    stored = lake_rows(settings, "SELECT site, count(*) AS n FROM enriched_jobs GROUP BY site ORDER BY site")
    assert stored == [{"site": site, "n": PER_SEARCH} for site in answering]


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_the_run_fails_as_every_site_failed_only_when_every_board_did() -> None:
    jobspy.SCRAPER_MAPPING[Site.GLASSDOOR] = RaisingBoard
    jobspy.SCRAPER_MAPPING[Site.ZIP_RECRUITER] = BlockedBoard
    with pytest.raises(AllSitesFailedError, match="glassdoor, zip_recruiter") as caught:
        scrape(ScrapeParameters(source="jobspy", sites=["glassdoor", "zip_recruiter"]))
    assert set(caught.value.report.site_errors) == {"glassdoor", "zip_recruiter"}


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_a_site_jobping_cannot_read_fails_the_run_loudly_unretried_after_publishing_the_others() -> None:
    CountingMistypedBoard.calls = 0
    jobspy.SCRAPER_MAPPING[Site.BAYT] = CountingMistypedBoard
    with pytest.raises(SiteDataError, match=r"bayt.*'date_posted'") as caught:
        scrape(ScrapeParameters(source="jobspy", sites=["indeed", "bayt"], search_terms=[TERM]))
    assert CountingMistypedBoard.calls == 1
    assert caught.value.report.published == PER_SEARCH
    assert caught.value.report.site_errors == {}
    assert "date_posted" in caught.value.report.site_bugs["bayt"]


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_duplicates_within_a_run_are_dropped() -> None:
    # the same search twice in two spellings finds the same postings twice
    report = scrape(ScrapeParameters(source="jobspy", sites=["indeed"], locations=["Berlin", "berlin "]))
    assert report.scraped == {"indeed": 2 * PER_SEARCH}
    assert report.duplicates == PER_SEARCH
    assert report.published == PER_SEARCH


class HollowBoard(Scraper):
    """A board that answers, but with postings whose descriptions are missing, and a warning."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        self.warn("descriptions need a login")
        return [JobPost(id=f"h{i}", job_url=f"https://hollow.example/{i}", title="Engineer") for i in range(5)]


class EmptyBoard(Scraper):
    """A board that answers with nothing at all."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        return []


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_empty_answers_and_empty_descriptions_are_flagged_and_jobspy_warnings_surface(
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobspy.SCRAPER_MAPPING[Site.BAYT] = HollowBoard
    jobspy.SCRAPER_MAPPING[Site.NAUKRI] = EmptyBoard
    report = scrape(ScrapeParameters(source="jobspy", sites=["indeed", "bayt", "naukri"]))
    assert report.site_flags == {"bayt": ["5 of 5 descriptions are empty"], "naukri": ["returned no postings"]}
    assert report.site_warnings["bayt"] == ["descriptions need a login"]
    assert "site naukri looks unhealthy" in caplog.text
    assert "descriptions need a login" in caplog.text
