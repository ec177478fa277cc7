"""Hostile probe: postings delivered twice, one copy to each of two `jobping analyse` processes holding them at once.

Real parts: a moto server, the OpenAI stand-in (frozen with SIGSTOP while both consumers take their
copies, so neither can store before the other has read the lake), a Prefect test API and two CLI
processes. The boundary holds when every posting is analysed once and stored once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from jobping.settings import Settings
from standins.servers import PIDS, StandIn, moto_server, openai_standin
from storage.lake import Lake
from storage.reader import reader
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries
from tasks.sqs.queues import Queues, depth, ensure_queues

JOBPING = str(Path(sys.executable).parent / "jobping")
POSTINGS = 30
TWICE = 10
VISIBILITY_SECONDS = 4
# a consumer polls long enough to receive again the copies it left for the other's claim: no third run
RECEIVE_WAIT_SECONDS = VISIBILITY_SECONDS + 1
RUN_TIMEOUT_SECONDS = 60.0
DEADLINE_SECONDS = 45.0
COUNTS = re.compile(
    r"received (\d+) = stored (\d+) \+ skipped (\d+) \+ seen (\d+) \+ DLQ (\d+) \+ left for retry (\d+)"
)


def _bodies() -> list[str]:
    return [
        json.dumps({"title": f"Probe Engineer {n}", "company": "Twice AG", "site": "indeed", "id": f"probe-{n}",
                    "job_url": f"https://jobs.example.com/probe/{n}", "description": "Python and SQL."})
        for n in range(POSTINGS)
    ]  # fmt: skip


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


class _Consumers:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("JOBPING_", "OPENAI_"))})
        try:
            settings = Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.sqs = make_sqs_client(settings)
        self.queues: Queues = ensure_queues(self.sqs, settings.sqs)
        self.runs: list[tuple[int, ...]] = []

    def publish(self, bodies: list[str]) -> None:
        sent = send_entries(self.sqs, self.queues.url, [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
        if sent.failed:
            raise AssertionError(f"could not publish {len(sent.failed)} messages")

    def held(self) -> int:
        found = depth(self.sqs, self.queues.url)
        return found.in_flight if found.visible == 0 else -1

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [JOBPING, "analyse"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip

    def finish(self, process: subprocess.Popen[str]) -> None:
        try:
            out, err = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        found = COUNTS.search(out)
        if process.returncode != 0 or found is None:
            raise AssertionError(f"a consumer failed: {(err or out).strip().splitlines()[-1:]}")
        received, stored, skipped, seen, dlq, left = (int(n) for n in found.groups())
        if received != stored + skipped + seen + dlq + left:
            raise AssertionError(f"a run's counts do not add up: {found.group(0)}")
        self.runs.append((received, stored, skipped, dlq, left))

    def drain(self) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (waiting := depth(self.sqs, self.queues.url)).visible + waiting.in_flight:
            if time.monotonic() > deadline:
                raise AssertionError(f"the queue still holds {waiting}")
            if waiting.visible:
                self.finish(self.start())
            else:
                time.sleep(0.2)


def probe(work: Path) -> str:
    with (
        moto_server(work / "moto.log") as moto,
        openai_standin(work / "standin.log") as standin_url,
        prefect_test_harness(server_startup_timeout=90),
    ):
        standin = StandIn(standin_url)
        standin.configure()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "OPENAI_", "PREFECT_API"))}
        env |= {
            "JOBPING_DATA_DIR": str(work / "data"),
            "JOBPING_SQS_ENDPOINT_URL": moto,
            "JOBPING_QUEUE_NAME": "probe-twice",
            "JOBPING_RECEIVE_WAIT_SECONDS": str(RECEIVE_WAIT_SECONDS),
            "JOBPING_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
            # prefetch 10: a consumer holding TWICE messages receives no more until one of its batches settles
            "JOBPING_LLM_CONCURRENCY": "2",
            "JOBPING_LLM_TIMEOUT_SECONDS": "120",
            "OPENAI_BASE_URL": standin_url + "/v1",
            "OPENAI_API_KEY": "sk-probe",
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "COLUMNS": "250",
        }
        consumers = _Consumers(env)
        bodies = _bodies()
        with _frozen(PIDS[standin_url]):
            consumers.publish(bodies[:TWICE])
            first = consumers.start()
            _wait_for("the first consumer to take the first copies", lambda: consumers.held() == TWICE)
            consumers.publish(bodies[:TWICE])
            second = consumers.start()
            _wait_for("the second consumer to take the second copies", lambda: consumers.held() == 2 * TWICE)
            consumers.publish(bodies[TWICE:])
        consumers.finish(first)
        consumers.finish(second)
        consumers.drain()
        with reader(Lake(work / "data" / "lake")) as con:
            rows, keys = con.execute("SELECT count(*), count(DISTINCT job_key) FROM enriched_jobs_history").fetchone()  # type: ignore[misc]
        requests = int(standin.stats().get("requests", 0))
    skipped = sum(run[2] for run in consumers.runs)
    if (rows, keys, requests) != (POSTINGS, POSTINGS, POSTINGS):
        raise AssertionError(
            f"{TWICE} postings delivered to two consumers at once: {rows} history rows for {keys} job keys, "
            f"{requests} LLM requests for {POSTINGS} postings"
        )
    return (
        f"{POSTINGS} postings, {TWICE} delivered twice (one copy to each of two consumers holding them at once, the "
        f"LLM frozen until both had read the lake): {rows} history rows for {keys} job keys, {requests} LLM "
        f"requests, {skipped} second copies skipped, in {len(consumers.runs)} runs that each balance"
    )
