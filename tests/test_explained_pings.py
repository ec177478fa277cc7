"""Pings that explain themselves: each job carries its score, verdict, the reasons that decided it and what its
posting did not say; a posting without a description is stored so, and the model is told."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from flows.analyse import analyse
from flows.notify import ping_new_matches
from jobping.analysis import AnalysisResult, JobAnalysis, RemotePolicy, Seniority
from jobping.contract import SCRAPE_PRODUCER, JobPosting, envelope_for, parse_message
from jobping.digest import Digest, Match
from jobping.profile import Profile
from jobping.reasons import Judged, reasons
from jobping.settings import Settings
from jobping.stored import to_row
from standins.servers import StandIn, free_port, received, webhook_receiver
from storage.reader import reader
from tasks.llm.prompt import NO_DESCRIPTION_NOTE
from tests.lakes import write_rows

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from tasks.sqs.queues import Queues

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
PROFILE = """\
wanted_titles = ["data engineer"]
skills = ["python", "sql", "spark", "kafka"]
seniority = ["senior"]
locations = ["berlin", "remote"]
remote = "remote_or_hybrid"
salary_floor_yearly = 70000
salary_currency = "EUR"
"""


def stored(
    key: str, title: str, score: int, *, company: str | None, location: str | None, description: str | None,
    remote: RemotePolicy, skills: list[str], pay: tuple[float, float] | None = None, seniority: Seniority = "senior",
    red_flags: tuple[str, ...] = (),
) -> dict[str, object]:  # fmt: skip
    """The row the analyse run stores of the posting ``key`` ("site:id") and an "apply" of ``score``."""
    site, _, job_id = key.partition(":")
    low, high = pay or (None, None)
    currency, interval = ("EUR", "yearly") if pay else (None, None)
    job = JobPosting(
        id=job_id, site=site, job_url=f"https://{site}.example/{job_id}", title=title, company=company,
        location=location, description=description, min_amount=low, max_amount=high, currency=currency,
        interval=interval,
    )  # fmt: skip
    analysis = JobAnalysis(
        fit_score=score, verdict="apply", seniority=seniority, remote_policy=remote, skills=skills,
        salary_min_yearly=low, salary_max_yearly=high, salary_currency=currency, red_flags=list(red_flags),
        summary=f"{title} judged.",
    )  # fmt: skip
    result = AnalysisResult(analysis=analysis, model="m", prompt_version="p1")
    envelope = envelope_for(job, T0, producer=SCRAPE_PRODUCER)
    return to_row(envelope, result, T0, f"msg-{key}")


ROWS = [
    stored(
        "indeed:1", "Data Engineer", 92, company="ACME", location="Berlin", description="Python, Spark and SQL.",
        remote="hybrid", skills=["python", "spark", "sql", "airflow"], pay=(80_000, 95_000),
    ),
    # the job the issue saw pinged as "Sr. Data Engineer at Remote"
    stored(
        "linkedin:2", "Sr. Data Engineer", 85, company=None, location="Remote", description=None, remote="remote",
        skills=["python"], red_flags=("no salary stated",),
    ),
    stored(
        "stepstone:3", "Analytics Engineer", 81, company="Beta", location=None, description="dbt and SQL.",
        remote="onsite", skills=["sql", "dbt"], red_flags=("on-site outside your locations",),
    ),
]  # fmt: skip
EXPLAINED = {
    "Data Engineer": (
        ["your skills: python, spark, sql", "hybrid, as you want", "pay up to 95k EUR, over your 70k floor"],
        [],
    ),
    "Sr. Data Engineer": (
        ["your skills: python", "remote, as you want", "no salary stated"],
        ["no salary given", "no description", "company not given"],
    ),
    "Analytics Engineer": (
        ["your skills: sql", "senior, as you want", "on-site outside your locations"],
        ["no salary given", "no place given"],
    ),
}


def test_each_job_in_a_digest_carries_its_score_verdict_reasons_and_missing_information(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the profile the analyse run reads is the one the digest explains against (./profile.toml)
    Path("profile.toml").write_text(PROFILE, encoding="utf-8")
    write_rows(settings.lake_dir, ROWS)
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/jobping")
    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        assert asyncio.run(ping_new_matches(Settings())).sent == len(ROWS)
        [payload] = [json.loads(record["body"]) for record in received(url)]

    shown = {match["title"]: match for match in payload["matches"]}
    assert list(shown) == ["Data Engineer", "Sr. Data Engineer", "Analytics Engineer"]
    for title, (why, gaps) in EXPLAINED.items():
        assert (shown[title]["reasons"], shown[title]["missing"]) == (why, gaps), title
    # the old fields are kept: a job with no company is null there, never its place
    assert (shown["Sr. Data Engineer"]["company"], shown["Sr. Data Engineer"]["location"]) == (None, "Remote")
    assert (shown["Sr. Data Engineer"]["fit_score"], shown["Sr. Data Engineer"]["verdict"]) == (85, "apply")

    body = Digest(matches_from(payload)).body("plain")
    paragraph = body.split("\n\n")[1].splitlines()
    assert paragraph[:3] == [
        "85 apply: Sr. Data Engineer (company not given), Remote",
        "  why: your skills: python; remote, as you want; no salary stated",
        "  missing: no salary given, no description",
    ]
    assert " at Remote" not in body
    assert body.split("\n\n")[0].splitlines()[0] == "92 apply: Data Engineer at ACME, Berlin"
    assert "missing" not in body.split("\n\n")[0]
    assert "  missing: no salary given, no place given" in body.split("\n\n")[2].splitlines()


def matches_from(payload: dict[str, Any]) -> list[Match]:
    """The matches of a webhook's JSON, as the digest held them."""
    return [
        Match(**{**match, "first_seen": datetime.fromisoformat(match["first_seen"])}) for match in payload["matches"]
    ]


# titles the stand-in answers "apply" at 80 or more for, with or without a description: every one is pinged
BLANK, ABSENT, GIVEN = "Data Engineer 7", "Data Engineer 13", "Data Engineer 1"


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(240)
def test_a_posting_without_a_description_is_stored_so_the_model_is_told_and_its_ping_says_so(
    settings: Settings, standin: StandIn, sqs: SQSClient, queues: Queues, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/jobping")
    # a bare posting with a blank description; an envelope without one that claims it has one; one with one
    blank = {"title": BLANK, "job_url": "https://jobs.example.com/1", "description": " \n\t "}
    claimed = json.loads(
        envelope_for(JobPosting(title=ABSENT, job_url="https://jobs.example.com/2"), T0).model_dump_json()
    )
    claimed["description_missing"] = False
    given = {"title": GIVEN, "job_url": "https://jobs.example.com/3", "description": "We use Python and SQL."}
    for body in (blank, claimed, given):
        sqs.send_message(QueueUrl=queues.url, MessageBody=json.dumps(body))
    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        report = asyncio.run(analyse())
        payloads = [json.loads(record["body"]) for record in received(url)]
    assert report.stored == 3

    with reader(settings.lake_dir) as con:
        found = con.execute("SELECT title, description_missing FROM enriched_jobs ORDER BY job_url").fetchall()
        jobs = con.execute("SELECT title, description_missing FROM jobs ORDER BY best_job_url").fetchall()
    assert found == jobs == [(BLANK, True), (ABSENT, True), (GIVEN, False)]
    told = {title: NO_DESCRIPTION_NOTE in message for message in standin.user_messages() for title in
            (BLANK, ABSENT, GIVEN) if f'"title": "{title}"' in message}  # fmt: skip
    assert told == {BLANK: True, ABSENT: True, GIVEN: False}

    [payload] = payloads
    missing = {match["title"]: "no description" in match["missing"] for match in payload["matches"]}
    assert missing == {BLANK: True, ABSENT: True, GIVEN: False}


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        ("apply", ["your skills: python", "remote, as you want", "no visa sponsorship"]),
        ("skip", ["no visa sponsorship", "pay up to 50k EUR, under your 70k floor", "your skills: python"]),
    ],
    ids=["apply-for-first", "skip-against-first"],
)
def test_the_reasons_of_an_apply_speak_for_it_first_and_those_of_another_verdict_against_it(
    verdict: str, expected: list[str]
) -> None:
    judged = Judged(
        verdict=verdict, skills=["python", "excel"], remote_policy="remote", seniority="unknown",
        salary_min_yearly=None, salary_max_yearly=50_000, salary_currency="EUR", red_flags=["no visa sponsorship"],
        company="ACME", location="Berlin", is_remote=True, min_amount=None, max_amount=None, description_missing=False,
    )  # fmt: skip
    profile = Profile.model_validate({"skills": ["python"], "remote": "remote_only", "salary_floor_yearly": 70_000,
                                      "salary_currency": "EUR"})  # fmt: skip
    assert reasons(judged, profile) == expected


@pytest.mark.parametrize(
    ("description", "claimed", "missing"),
    [(None, False, True), ("", False, True), (" \n ", False, True), ("Python and SQL.", True, False)],
    ids=["none", "empty", "blank", "given-but-claimed-missing"],
)
def test_description_missing_is_the_posting_s_own_whatever_the_producer_claims(
    description: str | None, claimed: bool, missing: bool
) -> None:
    posting = {"title": "Data Engineer", "job_url": "https://jobs.example.com/1", "description": description}
    envelope = json.loads(envelope_for(JobPosting.model_validate(posting), T0).model_dump_json())
    envelope["description_missing"] = claimed
    assert parse_message(json.dumps(envelope), T0).description_missing is missing
    assert parse_message(json.dumps(posting), T0).description_missing is missing
