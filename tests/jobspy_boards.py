"""JobSpy's nine boards answering offline with JobSpy's own models, through its real ``scrape_jobs``.

Only the network scrapers are replaced (``jobspy.SCRAPER_MAPPING``): JobSpy's own input
validation, threading, model serializer and DataFrame conversion all run. Every posting
sets every ``JobPost`` field in the types JobSpy's scrapers use (dates, enums, lists of job
types and emails, each compensation interval), and every board also returns a sparse
posting whose optional fields are ``None``, so pandas fills its columns with NaN and None.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import ClassVar

import jobspy
from jobspy.model import (
    CompensationInterval,
    Country,
    JobPost,
    JobType,
    Location,
    Scraper,
    ScraperInput,
    Site,
)

TODAY = date(2026, 11, 27)
LONG_DESCRIPTION_CHARS = 300_000
# the board whose first posting carries a description too long for any queue
LONG_BOARD = Site.LINKEDIN
INTERVALS = list(CompensationInterval)
# realistic pay for each interval, so that no amount is out of its range
PAY = {
    CompensationInterval.YEARLY: (62_000.0, 84_000.0),
    CompensationInterval.MONTHLY: (5_200.0, 6_900.0),
    CompensationInterval.WEEKLY: (1_250.0, 1_600.0),
    CompensationInterval.DAILY: (420.0, 560.0),
    CompensationInterval.HOURLY: (38.5, 52.0),
}
PLACES = {
    Site.LINKEDIN: Location(city="München", state="BY", country=Country.GERMANY),
    Site.INDEED: Location(city="Austin", state="TX", country=Country.USA),
    Site.ZIP_RECRUITER: Location(city="Denver", state="CO", country="US"),
    Site.GLASSDOOR: Location(city="Zürich", country=Country.SWITZERLAND),
    Site.GOOGLE: Location(city="東京", country=Country.JAPAN),
    Site.BAYT: Location(city="Dubai", country=Country.UNITEDARABEMIRATES),
    Site.NAUKRI: Location(city="Bengaluru", state="Karnataka", country=Country.INDIA),
    Site.BDJOBS: Location(city="Dhaka", country="Bangladesh"),
    Site.HELLOWORK: Location(city="Lyon", country=Country.FRANCE),
}


def full_post(site: Site, term: str, index: int) -> JobPost:
    """A posting with every JobPost field set, as a board's scraper builds it."""
    interval = INTERVALS[(list(Site).index(site) + index) % len(INTERVALS)]
    low, high = PAY[interval]
    slug = term.replace(" ", "-")
    description = f"## {term.title()} ({site.value})\n\nWe use **Python**, SQL and Spark. Café, Zürich, 東京 🚀\n"
    if site == LONG_BOARD and index == 0:
        description = (description * (LONG_DESCRIPTION_CHARS // len(description) + 1))[:LONG_DESCRIPTION_CHARS]
    return JobPost(
        id=f"{site.value}-{slug}-{index}",
        job_url=f"https://{site.value}.example/jobs/{slug}-{index}",
        job_url_direct=f"https://careers.example-{index}.com/apply/{slug}",
        title=f"Senior {term.title()} - Plattform {index}",
        company="Café Zürich Datentechnik GmbH",
        location=PLACES[site],
        date_posted=TODAY - timedelta(days=index + 1),
        job_type=[JobType.FULL_TIME, JobType.CONTRACT] if index % 2 else [JobType.PART_TIME],
        salary_source="description" if index % 2 else None,
        interval=interval,
        min_amount=low,
        max_amount=high,
        currency="EUR",
        is_remote=index % 2 == 0,
        job_level="mid-senior level",
        job_function="Engineering, Information Technology",
        listing_type="sponsored",
        emails=[f"jobs@{site.value}.example", "talent@cafe.example"],
        description=description,
        company_industry="Software Development",
        company_url=f"https://{site.value}.example/company/cafe-zurich",
        company_logo="https://cdn.example/logo.png",
        company_url_direct="https://cafe.example",
        company_addresses="Bahnhofstrasse 1, 8001 Zürich",
        company_num_employees="51 to 200",
        company_revenue="$5M to $25M (USD)",
        company_description="Wir bauen Datenplattformen. 我们构建数据平台。",
        skills=["Python", "SQL", "Apache Spark"],
        experience_range="3-5 years",
        company_rating=4.3,
        company_reviews_count=1_284 + index,
        vacancy_count=2,
        work_from_home_type="Hybrid",
    )


def sparse_post(site: Site, term: str) -> JobPost:
    """A posting with only what JobSpy requires: every optional field is None."""
    slug = term.replace(" ", "-")
    return JobPost(job_url=f"https://{site.value}.example/jobs/{slug}-sparse", title=f"{term.title()} (sparse)")


class OfflineBoard(Scraper):
    """A board that answers from memory: two full postings and a sparse one per search."""

    site: ClassVar[Site]

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        term = scraper_input.search_term or "job"
        posts = [full_post(self.site, term, index) for index in range(2)] + [sparse_post(self.site, term)]
        return posts[: scraper_input.results_wanted]


BOARDS: dict[Site, type[Scraper]] = {
    site: type(f"Offline{site.name.title().replace('_', '')}", (OfflineBoard,), {"site": site}) for site in Site
}


class RaisingBoard(Scraper):
    """A board whose scraper raises, as a broken connection does."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        raise ConnectionError("connection reset by peer")


class BlockedBoard(Scraper):
    """A board that refuses us, reported through JobSpy's own failure path."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        self.fail("429 Too Many Requests: blocked by the board")
        return []


class MistypedBoard(OfflineBoard):
    """A board as a JobSpy upgrade could make it: ``date_posted`` arrives as an epoch number."""

    site = Site.BAYT

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        posts = super().scrape(scraper_input)
        # model_construct skips JobSpy's validation, as a changed model would
        return [JobPost.model_construct(**{**dict(post), "date_posted": 1_764_000_000}) for post in posts]


@contextmanager
def offline(mapping: dict[Site, type[Scraper]] | None = None) -> Iterator[None]:
    """JobSpy's network scrapers replaced (as by :func:`install`) for a while, then put back."""
    saved = dict(jobspy.SCRAPER_MAPPING)
    install(mapping)
    try:
        yield
    finally:
        jobspy.SCRAPER_MAPPING.clear()
        jobspy.SCRAPER_MAPPING.update(saved)


def install(mapping: dict[Site, type[Scraper]] | None = None) -> None:
    """Replace JobSpy's network scrapers by offline boards (all nine answering by default)."""
    jobspy.SCRAPER_MAPPING.update(BOARDS)
    jobspy.SCRAPER_MAPPING.update(mapping or {})


class ProxyRefusedBoard(Scraper):
    """A board whose proxy refused the tunnel, reported with the proxy's url, credentials and all,
    as an HTTP library may write it."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        proxy = scraper_input.proxies[0] if scraper_input.proxies else "no proxy"
        self.fail(f"Cannot connect to proxy http://{proxy}: 407 Proxy Authentication Required")
        return []


class ProxyRaisingBoard(Scraper):
    """A board whose scraper raises with the proxy's url in its message."""

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        proxy = scraper_input.proxies[-1] if scraper_input.proxies else "no proxy"
        raise OSError(f"Tunnel connection failed through socks5://{proxy}")
