"""Hostile probe: a stranger on the queue tries to steer job groups (issue 26, item 4).

Two attacks through the real engine, a real moto server and the lake, judged by the offline analyser:
a one-line decoy with a real job's company, title and place sent before the scrape, and a copy of a
real description with text appended after it. It holds when no scraped posting reuses a decoy's
analysis, every padded copy is judged again, and the jobs view and the digest show the scraped posting.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from jobping.analysis import AnalysisResult
from jobping.contract import JobPosting, encode, envelope_for
from jobping.engine.drain import DrainOptions, drain
from jobping.profile import load_profile
from jobping.settings import NOTIFY_MIN_SCORE, Settings, SqsSettings
from standins.servers import moto_server
from storage.lake import Lake
from storage.pings import new_fitting_matches
from storage.reader import reader
from storage.store import LakeStore, open_lake
from tasks.llm.offline import OfflineAnalyser
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queue import SqsQueue
from tasks.sqs.queues import ensure_queues

# what our scrape flow writes on its envelopes (jobping.contract.SCRAPE_PRODUCER), spelled as on the wire
SCRAPE_PRODUCER = "jobping-scrape"
JOBS = 3
DESCRIPTION = (
    "{company} builds the data platform behind logistics planning for three hundred warehouses. "
    "As a senior data engineer you own our batch and streaming pipelines end to end. "
    "You write Python and SQL every day, run Spark jobs on AWS, schedule them with Airflow, model the "
    "warehouse with dbt, consume Kafka topics, tune PostgreSQL, and keep our Terraform and Docker setup tidy. "
    "We work hybrid from our Berlin office two days a week, and the rest from home. "
    "Salary 85,000 to 100,000 EUR a year, thirty days of holiday and a learning budget."
)
DECOY_LINE = "As a senior data engineer you own our batch and streaming pipelines end to end."
PADDING = " ".join(
    [
        "Before the interview send a scan of your passport and both sides of your identity card.",
        "To set up your salary account we need your bank login, account number and the codes your bank sends you.",
        "Reply within the hour to keep your place, and pay the 49 EUR processing fee by wire transfer.",
    ]
    * 25
)


class CountingAnalyser(OfflineAnalyser):
    """The offline analyser, with each posting it judged noted by its URL."""

    def __init__(self) -> None:
        super().__init__(load_profile(None))
        self.judged: Counter[str] = Counter()

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        self.judged[posting.job_url] += 1
        return await super().analyse(posting)


def real(company: str, n: int) -> JobPosting:
    return JobPosting(
        site="indeed", id=str(n), job_url=f"https://indeed.example/viewjob?jk={n}", title="Senior Data Engineer",
        company=company, location="Berlin, Germany", description=DESCRIPTION.format(company=company),
        min_amount=85_000, max_amount=100_000, currency="EUR", interval="yearly",
    )  # fmt: skip


def scraped(posting: JobPosting) -> str:
    return json.dumps({**json.loads(encode(envelope_for(posting, datetime.now(UTC)))), "producer": SCRAPE_PRODUCER})


def stranger(posting: JobPosting, url: str, description: str) -> str:
    # a bare posting, as any producer with send rights may send it, with the real job's company, title and place
    fields = {"title": posting.title.upper(), "company": posting.company, "location": posting.location}
    return json.dumps({**fields, "job_url": url, "description": description})


def probe(work: Path) -> str:
    analyser = CountingAnalyser()
    with moto_server(work / "moto.log") as url:
        queue_name = f"hijack-{uuid.uuid4().hex[:8]}"
        sqs_settings = SqsSettings.model_validate({"endpoint_url": url, "queue_name": queue_name})
        settings = Settings(data_dir=work / "data", sqs=sqs_settings)
        sqs = make_sqs_client(settings)
        queues = ensure_queues(sqs, settings.sqs)
        lake = open_lake(Lake(str(settings.lake_dir)))
        store = LakeStore(lake)
        queue = SqsQueue(sqs, queues.url, queues.dlq_url, settings.sqs.visibility_timeout_seconds)

        def drained(*bodies: str) -> None:
            for body in bodies:
                sqs.send_message(QueueUrl=queues.url, MessageBody=body)
            report = asyncio.run(drain(queue, store, analyser, options=DrainOptions(receive_wait_seconds=0)))
            if report.stored != len(bodies):
                raise AssertionError(f"{report.stored} of {len(bodies)} postings stored")

        decoyed = [real(f"Decoyed Data {n} GmbH", n) for n in range(1, JOBS + 1)]
        padded_jobs = [real(f"Padded Data {n} GmbH", 100 + n) for n in range(1, JOBS + 1)]
        padded_urls = [f"https://careers-{n}.example/apply" for n in range(1, JOBS + 1)]
        drained(*(stranger(p, f"https://decoy-{i}.example/", DECOY_LINE) for i, p in enumerate(decoyed)))
        drained(*(scraped(p) for p in (*decoyed, *padded_jobs)))
        drained(*(stranger(p, u, f"{p.description} {PADDING}") for p, u in zip(padded_jobs, padded_urls, strict=True)))

        with reader(lake) as con:
            reused = dict(con.execute("SELECT job_url, analysis_of FROM enriched_jobs").fetchall())
            best = {row[0] for row in con.execute("SELECT best_job_url FROM jobs").fetchall()}
            links = {u for row in con.execute("SELECT job_urls FROM jobs").fetchall() for u in row[0]}
            (joined,) = con.execute("SELECT count(*) FILTER (WHERE postings = 2) FROM jobs").fetchone() or (0,)
        _, matches = new_fitting_matches(lake, NOTIFY_MIN_SCORE)

    real_urls = {p.job_url for p in (*decoyed, *padded_jobs)}
    lent = sum(reused[p.job_url] is not None for p in decoyed)
    own = [analyser.judge(p) for p in decoyed]
    judged_again = sum(analyser.judged[u] == 1 and reused[u] is None for u in padded_urls)
    pinged = {u for m in matches for u in m.job_urls}
    strangers_shown = len((best | links | pinged) - real_urls)
    if joined != 2 * JOBS:
        raise AssertionError(f"only {joined} of {2 * JOBS} strangers' postings joined their job's group: no attack")
    if lent:
        raise AssertionError(f"{lent} of {JOBS} scraped postings reused a one-line decoy's analysis")
    if judged_again != JOBS:
        raise AssertionError(f"{JOBS - judged_again} of {JOBS} padded copies reused an analysis that never read them")
    if best != real_urls or strangers_shown:
        raise AssertionError(f"{len(best - real_urls) + strangers_shown} stranger links are best or shown in groups")
    if pinged != real_urls:
        raise AssertionError(f"{len(real_urls - pinged)} of {len(real_urls)} scraped jobs that fit were not pinged")
    scores = sorted({a.fit_score for a in own})
    return (
        f"{JOBS} one-line decoys sent before their jobs, all in their job's group: 0 lent an analysis, "
        f"{JOBS} scraped postings judged on their own (fit {'/'.join(map(str, scores))}, apply); "
        f"{JOBS} copies padded with {len(PADDING):,} characters: {judged_again} judged again, 0 reused; "
        f"best of {len(best)} groups: {len(best)} scraped, 0 strangers; "
        f"{len(pinged)} scraped links pinged, 0 stranger links in the jobs view or the digest"
    )
