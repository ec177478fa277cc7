"""The profile's hard limits hold through the real path: the sample scraped onto a moto queue, the analyse flow
(offline, or the LLM client against the OpenAI stand-in), the lake, and the pings' query of what fits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flows.analyse import analyse
from flows.scrape import scrape
from jobping.profile import load_profile
from jobping.settings import Settings
from standins.servers import StandIn
from storage.lake import Lake
from storage.pings import new_fitting_matches
from storage.reader import reader
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites

pytestmark = pytest.mark.usefixtures("prefect_api")

# the ping's default bar (JOBPING_NOTIFY_MIN_SCORE)
MIN_SCORE = 80
# title words that name a seniority the example profile (mid, senior) does not want
ON_SITE_WORDS = ("on-site", "in person", "not a remote position", "vor ort", "sur site", "en présentiel")
UNWANTED_LEVELS = ("intern", "junior", "associate", "staff", "principal", "lead", "manager", "head of", "director")


def pinged_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every stored posting of each job group the pings would send now."""
    _, matches = new_fitting_matches(Lake(settings.lake_dir), MIN_SCORE)
    groups = [match.job_group for match in matches]
    query = (
        "SELECT title, location, is_remote, work_from_home_type, description, limits_broken FROM enriched_jobs "
        "WHERE coalesce(job_group, job_key) IN (SELECT unnest(?))"
    )
    with reader(settings.lake_dir) as con:
        cursor = con.execute(query, [groups])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def on_site_outside_the_places(row: dict[str, Any]) -> bool:
    """Whether the posting says it is worked on-site, in a place outside the example profile's (berlin,
    amsterdam, london, remote): read here as a person would, without the product's rules."""
    how = (row["work_from_home_type"] or "").lower()
    said = (row["description"] or "").lower()
    remote_or_hybrid = how in ("remote", "hybrid") or row["is_remote"] or "hybrid" in said or "fully remote" in said
    on_site = row["is_remote"] is False or any(words in said for words in ON_SITE_WORDS)
    place = (row["location"] or "").lower()
    outside = bool(place) and not any(city in place for city in ("berlin", "amsterdam", "london"))
    return on_site and not remote_or_hybrid and outside


@pytest.mark.timeout(600)
def test_no_job_pinged_from_the_sample_is_on_site_outside_the_example_profile_s_places(settings: Settings) -> None:
    scrape(ScrapeParameters(source="sample", sites=sample_sites()))
    report = asyncio.run(analyse())
    assert report.balanced
    assert report.offline
    rows = pinged_rows(settings)
    assert rows, "the sample has jobs that fit the example profile"
    assert [row for row in rows if on_site_outside_the_places(row)] == []
    assert all(row["limits_broken"] == [] for row in rows)


@pytest.mark.timeout(600)
def test_an_llm_that_wants_every_job_pings_none_that_breaks_a_hard_limit(settings: Settings, standin: StandIn) -> None:
    standin.configure(answer={"fit_score": 95, "verdict": "apply"})
    scrape(ScrapeParameters(source="sample", sites=["glassdoor"]))
    report = asyncio.run(analyse())
    assert report.balanced
    assert not report.offline
    assert report.stored == standin.stats()["ok"]

    rows = pinged_rows(settings)
    assert rows, "a model that wants every job still has jobs within the limits pinged"
    assert [row for row in rows if on_site_outside_the_places(row)] == []
    assert [row["title"] for row in rows if any(level in row["title"].lower() for level in UNWANTED_LEVELS)] == []

    profile = load_profile(settings.profile_path)
    query = "SELECT title, verdict, fit_score, limits_broken, summary FROM enriched_jobs WHERE len(limits_broken) > 0"
    with reader(settings.lake_dir) as con:
        broken = con.execute(query).fetchall()
    assert broken, "the model's apply meets postings that break the example profile's limits"
    for title, verdict, score, limits, summary in broken:
        # judged skip by the rules, while the analysis keeps the model's own words
        assert (verdict, score < MIN_SCORE) == ("skip", True)
        assert summary == f"{title} judged by the stand-in."
        assert all(isinstance(limit, str) and limit for limit in limits)
    assert any("outside your places" in limit for row in broken for limit in row[3])
    assert profile.seniority
    assert any(limit.startswith("seniority") for row in broken for limit in row[3])
