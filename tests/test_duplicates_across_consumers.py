"""Two `jobping analyse` processes on one queue, a real moto server and the OpenAI stand-in: a posting
delivered twice, once to each consumer, is analysed once and stored once."""

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
from typing import TYPE_CHECKING

import pytest
from prefect.settings import PREFECT_API_URL

from standins.servers import PIDS, StandIn
from storage.lake import Lake
from storage.reader import reader
from tasks.sqs.messages import send_entries
from tasks.sqs.queues import Queues, depth
from tests.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

JOBPING = str(Path(sys.executable).parent / "jobping")
POSTINGS = 200
TWICE = 20
# long enough for both consumers to start while the stand-in is frozen
LLM_TIMEOUT_SECONDS = 180
VISIBILITY_SECONDS = 10
RUN_TIMEOUT_SECONDS = 300
DEADLINE_SECONDS = 240.0
COUNTS = re.compile(
    r"received (\d+) = stored (\d+) \+ skipped (\d+) \+ seen (\d+) \+ DLQ (\d+) \+ left for retry (\d+)"
)


def bodies(count: int) -> list[str]:
    return [
        json.dumps({"title": f"Data Engineer {n}", "company": "Twice GmbH", "site": "indeed", "id": f"twice-{n}",
                    "job_url": f"https://jobs.example.com/twice/{n}", "description": "Python, SQL and Airflow."})
        for n in range(count)
    ]  # fmt: skip


def publish(sqs: SQSClient, url: str, messages: list[str]) -> None:
    report = send_entries(sqs, url, [{"Id": str(i), "MessageBody": body} for i, body in enumerate(messages)])
    assert not report.failed


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    wait_until(condition, timeout=DEADLINE_SECONDS, what=what)


@contextmanager
def frozen(standin: StandIn) -> Iterator[None]:
    """The stand-in stopped (SIGSTOP): requests wait in its listen queue, nothing is answered, nothing stored."""
    pid = PIDS[standin.url]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [JOBPING, "analyse"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[str]) -> tuple[int, ...]:
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, (out + err)[-3000:]
    found = COUNTS.search(out)
    assert found is not None, out[-3000:]
    received, stored, skipped, seen, dlq, left = (int(n) for n in found.groups())
    assert received == stored + skipped + seen + dlq + left, found.group(0)
    return received, stored, skipped, dlq, left


@pytest.fixture
def consumer_env(
    env: dict[str, str], standin: StandIn, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    for name, value in {
        "JOBPING_LLM_TIMEOUT_SECONDS": str(LLM_TIMEOUT_SECONDS),
        # prefetch 16: a consumer holds its first two receives of ten while the stand-in is frozen
        "JOBPING_LLM_CONCURRENCY": "4",
        "JOBPING_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
        "JOBPING_RECEIVE_WAIT_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ) | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "250"}


# two consumer processes and the runs after them (RUN_TIMEOUT_SECONDS each): measured 77 s on a machine
# 40 to 70 processes deep for its 2 cores
@pytest.mark.timeout(600)
def test_a_posting_delivered_to_two_consumers_at_once_is_analysed_once_and_stored_once(
    consumer_env: dict[str, str], standin: StandIn, sqs: SQSClient, queues: Queues, tmp_path: Path
) -> None:
    postings = bodies(POSTINGS)
    twice = postings[:TWICE]
    with frozen(standin):
        # the first consumer holds every first copy, the second every second copy; neither can store
        # anything before both have read what is stored
        publish(sqs, queues.url, twice)
        first = start(consumer_env)
        wait_for("the first consumer to hold the first copies", lambda: in_flight(sqs, queues) == TWICE)
        publish(sqs, queues.url, twice)
        second = start(consumer_env)
        wait_for("the second consumer to hold the second copies", lambda: in_flight(sqs, queues) == 2 * TWICE)
        publish(sqs, queues.url, postings[TWICE:])
    runs = [finish(first), finish(second)]
    # what was left for a retry comes back: later runs, as the autoscaler would start them
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (waiting := depth(sqs, queues.url)).visible + waiting.in_flight:
        assert time.monotonic() < deadline, f"the queue still holds {waiting}"
        if not waiting.visible:
            wait_for("the messages in flight back in the queue or settled",
                     lambda: (now := depth(sqs, queues.url)).visible or not now.in_flight)  # fmt: skip
            continue
        runs.append(finish(start(consumer_env)))

    with reader(Lake(tmp_path / "data" / "lake")) as con:
        rows, keys = con.execute("SELECT count(*), count(DISTINCT job_key) FROM enriched_jobs_history").fetchall()[0]
    requests = int(standin.stats().get("requests", 0))
    received, stored, skipped, dlq, left = (sum(run[i] for run in runs) for i in range(5))
    assert (rows, keys) == (POSTINGS, POSTINGS), f"{rows} history rows for {keys} job keys"
    assert requests == POSTINGS, f"{requests} LLM requests for {POSTINGS} postings"
    assert (stored, dlq) == (POSTINGS, 0)
    # every second copy ended skipped, at once or after waiting for the first copy's consumer
    assert received - left == POSTINGS + TWICE
    assert skipped == TWICE
    assert depth(sqs, queues.dlq_url).visible == 0


def in_flight(sqs: SQSClient, queues: Queues) -> int:
    found = depth(sqs, queues.url)
    return found.in_flight if found.visible == 0 else -1
