"""The scrape flow through JobSpy's own code, with only its network scrapers replaced."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jobspy
import pytest
from jobspy.model import JobPost, Location, Scraper, ScraperInput, Site

from flows.scrape import AllSitesFailedError, scrape
from jobping.search import ScrapeParameters
from tasks.jobspy.source import scrape_site
from tasks.sqs.messages import receive
from tasks.sqs.queues import Queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class OfflineBoard(Scraper):
    """A job board that answers from memory instead of the network."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        term = scraper_input.search_term or "job"
        return [
            JobPost(
                id=f"fake-{term}-{i}",
                job_url=f"https://board.example/jobs/{term.replace(' ', '-')}-{i}",
                title=f"{term.title()} {i}",
                company="Offline GmbH",
                location=Location(city="Berlin", country="germany"),
                description=f"## Role\nWe need **Python** and SQL. Posting {i}.",
                min_amount=60_000.0 + i,
                max_amount=80_000.0,
                currency="EUR",
                is_remote=i % 2 == 0,
            )
            for i in range(min(scraper_input.results_wanted, 4))
        ]


class HollowBoard(Scraper):
    """A board that answers, but with postings whose descriptions are missing, and a warning."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        self.warn("descriptions need a login")
        return [JobPost(id=f"h{i}", job_url=f"https://hollow.example/{i}", title="Engineer") for i in range(5)]


class EmptyBoard(Scraper):
    """A board that answers with nothing at all."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        return []


class BlockedBoard(Scraper):
    """A job board that refuses us, the way JobSpy reports a 403 or a captcha."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        self.fail("403 Forbidden: blocked by the board")
        return []


@pytest.fixture
def boards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(jobspy.SCRAPER_MAPPING, Site.INDEED, OfflineBoard)
    monkeypatch.setitem(jobspy.SCRAPER_MAPPING, Site.LINKEDIN, OfflineBoard)
    monkeypatch.setitem(jobspy.SCRAPER_MAPPING, Site.GLASSDOOR, BlockedBoard)
    monkeypatch.setitem(jobspy.SCRAPER_MAPPING, Site.ZIP_RECRUITER, BlockedBoard)
    monkeypatch.setitem(jobspy.SCRAPER_MAPPING, Site.BAYT, HollowBoard)
    monkeypatch.setitem(jobspy.SCRAPER_MAPPING, Site.NAUKRI, EmptyBoard)


@pytest.mark.usefixtures("boards")
def test_jobspy_rows_come_back_in_jobspy_columns_with_the_search() -> None:
    result = scrape_site("indeed", ScrapeParameters(search_terms=["data engineer", "analytics"], results_wanted=3))
    assert result.errors == []
    assert result.postings.height == 6
    assert result.postings["location"][0] == "Berlin, Germany"
    assert set(result.postings["search_term"]) == {"data engineer", "analytics"}
    assert result.postings["site"].unique().to_list() == ["indeed"]


@pytest.mark.usefixtures("boards")
def test_a_blocked_site_is_reported_with_jobspy_error_and_no_rows() -> None:
    result = scrape_site("glassdoor", ScrapeParameters())
    assert result.postings.height == 0
    assert any("403" in error for error in result.errors)


@pytest.mark.usefixtures("boards", "prefect_api")
def test_a_failing_site_is_reported_and_the_others_go_on(sqs: SQSClient, queues: Queues) -> None:
    params = ScrapeParameters(source="jobspy", sites=["indeed", "glassdoor", "linkedin"], results_wanted=4)
    report = scrape(params)
    assert report.scraped == {"indeed": 4, "linkedin": 4}
    assert "403" in report.site_errors["glassdoor"]
    assert report.published == 8
    assert len(receive(sqs, queues.url, wait_seconds=0)) == 8


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_the_run_fails_only_when_every_site_fails() -> None:
    with pytest.raises(AllSitesFailedError, match="glassdoor"):
        scrape(ScrapeParameters(source="jobspy", sites=["glassdoor", "zip_recruiter"]))


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_duplicates_within_a_run_are_dropped() -> None:
    # the same search twice in two spellings finds the same postings twice
    report = scrape(ScrapeParameters(source="jobspy", sites=["indeed"], locations=["Berlin", "berlin "]))
    assert report.scraped == {"indeed": 8}
    assert report.duplicates == 4
    assert report.published == 4


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_empty_answers_and_empty_descriptions_are_flagged_and_jobspy_warnings_surface(
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = scrape(ScrapeParameters(source="jobspy", sites=["indeed", "bayt", "naukri"]))
    assert report.site_flags == {"bayt": ["5 of 5 descriptions are empty"], "naukri": ["returned no postings"]}
    assert report.site_warnings["bayt"] == ["descriptions need a login"]
    assert "site naukri looks unhealthy" in caplog.text
    assert "descriptions need a login" in caplog.text
