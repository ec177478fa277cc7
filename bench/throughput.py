"""Throughput of the analyse flow and of the engine's drain, against a feeder-kept shallow queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.baseline import one_at_a_time, sample_bodies
from bench.claims import WithAndWithout, measure_claim_rates
from bench.harness import CONCURRENCY, LATENCY_MS, QUEUE_DEPTH, Feeder, environment, fresh_env
from flows.analyse import analyse
from flows.scrape import scrape
from jobping.engine.drain import AnalyseReport, DrainOptions, drain
from jobping.profile import load_profile
from jobping.settings import Settings
from standins.servers import StandIn
from storage.claims import lake_claims
from storage.lake import Lake
from storage.store import LakeStore, open_lake
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites
from tasks.llm.factory import analyser_in_use, make_analyser
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queue import SqsQueue
from tasks.sqs.queues import ensure_queues

CLAIM_COUNT = 2_000


def analyse_throughput(base: Path, moto: str, standin: StandIn, postings: int) -> float:
    """Postings per second of the analyse flow's drain, with the stand-in at LATENCY_MS."""

    with environment(fresh_env(base, moto, standin)), Feeder(Settings(), sample_bodies(postings), QUEUE_DEPTH):
        report = asyncio.run(analyse())
    if report.stored != postings:
        raise RuntimeError(f"stored {report.stored} of {postings}")
    return report.stored / report.seconds


def drain_throughput(base: Path, moto: str, standin: StandIn, postings: int, *, claims: bool) -> float:
    """Postings per second of the engine's drain over the flow's real parts, with the shared claims or without."""

    async def run(settings: Settings) -> AnalyseReport:
        sqs = make_sqs_client(settings)
        queues = ensure_queues(sqs, settings.sqs)
        queue = SqsQueue(sqs, queues.url, queues.dlq_url, settings.sqs.visibility_timeout_seconds)
        lake = open_lake(Lake.from_settings(settings))
        options = DrainOptions(receive_wait_seconds=0, concurrency=CONCURRENCY)
        async with analyser_in_use(make_analyser(settings.llm, load_profile(settings.profile_path))) as analyser:
            record = lake_claims(lake) if claims else None
            return await drain(queue, LakeStore(lake), analyser, options=options, claims=record)

    with environment(fresh_env(base, moto, standin)):
        settings = Settings()
        with Feeder(settings, sample_bodies(postings), QUEUE_DEPTH):
            report = asyncio.run(run(settings))
    if report.stored != postings:
        raise RuntimeError(f"stored {report.stored} of {postings}")
    return report.stored / report.seconds


def claims_cost(base: Path, moto: str, standin: StandIn, postings: int, runs: int) -> WithAndWithout:
    """Claims per second on a local lake, and the drain with claims and without, in turn."""
    with_claims, without = [], []
    for _ in range(runs):
        with_claims.append(drain_throughput(base, moto, standin, postings, claims=True))
        without.append(drain_throughput(base, moto, standin, postings, claims=False))
    rates = [measure_claim_rates(base / uuid.uuid4().hex[:8], CLAIM_COUNT) for _ in range(runs)]
    return WithAndWithout(postings, LATENCY_MS, CONCURRENCY, with_claims, without, rates)


def baseline_throughput(base: Path, moto: str, standin: StandIn, postings: int) -> float:
    """Postings per second of the one-at-a-time consumer on the same servers."""

    with environment(fresh_env(base, moto, standin)):
        settings = Settings()
        sqs = make_sqs_client(settings)
        queues = ensure_queues(sqs, settings.sqs)
        analyser = make_analyser(settings.llm, load_profile(settings.profile_path))
        with Feeder(settings, sample_bodies(postings), QUEUE_DEPTH):
            started = time.perf_counter()
            done = asyncio.run(one_at_a_time(sqs, queues.url, analyser, settings.lake_dir, postings))
            elapsed = time.perf_counter() - started
    return done / elapsed


@dataclass(frozen=True)
class SampleReuse:
    stored: int
    reused: int
    llm_requests: int


def sample_reuse(base: Path, moto: str, standin: StandIn) -> SampleReuse:
    """The bundled sample scraped and analysed through the stand-in LLM: how many requests job groups saved."""
    before = int(standin.stats().get("ok", 0))
    with environment(fresh_env(base, moto, standin)):
        scrape(ScrapeParameters(source="sample", sites=sample_sites()))
        report = asyncio.run(analyse())
    return SampleReuse(report.stored, report.reused, int(standin.stats().get("ok", 0)) - before)
