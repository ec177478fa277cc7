"""Run every benchmark against real local servers and write bench/RESULTS.md.

Figures are medians of several runs, each beside its yardstick measured in the same run;
the machine is shared and noisy, so read ratios rather than absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_LEVEL,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from bench.baseline import one_at_a_time, sample_bodies
from bench.claims import WithAndWithout, claims_section, measure_claim_rates
from bench.grouping import grouping_section, measure_grouping
from bench.lake import LakeTimings, StateTimings, measure
from bench.notify_peak import measure_notify_peaks, pings_section
from bench.publish import PeakMemory, client, environment_for_child, jobping_analyse, peak_memory_mb, publish_rates
from bench.scaling import measure_scaling
from bench.startup import measure_startup, startup_section
from flows.analyse import analyse
from flows.scrape import scrape
from jobping.engine.drain import AnalyseReport, DrainOptions, drain
from jobping.profile import load_profile
from jobping.search import ScrapeParameters
from jobping.settings import Settings
from standins.servers import StandIn, moto_server, openai_standin
from storage.claims import lake_claims
from storage.lake import Lake
from storage.store import LakeStore, open_lake
from tasks.jobspy.source import sample_sites
from tasks.llm.factory import analyser_in_use, make_analyser
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries
from tasks.sqs.queue import SqsQueue
from tasks.sqs.queues import depth, ensure_queues

RESULTS = Path(__file__).parent / "RESULTS.md"
LATENCY_MS = 500
CONCURRENCY = 16
QUEUE_DEPTH = 60
MILLION = 1_000_000
PUBLISH_COUNT = 500
SINGLE_COUNT = 100
MEMORY_POSTINGS = (1_000, 8_000)
# the api's largest page
TASK_RUN_PAGE = 200
MILLION_FILES = 2_000
CLAIM_COUNT = 2_000
# one night of new batches on top of the compacted lake
NIGHT_ROWS = 300
NIGHT_FILES = 30
FEED_INTERVAL_SECONDS = 0.25


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Feeder:
    """Keeps the queue about ``depth`` messages deep until every body is sent.

    moto's server spends time per request that grows with the queue's depth (measured in
    RESULTS.md), which real SQS does not; a shallow queue keeps the emulator's cost out of
    what is measured.
    """

    def __init__(self, settings: Settings, bodies: list[str], depth: int) -> None:
        self.sqs = make_sqs_client(settings)
        self.url = ensure_queues(self.sqs, settings.sqs).url
        self.bodies = list(bodies)
        self.depth = depth
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Feeder:
        self._top_up()
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.thread.join()

    def _top_up(self) -> None:
        missing = self.depth - depth(self.sqs, self.url).visible
        chunk, self.bodies = self.bodies[: max(0, missing)], self.bodies[max(0, missing) :]
        if chunk:
            send_entries(self.sqs, self.url, [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)])

    def _run(self) -> None:
        while self.bodies:
            time.sleep(FEED_INTERVAL_SECONDS)
            self._top_up()


def moto_cost(moto: str) -> dict[int, float]:
    """Milliseconds moto spends on a receive + delete of ten, by queue depth."""
    sqs = client(moto)
    costs: dict[int, float] = {}
    for queued in (50, 500):
        url = sqs.create_queue(QueueName=f"cost-{queued}-{uuid.uuid4().hex[:6]}")["QueueUrl"]
        for _ in range(queued // 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x" * 3000} for i in range(10)])
        started = time.perf_counter()
        rounds = 5
        for _ in range(rounds):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            )
        costs[queued] = (time.perf_counter() - started) / rounds * 1000
    return costs


def fresh_env(base: Path, moto: str, standin: StandIn) -> dict[str, str]:
    run = base / uuid.uuid4().hex[:8]
    return {
        "JOBPING_DATA_DIR": str(run),
        "JOBPING_SQS_ENDPOINT_URL": moto,
        "JOBPING_QUEUE_NAME": f"bench-{run.name}",
        "JOBPING_RECEIVE_WAIT_SECONDS": "0",
        "JOBPING_LLM_CONCURRENCY": str(CONCURRENCY),
        "OPENAI_BASE_URL": standin.url + "/v1",
        "OPENAI_API_KEY": "sk-bench",
    }


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


async def _analyse_state() -> Any:
    return await analyse(return_state=True)


def sqs_requests_per_job(base: Path, moto: str) -> tuple[float, dict[str, int], int, int]:
    """SQS requests a whole scrape + analyse of the sample makes, per stored job, counted on the wire."""

    calls: dict[str, int] = {}

    def count(model: object, **_: object) -> None:
        name = str(getattr(model, "name", "?"))
        calls[name] = calls.get(name, 0) + 1

    env = {
        "JOBPING_DATA_DIR": str(base / uuid.uuid4().hex[:8]),
        "JOBPING_SQS_ENDPOINT_URL": moto,
        "JOBPING_QUEUE_NAME": f"count-{uuid.uuid4().hex[:8]}",
        "JOBPING_RECEIVE_WAIT_SECONDS": "1",
    }

    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call.sqs", count)
    try:
        with environment(env):
            scraped = scrape(ScrapeParameters(source="sample", sites=sample_sites()), return_state=True)
            analysed = asyncio.run(_analyse_state())
            report = analysed.result()
    finally:
        session.events.unregister("before-call.sqs", count)
    runs = [scraped.state_details.flow_run_id, analysed.state_details.flow_run_id]
    with get_client(sync_client=True) as prefect:
        task_runs = 0
        while True:
            page = prefect.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=runs)), limit=TASK_RUN_PAGE, offset=task_runs
            )
            task_runs += len(page)
            if len(page) < TASK_RUN_PAGE:
                break
    calls["(Prefect task runs)"] = 0
    return sum(calls.values()) / report.stored, calls, report.stored, task_runs


def publish_rows(runs: list[dict[str, float]]) -> list[str]:
    names = {"ours": "jobping's publish (encode + size-aware batches)", "bare": "bare boto3 SendMessageBatch loop",
             "single": "one SendMessage per job (the original design)"}  # fmt: skip
    bare = statistics.median(r["bare"] for r in runs)
    rows = []
    for key, label in names.items():
        values = [r[key] for r in runs]
        middle = statistics.median(values)
        rows.append(f"| {label} | {middle:.0f} | {', '.join(f'{v:.0f}' for v in values)} | {middle / bare:.2f} |")
    return rows


# a webhook nobody listens on: the run reads the lake for its digest, then fails to send it (and logs so)
UNANSWERED_WEBHOOK = "http://127.0.0.1:9/jobping"


def analyse_memory(base: Path, moto: str, postings: int, *, notifier: bool = False) -> PeakMemory:
    """Peak MB of one analyse process draining ``postings`` through a shallow queue, with a notifier or without."""

    env = environment_for_child(
        {
            **({"JOBPING_NOTIFY_WEBHOOK_URL": UNANSWERED_WEBHOOK} if notifier else {}),
            "JOBPING_DATA_DIR": str(base / uuid.uuid4().hex[:8]),
            "JOBPING_SQS_ENDPOINT_URL": moto,
            "JOBPING_QUEUE_NAME": f"mem-{uuid.uuid4().hex[:8]}",
            "JOBPING_RECEIVE_WAIT_SECONDS": "5",
            # the harness's server lives in Prefect's settings, not in os.environ; an empty url
            # would leave the child's events worker failing on every event
            "PREFECT_API_URL": str(PREFECT_API_URL.value() or ""),
        }
    )
    with environment({k: v for k, v in env.items() if k.startswith("JOBPING_")}):
        settings = Settings()
        with Feeder(settings, sample_bodies(postings), QUEUE_DEPTH):
            return peak_memory_mb(env, jobping_analyse())


def million_section(m: LakeTimings) -> list[str]:
    def rows(state: StateTimings) -> list[str]:
        return [
            f"| {name} | {view:.3f} | {bare:.3f} | {view / bare:.2f}x | {shell:.3f} | {shell_bare:.3f} "
            f"| {shell / shell_bare:.2f}x |"
            for (name, (view, bare)), (shell, shell_bare) in zip(
                state.reader.items(), state.catalog.values(), strict=True
            )
        ]

    def table(state: StateTimings) -> list[str]:
        return [
            "| query | `jobping sql` view (s) | bare scan (s) | ratio | catalog file view (s) | bare (s) | ratio |",
            "|---|---|---|---|---|---|---|",
            *rows(state),
            "",
            f"Opening a reader: {state.opening:.2f} s.",
        ]

    worst, steady = m.compacted.worst, m.maintained.worst
    shell = max(view / bare for state in (m.maintained, m.compacted) for view, bare in state.catalog.values())
    return [
        f"{MILLION:,} generated rows (synthetic, {m.jobs:,} distinct jobs) appended as {m.batch_files:,} Delta commits",
        "over 30 days, as analyse writes them. Median seconds of each query through the `enriched_jobs` view",
        "(latest row per job_key) and on a bare `delta_scan` of the same snapshot, with no deduplication",
        "(goal: the view at most 1.5x the bare scan). Two sets of views: those of `jobping sql`",
        "(storage.catalog.reader: what the flows, the pings and the CLI read), which pin the snapshot of the moment",
        "they open; and those of the catalog file a DuckDB shell opens, which read each table's newest snapshot at",
        "every query. Opening a reader probes every data file, and holds the rows analysed since the last",
        "maintenance, deduplicated once.",
        "",
        f"Before any maintenance ({m.batch_files:,} commits, no latest table: the views deduplicate the history):",
        "",
        *table(m.batches),
        "",
        f"Right after `jobping compact` ({m.compaction_seconds:.1f} s for the million rows: the merge into the",
        "latest table, optimize, checkpoint, and vacuum with the retention set to 0 for the bench; "
        f"{m.files_after} data",
        "files left in the two tables). The bare scan reads the latest table and the history rows the view adds",
        "to it (those of the last hour before its newest row, which the merge holds already):",
        "",
        *table(m.maintained),
        "",
        f"Then one night's new commits on top ({m.night_rows} rows in {m.night_files} commits, half of them jobs",
        "analysed again), before the next maintenance merges them:",
        "",
        *table(m.compacted),
        "",
        f"`jobping sql`'s views, worst ratio with the night on top: {worst:.2f}x; right after maintenance: "
        f"{steady:.2f}x " + ("(goal met)." if max(worst, steady) <= 1.5 else "(goal NOT met for every query)."),
        "They join the latest table, less the jobs analysed since, with those rows held by the reader: filters and",
        "columns reach the latest table's scan, and the history is not read again; the bare scan reads the rows since",
        "the merge from the history at every query, which is why a ratio can be below 1.",
        f"The catalog file's views, worst ratio after maintenance: {shell:.2f}x"
        + (" (goal met)." if shell <= 1.5 else " (over the goal)."),
        "A live view must read the history once per query, or two scans could see two snapshots: it joins the latest",
        "table to the recent rows and picks each column per row, so a filter applies after the join, and the query",
        "that filters most (new matches today) pays most.",
        "",
    ]


def peak(runs: list[PeakMemory]) -> float:
    return statistics.median(mb.resident for mb in runs)


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--postings", type=int, default=640, help="postings per analyse run")
    parser.add_argument("--baseline-postings", type=int, default=20, help="postings per one-at-a-time run")
    parser.add_argument("--startup-runs", type=int, default=5, help="runs per start-up figure")
    parser.add_argument("--scale-postings", type=int, default=2_000, help="postings per autoscaling burst")
    parser.add_argument("--pickups", type=int, default=10, help="single postings timed from send to stored")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="jobping-bench-") as tmp:
        base = Path(tmp)
        print(f"start-up: {args.startup_runs} runs of each command on a warm machine", flush=True)
        startup = measure_startup(base, args.startup_runs)
        with (
            moto_server(base / "moto.log") as moto,
            openai_standin(base / "standin.log") as standin_url,
            prefect_test_harness(server_startup_timeout=90),
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_LEVEL: "WARNING"}),
        ):
            print("a million enriched rows: three queries through the views and on a bare scan", flush=True)
            lake = base / "million"
            million = measure(
                lake, MILLION, MILLION_FILES, night_rows=NIGHT_ROWS, night_files=NIGHT_FILES, runs=args.runs
            )
            emulator = moto_cost(moto)
            print("SQS requests for a whole scrape + analyse of the sample", flush=True)
            per_job, by_call, jobs, task_runs = sqs_requests_per_job(base, moto)
            by_call.pop("(Prefect task runs)", None)
            print("publish throughput against a bare loop and one SendMessage per job", flush=True)
            publishing = [publish_rates(moto, PUBLISH_COUNT, SINGLE_COUNT) for _ in range(args.runs)]
            print("peak memory of analyse at 1,000 and 8,000 postings, without and with a notifier", flush=True)
            # the file-backed share of a single run's peak moves by ~15 MB from run to run
            memory = {n: [analyse_memory(base, moto, n) for _ in range(args.runs)] for n in MEMORY_POSTINGS}
            notifying = {n: analyse_memory(base, moto, n, notifier=True) for n in MEMORY_POSTINGS}
            print("peak memory of analyse with a notifier (a webhook receiver) and without, in turn", flush=True)
            pings = measure_notify_peaks(base, moto, args.runs)
            standin = StandIn(standin_url)
            standin.configure(latency_ms=LATENCY_MS)
            print(f"analyse throughput: {args.runs} runs of {args.postings} postings at {LATENCY_MS} ms", flush=True)
            ours, our_runs = median_of(args.runs, lambda: analyse_throughput(base, moto, standin, args.postings))
            print(f"one-at-a-time consumer: {args.runs} runs of {args.baseline_postings} postings", flush=True)
            theirs, their_runs = median_of(
                args.runs, lambda: baseline_throughput(base, moto, standin, args.baseline_postings)
            )
            print(f"claims: {args.runs} drains of {args.postings} postings with claims and without", flush=True)
            claims = claims_cost(base, moto, standin, args.postings, args.runs)
            print("job groups: the sample through the stand-in LLM", flush=True)
            reuse = sample_reuse(base, moto, standin)
            scaling = measure_scaling(base, standin, args.scale_postings, args.pickups, CONCURRENCY)
        print("job groups: the labelled set", flush=True)
        grouping = measure_grouping()
    ceiling = CONCURRENCY / (LATENCY_MS / 1000)
    lines = [
        "# jobping benchmarks",
        "",
        f"Written by `make bench` (bench/run.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}.",
        "Every figure is the median of the runs shown, measured beside its yardstick in the same run,",
        "against a real moto server process and the local OpenAI stand-in (synthetic postings from the sample).",
        "",
        *startup_section(startup),
        "## SQS requests per job",
        "",
        f"A whole scrape + analyse of the bundled sample ({jobs} jobs stored), every SQS call counted as the",
        "client makes it (botocore's before-call event):",
        "",
        "| what | requests per stored job |",
        "|---|---|",
        f"| jobping (goal at most 0.35) | {per_job:.3f} |",
        "| the original design: one SendMessage, one ReceiveMessage, one DeleteMessage per job | 3 |",
        "",
        "By call: " + ", ".join(f"{name} {n}" for name, n in sorted(by_call.items(), key=lambda kv: -kv[1])) + ".",
        "",
        f"Prefect task runs: {task_runs} for {jobs} jobs, {task_runs / jobs * 1000:.0f} per 1,000 jobs "
        "(one per site, one to normalise, one to publish, one per batch of ten).",
        "",
        "## Publishing",
        "",
        f"Messages per second to the same moto server, each on a fresh queue ({PUBLISH_COUNT} messages; "
        f"one SendMessage per job on {SINGLE_COUNT}):",
        "",
        "| what | messages/s (median) | runs | against the bare loop |",
        "|---|---|---|---|",
        *publish_rows(publishing),
        "",
        "## Memory",
        "",
        "Peak resident memory (VmHWM) of a `jobping analyse` process with the offline analyser, the queue kept",
        f"about {QUEUE_DEPTH} deep by the feeder until every posting is through (goal: 8,000 within 1.2x of 1,000, "
        "under 600 MB):",
        "",
        "| postings | peak MB (median) | runs | of it, anonymous (heap) MB | with a notifier (one run): peak MB "
        "| anonymous MB |",
        "|---|---|---|---|---|---|",
        *[
            f"| {n:,} | {peak(runs):.0f} | {', '.join(f'{mb.resident:.0f}' for mb in runs)} "
            f"| {statistics.median(mb.anonymous for mb in runs):.0f} | {notifying[n].resident:.0f} "
            f"| {notifying[n].anonymous:.0f} |"
            for n, runs in memory.items()
        ],
        "",
        f"Ratio 8,000 / 1,000: {peak(memory[MEMORY_POSTINGS[-1]]) / peak(memory[MEMORY_POSTINGS[0]]):.2f}. "
        "The rest of the resident memory is mapped from files: the code of the native libraries",
        "(polars and delta-rs; it never loads DuckDB), which processes share and the kernel can drop and read again.",
        "With a notifier (a webhook nobody listens on), the run ends by reading the lake for its digest and fails",
        "to send it; the next section measures a notifier that answers.",
        "",
        *pings_section(pings),
        "## A million enriched rows",
        "",
        *million_section(million),
        "## Analyse throughput",
        "",
        f"The OpenAI stand-in answers every request after {LATENCY_MS} ms; concurrency {CONCURRENCY}.",
        "",
        "| what | postings/s (median) | runs | against concurrency / latency |",
        "|---|---|---|---|",
        f"| analyse flow ({args.postings} postings) | {ours:.1f} | {', '.join(f'{v:.1f}' for v in our_runs)} "
        f"| {ours / ceiling:.2f} of {ceiling:.0f}/s |",
        f"| one-at-a-time consumer, the original design ({args.baseline_postings} postings) | {theirs:.2f} "
        f"| {', '.join(f'{v:.2f}' for v in their_runs)} | {theirs / ceiling:.3f} of {ceiling:.0f}/s |",
        "",
        f"The analyse flow is {ours / theirs:.1f}x the one-at-a-time consumer; "
        f"goal: at least 0.9 of concurrency / latency, measured {ours / ceiling:.2f}.",
        "",
        f"A feeder keeps the queue about {QUEUE_DEPTH} messages deep during both measurements: moto's server, the",
        "SQS emulator here, spends time per request that grows with the queue's depth, which real SQS does not.",
        f"Measured in this run, one receive + delete of ten: {emulator[50]:.0f} ms with 50 queued, "
        f"{emulator[500]:.0f} ms with 500 queued.",
        "",
        *claims_section(claims),
        *scaling,
        *grouping_section(grouping),
        f"The bundled sample scraped and analysed through the stand-in LLM: {reuse.stored} postings stored with "
        f"{reuse.llm_requests} LLM requests; {reuse.reused} took the analysis of the same job on another board "
        f"({reuse.reused / reuse.stored:.1%} of the requests saved).",
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
