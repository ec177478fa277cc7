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
import uuid
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

from bench.baseline import sample_bodies
from bench.claims import claims_section
from bench.deep_queue import DEEP_POSTINGS, deep_queue_section, measure_deep_queue
from bench.eval import eval_section, measure_eval
from bench.grouping import grouping_section, measure_grouping
from bench.harness import CONCURRENCY, LATENCY_MS, QUEUE_DEPTH, RESULTS, Feeder, environment, median_of, moto_cost
from bench.lake import measure
from bench.million import MILLION, million_section
from bench.notify_peak import measure_notify_peaks, pings_section
from bench.publish import PeakMemory, environment_for_child, jobping_analyse, peak_memory_mb, publish_rates
from bench.scaling import measure_scaling
from bench.startup import measure_startup, startup_section
from bench.throughput import analyse_throughput, baseline_throughput, claims_cost, sample_reuse
from flows.analyse import analyse
from flows.scrape import scrape
from jobping.settings import Settings
from standins.servers import StandIn, moto_server, openai_standin
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites

PUBLISH_COUNT = 500
SINGLE_COUNT = 100
MEMORY_POSTINGS = (1_000, 8_000)
# the api's largest page
TASK_RUN_PAGE = 200
MILLION_FILES = 2_000
# one night of new batches on top of the compacted lake
NIGHT_ROWS = 300
NIGHT_FILES = 30


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


def peak(runs: list[PeakMemory]) -> float:
    return statistics.median(mb.resident for mb in runs)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--postings", type=int, default=640, help="postings per analyse run")
    parser.add_argument("--baseline-postings", type=int, default=20, help="postings per one-at-a-time run")
    parser.add_argument("--startup-runs", type=int, default=5, help="runs per start-up figure")
    parser.add_argument("--scale-postings", type=int, default=2_000, help="postings per autoscaling burst")
    parser.add_argument("--deep-postings", type=int, default=DEEP_POSTINGS, help="postings queued at once")
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
            print(f"deep queue: {args.runs} runs of {args.deep_postings} postings queued at once", flush=True)
            deep = measure_deep_queue(base, moto, standin, args.deep_postings, args.runs)
            standin.configure(latency_ms=LATENCY_MS)
            print(f"one-at-a-time consumer: {args.runs} runs of {args.baseline_postings} postings", flush=True)
            theirs, their_runs = median_of(
                args.runs, lambda: baseline_throughput(base, moto, standin, args.baseline_postings)
            )
            print(f"claims: {args.runs} drains of {args.postings} postings with claims and without", flush=True)
            claims = claims_cost(base, moto, standin, args.postings, args.runs)
            print("job groups: the sample through the stand-in LLM", flush=True)
            reuse = sample_reuse(base, moto, standin)
            print("the labelled set: offline, then through the stand-in LLM", flush=True)
            evals = measure_eval(standin, args.runs)
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
        *eval_section(evals),
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
        *deep_queue_section(deep),
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
