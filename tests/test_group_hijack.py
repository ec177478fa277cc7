"""Groups cannot be steered by a stranger on the queue: through the real drain, a real SQS queue and the lake.

A posting another producer sends may join a scraped job's group, but its analysis is never lent to
the scraped posting, an analysis is reused only for text it read, and the group's best (the jobs
view, the digest) is the scraped posting.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from flows.scrape import scrape
from jobping.analysis import AnalysisResult
from jobping.contract import SCRAPE_PRODUCER, Envelope, JobPosting, encode, envelope_for
from jobping.engine.drain import DrainOptions, drain
from jobping.engine.ports import Analysed, Grouping, StoredVersion
from jobping.profile import load_profile
from jobping.settings import Settings
from jobping.stored import to_row
from storage.delta import DeltaHistory
from storage.lake import Lake
from storage.pings import new_fitting_matches, top_matches_since
from storage.reader import reader
from storage.store import LakeStore, open_lake, stored_versions
from tasks.jobspy.search import ScrapeParameters
from tasks.llm.offline import OfflineAnalyser
from tasks.sqs.messages import receive
from tasks.sqs.queue import SqsQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from tasks.sqs.queues import Queues

REAL_DESCRIPTION = (
    "Acme Analytics builds the data platform behind logistics planning for three hundred warehouses. "
    "As a senior data engineer you own our batch and streaming pipelines end to end. "
    "You write Python and SQL every day, run Spark jobs on AWS, schedule them with Airflow, model the "
    "warehouse with dbt, consume Kafka topics, tune PostgreSQL, and keep our Terraform and Docker setup tidy. "
    "We work hybrid from our Berlin office two days a week, and the rest from home. "
    "You mentor two mid level engineers and review designs with the analytics team. "
    "Salary 85,000 to 100,000 EUR a year, thirty days of holiday and a learning budget."
)
# what a stranger asks of those who apply, appended to the real text: no model must take it for the real job's
PADDING = " ".join(
    [
        "Before the interview send a scan of your passport and both sides of your identity card.",
        "To set up your salary account we need your bank login, account number and the codes your bank sends you.",
        "Reply within the hour to keep your place, and pay the 49 EUR processing fee by wire transfer.",
    ]
    * 25
)
MIN_SCORE = 80


def real_posting(site: str = "indeed", n: int = 1) -> JobPosting:
    return JobPosting(
        site=site, id=str(n), job_url=f"https://{site}.example/viewjob?jk={n}", title="Senior Data Engineer",
        company="Acme Analytics GmbH", location="Berlin, Germany", description=REAL_DESCRIPTION,
        min_amount=85_000, max_amount=100_000, currency="EUR", interval="yearly",
    )  # fmt: skip


def scraped(posting: JobPosting, at: datetime) -> str:
    """The body our scrape flow would send for ``posting``."""
    return encode(envelope_for(posting, at, producer=SCRAPE_PRODUCER))


def outsider(**fields: object) -> str:
    """A bare posting from another producer, in jobspy's field names, claiming the real job's company and place."""
    posting = {"title": "Senior Data Engineer", "company": "Acme Analytics", "location": "Berlin, Germany", **fields}
    return json.dumps(posting)


class CountingAnalyser(OfflineAnalyser):
    """The offline analyser, with each posting it judged noted by its URL."""

    def __init__(self) -> None:
        super().__init__(load_profile(None))
        self.judged: Counter[str] = Counter()

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        self.judged[posting.job_url] += 1
        return await super().analyse(posting)


def drained(settings: Settings, sqs: SQSClient, queues: Queues, analyser: CountingAnalyser, *bodies: str) -> None:
    """Send ``bodies``, then drain the queue through the real engine into the lake."""
    for body in bodies:
        sqs.send_message(QueueUrl=queues.url, MessageBody=body)
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, settings.sqs.visibility_timeout_seconds)
    store = LakeStore(open_lake(Lake.from_settings(settings)))
    report = asyncio.run(drain(queue, store, analyser, options=DrainOptions(receive_wait_seconds=0)))
    assert report.balanced
    assert report.stored == len(bodies)


def rows(settings: Settings, query: str, *params: object) -> list[tuple[object, ...]]:
    with reader(settings.lake_dir) as con:
        return con.execute(query, list(params)).fetchall()


def test_a_one_line_posting_sent_first_lends_its_analysis_to_no_scraped_posting_which_pings_on_its_own(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    # one line of the real text: containment over the smaller text calls it the same job
    line = "As a senior data engineer you own our batch and streaming pipelines end to end."
    assert line in REAL_DESCRIPTION
    decoy = outsider(job_url="https://jobs.example/acme-berlin", description=line)
    drained(settings, sqs, queues, analyser, decoy)
    real = real_posting()
    own = analyser.judge(real)
    assert (own.verdict, own.fit_score >= MIN_SCORE) == ("apply", True)

    drained(settings, sqs, queues, analyser, scraped(real, now))
    assert analyser.judged[real.job_url] == 1
    [(group, analysis_of, fit, verdict)] = rows(
        settings, "SELECT job_group, analysis_of, fit_score, verdict FROM enriched_jobs WHERE job_key = 'indeed:1'"
    )
    assert (analysis_of, fit, verdict) == (None, own.fit_score, "apply")
    # one job in the stranger's eyes, and still: the group's best is the scraped posting, which pings
    [(best, url)] = rows(settings, "SELECT best_job_key, best_job_url FROM jobs WHERE job_group = ?", group)
    assert (best, url) == ("indeed:1", real.job_url)
    _, matches = new_fitting_matches(Lake.from_settings(settings), MIN_SCORE)
    assert [(m.title, m.fit_score, m.job_urls) for m in matches] == [(real.title, own.fit_score, [real.job_url])]
    # a later scrape calls it stored: its stored analysis read its text
    sent = envelope_for(real, now)
    assert StoredVersion(sent.job_key, sent.content_hash, analyser.prompt_version) in stored_versions(
        Lake.from_settings(settings)
    )


def test_a_real_description_with_text_appended_is_judged_again_and_never_becomes_the_groups_best(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    real = real_posting()
    drained(settings, sqs, queues, analyser, scraped(real, now))
    padded_url = "https://careers-acme.example/apply"
    padded = outsider(
        job_url=padded_url, title="SENIOR DATA ENGINEER (m/w/d)", description=REAL_DESCRIPTION + " " + PADDING
    )
    assert len(PADDING) > 7_000
    since = datetime.now(UTC)
    drained(settings, sqs, queues, analyser, padded)

    # no analysis read the appended text: it is judged on its own
    assert analyser.judged[padded_url] == 1
    [(analysis_of, padded_group)] = rows(
        settings, "SELECT analysis_of, job_group FROM enriched_jobs WHERE job_url = ?", padded_url
    )
    assert analysis_of is None
    [(real_group,)] = rows(settings, "SELECT job_group FROM enriched_jobs WHERE job_key = 'indeed:1'")
    assert padded_group == real_group
    [(best, url, title, job_urls)] = rows(
        settings, "SELECT best_job_key, best_job_url, title, job_urls FROM jobs WHERE job_group = ?", real_group
    )
    assert (best, url, title, job_urls) == ("indeed:1", real.job_url, real.title, [real.job_url])
    _, matches = new_fitting_matches(Lake.from_settings(settings), MIN_SCORE)
    assert [(m.title, m.job_urls) for m in matches] == [(real.title, [real.job_url])]
    # the run's top matches since the stranger's posting came: its group, shown by the scraped posting
    top = top_matches_since(Lake.from_settings(settings), since, 10)
    assert [(t.title, t.job_url) for t in top] == [(real.title, real.job_url)]


def test_a_scraped_copy_cut_short_reuses_the_fuller_ones_analysis_and_the_first_seen_stays_best(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    full, short = real_posting("indeed", 1), real_posting("glassdoor", 2)
    short = short.model_copy(update={"description": REAL_DESCRIPTION[: len(REAL_DESCRIPTION) // 2]})
    drained(settings, sqs, queues, analyser, scraped(full, now - timedelta(hours=1)))
    drained(settings, sqs, queues, analyser, scraped(short, now))
    assert (analyser.judged[full.job_url], analyser.judged[short.job_url]) == (1, 0)
    [(analysis_of,)] = rows(settings, "SELECT analysis_of FROM enriched_jobs WHERE job_key = 'glassdoor:2'")
    assert analysis_of == "indeed:1"
    # the two tie on the one analysis; the copy analysed later does not displace the posting seen first
    [(best, postings)] = rows(settings, "SELECT best_job_key, postings FROM jobs")
    assert (best, postings) == ("indeed:1", 2)


def test_a_fuller_copy_does_not_reuse_the_analysis_of_one_cut_short(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    full, short = real_posting("indeed", 1), real_posting("glassdoor", 2)
    short = short.model_copy(update={"description": REAL_DESCRIPTION[: len(REAL_DESCRIPTION) // 2]})
    drained(settings, sqs, queues, analyser, scraped(short, now))
    drained(settings, sqs, queues, analyser, scraped(full, now))
    assert (analyser.judged[short.job_url], analyser.judged[full.job_url]) == (1, 1)
    assert rows(settings, "SELECT count(analysis_of) FROM enriched_jobs") == [(0,)]


def test_a_row_that_reused_an_analysis_before_reuse_was_checked_is_not_already_stored(tmp_path: Path) -> None:
    lake = open_lake(Lake(tmp_path / "lake"))
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    real = envelope_for(real_posting(), now, producer=SCRAPE_PRODUCER)
    result = asyncio.run(analyser.analyse(real.posting))
    checked = to_row(real, result, now, "m1")
    # as a release before producers were kept wrote it: reused, with no producer
    reused = to_row(envelope_for(real_posting("glassdoor", 2), now), result, now, "m2")
    unchecked = reused | {"analysis_of": "indeed:1", "producer": None}
    DeltaHistory(lake).append([checked, unchecked])  # type: ignore[list-item]
    assert {v.job_key for v in stored_versions(lake)} == {"indeed:1"}


@pytest.mark.usefixtures("prefect_api")
def test_the_scrape_flow_marks_every_posting_it_publishes_as_its_own(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    report = scrape(ScrapeParameters(source="sample", sites=["google"]))
    bodies = [json.loads(message.body) for message in receive(sqs, queues.url, max_messages=10, wait_seconds=0)]
    assert report.published >= len(bodies) > 0
    assert {body["producer"] for body in bodies} == {SCRAPE_PRODUCER}
    assert all(Envelope.model_validate(body).scraped for body in bodies)


def test_a_posting_of_another_producer_with_a_better_analysis_is_not_the_best_of_a_scraped_group(
    tmp_path: Path,
) -> None:
    lake = open_lake(Lake(tmp_path / "lake"))
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    ours = envelope_for(real_posting(), now, producer=SCRAPE_PRODUCER)
    theirs = envelope_for(real_posting("board", 7).model_copy(update={"job_url": "https://evil.example/"}), now)
    result = asyncio.run(analyser.analyse(ours.posting))
    fit = result.analysis.fit_score
    assert fit >= MIN_SCORE + 1
    # ours fits by one point less than theirs, and theirs is the newer analysis
    ours_result = result.model_copy(update={"analysis": result.analysis.model_copy(update={"fit_score": fit - 1})})
    group = Grouping("k", "k")
    LakeStore(lake).write([Analysed(ours, ours_result, now, "m1", group)])
    LakeStore(lake).write([Analysed(theirs, result, now + timedelta(minutes=1), "m2", group)])
    with reader(lake) as con:
        shown = con.execute("SELECT best_job_key, fit_score, job_urls, postings FROM jobs").fetchall()
    assert shown == [("indeed:1", fit - 1, [ours.posting.job_url], 2)]
    _, matches = new_fitting_matches(lake, MIN_SCORE)
    assert [(m.fit_score, m.job_urls) for m in matches] == [(fit - 1, [ours.posting.job_url])]


def test_a_stranger_s_copy_of_a_job_under_its_key_with_another_link_sent_first_does_not_make_it_stored(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    analyser, now = CountingAnalyser(), datetime.now(UTC)
    real = real_posting()
    # the same site, id and text: the same job_key and content hash, only the link is the stranger's
    copy = real.model_copy(update={"job_url": "https://evil.example/indeed-viewjob-1"})
    assert envelope_for(copy, now).content_hash == envelope_for(real, now).content_hash
    drained(settings, sqs, queues, analyser, encode(envelope_for(copy, now - timedelta(hours=1))))
    lake = Lake.from_settings(settings)

    # the scrape does not call the real posting stored, and the drain stores a row of ours for it
    sent = envelope_for(real, now, producer=SCRAPE_PRODUCER)
    mine = StoredVersion(sent.job_key, sent.content_hash, analyser.prompt_version, scraped=True)
    assert mine not in stored_versions(lake)
    drained(settings, sqs, queues, analyser, scraped(real, now))
    assert mine in stored_versions(lake)
    [(url,)] = rows(settings, "SELECT job_url FROM enriched_jobs WHERE job_key = 'indeed:1'")
    assert url == real.job_url
    [(best_url, job_urls)] = rows(settings, "SELECT best_job_url, job_urls FROM jobs")
    assert (best_url, job_urls) == (real.job_url, [real.job_url])
    # and the stranger's copy sent again is stored already: a row of ours holds its content
    drained_again = envelope_for(copy, now + timedelta(minutes=1))
    assert StoredVersion(drained_again.job_key, drained_again.content_hash, analyser.prompt_version) in (
        stored_versions(lake)
    )
