"""What every throughput benchmark shares: its settings, the environment of a run, a feeder, moto's cost."""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.publish import client
from jobping.settings import Settings
from standins.servers import StandIn
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries
from tasks.sqs.queues import depth, ensure_queues

LATENCY_MS = 500
CONCURRENCY = 16
QUEUE_DEPTH = 60
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


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


RESULTS = Path(__file__).parent / "RESULTS.md"


def write_section(section: list[str], *, after: str | None = None, results: Path = RESULTS) -> None:
    """Put ``section`` (its heading first) in place of its earlier self in ``results``; a section new there goes
    right after the one headed ``after``, or at the end. What a single case's bench run writes."""
    lines = results.read_text(encoding="utf-8").split("\n") if results.exists() else []

    def end_of(start: int) -> int:
        return next((n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines))

    if section[0] in lines:
        start = lines.index(section[0])
        end = end_of(start)
    else:
        start = end = end_of(lines.index(after)) if after in lines else len(lines)
        if start == len(lines) and lines and lines[-1] != "":
            section = ["", *section]
    results.write_text("\n".join([*lines[:start], *section, *lines[end:]]), encoding="utf-8")
