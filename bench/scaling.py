"""The autoscaler on a whole local stack: `jobping stack up` with the OpenAI stand-in.

A burst of postings is sent with boto3, as any producer would, and the stack is watched from
outside: the lake's rows, the analyse runs in the Prefect API, the stand-in's count of requests
in flight. Nothing inside jobping is timed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

from bench.baseline import sample_bodies
from standins.servers import StandIn, free_port
from storage.reader import reader
from tasks.sqs.client import EMULATOR_CREDENTIALS

JOBPING = str(Path(sys.executable).parent / "jobping")
BENCH_KEY = "sk-jobping-bench-" + "0" * 32
# how long one figure may take before the bench gives up on it
DEADLINE_SECONDS = 900.0
WATCH_SECONDS = 0.5


@dataclass(frozen=True)
class Burst:
    """One burst drained by the stack: how fast, how many runs, and the stand-in's peak in flight."""

    postings: int
    seconds_to_stored: float
    analysis_rate: float
    runs: int
    most_running: int
    max_in_flight: int
    second_running_after: float | None
    to_zero_seconds: float


@dataclass(frozen=True)
class Pickup:
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def worst(self) -> float:
        return max(self.seconds)


class LocalStack:
    """A `jobping stack up` in its own data dir and ports, pointed at the stand-in."""

    def __init__(
        self, base: Path, standin: StandIn, *, max_consumers: int, global_limit: int, shared: bool = True
    ) -> None:
        self.data = base / f"stack-{max_consumers}-{shared}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
        self.env |= {
            "JOBPING_DATA_DIR": str(self.data),
            "JOBPING_PREFECT_PORT": str(free_port()),
            "JOBPING_EMULATOR_PORT": str(free_port()),
            "JOBPING_MAX_CONSUMERS": str(max_consumers),
            "JOBPING_LLM_CONCURRENCY": str(global_limit),
            "OPENAI_BASE_URL": standin.url + "/v1",
            "OPENAI_API_KEY": BENCH_KEY,
        }
        if not shared:
            # each process's own bound only
            self.env["JOBPING_LLM_GLOBAL_LIMIT"] = ""
        self.api = f"http://127.0.0.1:{self.env['JOBPING_PREFECT_PORT']}/api"
        self.standin = standin

    def command(self, *args: str) -> None:
        done = subprocess.run([JOBPING, *args], env=self.env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"jobping {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def client(self) -> SyncPrefectClient:
        auth = (self.data / "prefect" / "api-auth").read_text(encoding="ascii").strip()
        return SyncPrefectClient(self.api, auth_string=auth)

    def sqs(self) -> tuple[Any, str]:
        endpoint = f"http://127.0.0.1:{self.env['JOBPING_EMULATOR_PORT']}"
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        )
        url = next(u for u in sqs.list_queues()["QueueUrls"] if not u.endswith("-dlq"))
        return sqs, url

    def stored(self) -> int:
        if not (self.data / "lake" / "enriched_jobs_history" / "_delta_log").exists():
            return 0
        with reader(self.data / "lake") as con:
            return int(con.execute("SELECT count(*) FROM enriched_jobs_history").fetchall()[0][0])

    def analysis_span(self, after: datetime) -> float:
        """Seconds from the first to the last analysis stamped after ``after``."""
        with reader(self.data / "lake") as con:
            first, last = con.execute(
                "SELECT min(analysed_at), max(analysed_at) FROM enriched_jobs_history WHERE analysed_at > ?", [after]
            ).fetchall()[0]
        return float((last - first).total_seconds())

    def analyse_runs(self) -> list[Any]:
        with self.client() as client:
            return list(
                client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["analyse"])))
            )


@contextmanager
def local_stack(
    base: Path, standin: StandIn, *, max_consumers: int, global_limit: int, shared: bool = True
) -> Iterator[LocalStack]:
    stack = LocalStack(base, standin, max_consumers=max_consumers, global_limit=global_limit, shared=shared)
    stack.command("stack", "up")
    try:
        stack.command("queues", "ensure")
        yield stack
    finally:
        stack.command("stack", "down")


def _until(what: str, done: Any) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {DEADLINE_SECONDS:.0f} s")
        time.sleep(WATCH_SECONDS)


def _send(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def burst(stack: LocalStack, postings: int, tag: str) -> Burst:
    """Send ``postings`` at once and watch them drain; the stack's queue and runs are idle before."""
    sqs, url = stack.sqs()
    known = {run.id for run in stack.analyse_runs()}
    before = stack.stored()
    stack.standin.configure(latency_ms=500)
    bodies = [body.replace("bench-", f"{tag}-") for body in sample_bodies(postings)]
    started = time.monotonic()
    sent_at = datetime.now().astimezone()
    _send(sqs, url, bodies)
    most_running, second_running = 0, None
    while stack.stored() < before + postings:
        if time.monotonic() - started > DEADLINE_SECONDS:
            raise TimeoutError(f"{postings} postings were not stored within {DEADLINE_SECONDS:.0f} s")
        new = [run for run in stack.analyse_runs() if run.id not in known]
        running = [run for run in new if run.start_time is not None]
        most_running = max(most_running, sum(run.state.is_running() for run in new))
        if second_running is None and len(running) >= 2:
            second = sorted(run.start_time for run in running)[1]
            second_running = (second - sent_at).total_seconds()
        time.sleep(WATCH_SECONDS)
    stored_seconds = time.monotonic() - started
    _until("the analyse runs ending", lambda: all(run.state.is_final() for run in stack.analyse_runs()))
    to_zero = time.monotonic() - started - stored_seconds
    new = [run for run in stack.analyse_runs() if run.id not in known]
    return Burst(
        postings=postings,
        seconds_to_stored=stored_seconds,
        analysis_rate=postings / stack.analysis_span(sent_at),
        runs=len(new),
        most_running=most_running,
        max_in_flight=int(stack.standin.stats()["max_in_flight"]),
        second_running_after=second_running,
        to_zero_seconds=to_zero,
    )


def pickups(stack: LocalStack, count: int) -> Pickup:
    """Seconds from sending one posting to an idle stack until it is stored, ``count`` times."""
    sqs, url = stack.sqs()
    seconds = []
    for n in range(count):
        _until("the analyse runs ending", lambda: all(run.state.is_final() for run in stack.analyse_runs()))
        before = stack.stored()
        started = time.monotonic()
        body = sample_bodies(n + 1)[-1].replace("bench-", "pickup-")
        sqs.send_message(QueueUrl=url, MessageBody=body)
        _until("a single posting being stored", lambda before=before: stack.stored() > before)
        seconds.append(time.monotonic() - started)
    return Pickup(seconds)


def measure_scaling(base: Path, standin: StandIn, postings: int, pickup_count: int, global_limit: int) -> list[str]:
    """Bursts through one and four consumers, then single-posting pickups; the RESULTS.md section."""
    with local_stack(base, standin, max_consumers=1, global_limit=global_limit) as stack:
        print(f"autoscaling: {postings} postings through at most one consumer", flush=True)
        one = burst(stack, postings, "one")
    with local_stack(base, standin, max_consumers=4, global_limit=global_limit) as stack:
        print(f"autoscaling: {postings} postings through at most four consumers", flush=True)
        four = burst(stack, postings, "four")
        print(f"autoscaling: {pickup_count} single postings picked up", flush=True)
        pickup = pickups(stack, pickup_count)
    return scaling_section(one, four, pickup, global_limit)


def scaling_section(one: Burst, four: Burst, pickup: Pickup, global_limit: int) -> list[str]:
    ceiling = global_limit / 0.5
    goal = 0.85 * ceiling

    def row(label: str, b: Burst) -> str:
        return (
            f"| {label} | {b.analysis_rate:.1f} | {b.seconds_to_stored:.0f} | {b.runs} | {b.most_running} "
            f"| {b.max_in_flight} | {b.to_zero_seconds:.0f} |"
        )

    second = f"{four.second_running_after:.0f} s" if four.second_running_after is not None else "never"
    met = "met" if four.analysis_rate >= goal and four.max_in_flight <= global_limit else "NOT met"
    return [
        "## Autoscaling",
        "",
        f"A whole local stack (`jobping stack up`: moto, a Prefect server, a worker, the autoscaler polling every "
        f"10 s) with the OpenAI stand-in answering after 500 ms and the global LLM limit at {global_limit}. "
        f"{one.postings:,} postings are sent at once with boto3 and watched from outside: the lake's rows, the "
        "analyse runs in the Prefect API, and the stand-in's own count of requests in flight.",
        "",
        "| consumers at most | postings/s (first to last analysis) | s from the burst to all stored | analyse runs "
        "| most running at once | most LLM requests in flight | s from stored to no run active |",
        "|---|---|---|---|---|---|---|",
        row("1", one),
        row("4", four),
        "",
        f"Four consumers: {four.analysis_rate:.1f} postings/s against a goal of 0.85 x {global_limit} / 0.5 s = "
        f"{goal:.1f}, and at most {four.max_in_flight} requests in flight against the limit of {global_limit} "
        f"({met}). One consumer: {one.analysis_rate:.1f}/s, {one.analysis_rate / four.analysis_rate:.2f} of four.",
        f"From the burst's first message to the second analyse run running: {second}.",
        "",
        f"A single posting sent to an idle stack, stored after (s): median {pickup.median:.1f}, worst "
        f"{pickup.worst:.1f} of {len(pickup.seconds)} ({', '.join(f'{s:.1f}' for s in pickup.seconds)}); "
        "goal: within 60 s.",
        "",
    ]
