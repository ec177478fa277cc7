"""The deep queue: every posting queued at once before analyse starts, as a scrape leaves them.

moto's server spends time per received message that grows with the queue's depth, so here the
emulator's cost is part of what is measured, unlike the shallow case; what the drain adds on top
(requests per posting, extensions of messages already settled) is counted on the wire. Run alone
with ``python -m bench.deep_queue``: it writes its own section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import boto3
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_LOGGING_LEVEL, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from bench.baseline import sample_bodies
from bench.harness import CONCURRENCY, LATENCY_MS, environment, fresh_env, write_section
from flows.analyse import analyse
from jobping.settings import RECEIVE_WAIT_SECONDS, Settings
from standins.servers import StandIn, moto_server, openai_standin
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries
from tasks.sqs.queues import ensure_queues

DEEP_POSTINGS = 480
HEADING = "## Analyse throughput, deep queue"
# the heartbeat's warning for an extension SQS refused (a receipt handle no longer valid: its message is gone)
EXTENSION_LOGGER = "tasks.sqs.heartbeat"


@dataclass(frozen=True)
class DeepRun:
    stored: int
    per_second: float
    requests: dict[str, int]
    refused_extensions: int
    # of the drain's seconds, the share the client spent waiting for ReceiveMessage answers
    receiving: float


class _Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.levelno >= logging.WARNING


def deep_queue_run(base: Path, moto: str, standin: StandIn, postings: int) -> DeepRun:
    """One analyse flow run over ``postings`` queued at once, long polling as the settings' default does."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    asked: dict[int, float] = {}
    receiving = 0.0

    def count(model: object, **_: object) -> None:
        with lock:
            calls[str(getattr(model, "name", "?"))] += 1
        asked[threading.get_ident()] = time.perf_counter()

    def answered(model: object, **_: object) -> None:
        nonlocal receiving
        took = time.perf_counter() - asked.pop(threading.get_ident(), time.perf_counter())
        if getattr(model, "name", "") == "ReceiveMessage":
            with lock:
                receiving += took

    env = {**fresh_env(base, moto, standin), "JOBPING_RECEIVE_WAIT_SECONDS": str(RECEIVE_WAIT_SECONDS)}
    refused = _Counting()
    with environment(env):
        settings = Settings()
        sqs = make_sqs_client(settings)
        url = ensure_queues(sqs, settings.sqs).url
        bodies = sample_bodies(postings)
        send_entries(sqs, url, [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)])
        # the flow's client is made from the default session: a fresh one, counting every call it makes
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.sqs", count)
        session.events.register("after-call.sqs", answered)
        logging.getLogger(EXTENSION_LOGGER).addHandler(refused)
        try:
            report = asyncio.run(analyse())
        finally:
            session.events.unregister("before-call.sqs", count)
            session.events.unregister("after-call.sqs", answered)
            logging.getLogger(EXTENSION_LOGGER).removeHandler(refused)
    if report.stored != postings:
        raise RuntimeError(f"stored {report.stored} of {postings}")
    seconds = report.seconds
    return DeepRun(report.stored, report.stored / seconds, dict(calls), refused.count, receiving / seconds)


def measure_deep_queue(base: Path, moto: str, standin: StandIn, postings: int, runs: int) -> list[DeepRun]:
    standin.configure(latency_ms=LATENCY_MS)
    return [deep_queue_run(base, moto, standin, postings) for _ in range(runs)]


def deep_queue_section(runs: list[DeepRun]) -> list[str]:
    ceiling = CONCURRENCY / (LATENCY_MS / 1000)
    goal = 0.9 * ceiling
    rate = statistics.median(run.per_second for run in runs)
    actions = sorted({name for run in runs for name in run.requests})
    per_posting = {name: statistics.median(run.requests.get(name, 0) / run.stored for run in runs) for name in actions}
    refused = max(run.refused_extensions for run in runs)
    receiving = statistics.median(run.receiving for run in runs)
    return [
        HEADING,
        "",
        f"{runs[0].stored} postings queued at once before the analyse flow starts (a scrape's burst), the OpenAI",
        f"stand-in answering after {LATENCY_MS} ms, concurrency {CONCURRENCY}, receives long polling "
        f"{RECEIVE_WAIT_SECONDS} s (the default).",
        "Postings per second from the drain's start to its end (its last receive included); every SQS request",
        "of the run counted as the client makes it.",
        "",
        "| what | postings/s (median) | runs | against 0.9 x concurrency / latency |",
        "|---|---|---|---|",
        f"| analyse flow, deep queue | {rate:.1f} | {', '.join(f'{run.per_second:.1f}' for run in runs)} "
        f"| {rate / goal:.2f} of {goal:.1f}/s ({'met' if rate >= goal else 'NOT met'}) |",
        "",
        "SQS requests per stored posting, by action (median of the runs): "
        + ", ".join(f"{name} {value:.3f}" for name, value in per_posting.items())
        + f"; in all {sum(per_posting.values()):.3f}.",
        f"Extensions SQS refused (a message already deleted), most in one run: {refused} (goal 0).",
        "",
        "moto's server, the SQS emulator here, spends time per received message that grows with the number of",
        "messages in the queue, which real SQS does not; the drain receives one batch at a time, and waited for",
        f"ReceiveMessage answers {receiving:.0%} of its time (median): where that is most of it, the emulator's",
        "receives bound this figure, not the analyser.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--postings", type=int, default=DEEP_POSTINGS, help="postings queued at once")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="jobping-bench-") as tmp,
        moto_server(Path(tmp) / "moto.log") as moto,
        openai_standin(Path(tmp) / "standin.log") as standin_url,
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_LEVEL: "WARNING"}),
    ):
        runs = measure_deep_queue(Path(tmp), moto, StandIn(standin_url), args.postings, args.runs)
    section = deep_queue_section(runs)
    write_section(section, after="## Analyse throughput")
    print("\n".join(section))


if __name__ == "__main__":
    main()
