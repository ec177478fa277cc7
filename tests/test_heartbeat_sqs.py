"""The heartbeat against moto's server, whose visibility timeouts really end: slow work is not handed out twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobping.analysis import AnalysisResult
from jobping.contract import JobPosting
from jobping.engine.batch import RetryPolicy
from jobping.engine.drain import AnalyseReport, DrainOptions, drain
from jobping.engine.ports import ReceivedMessage
from tasks.sqs.messages import receive
from tasks.sqs.queue import SqsQueue
from tasks.sqs.queues import Queues, depth
from tests.fakes import FakeAnalyser, FakeLake, posting
from tests.waiting import holds_for, wait_until

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_sqs import SQSClient

# the drain's visibility timeout: its heartbeat extends every half of it
VISIBILITY_SECONDS = 3
# the handler is held this many visibility timeouts: a message left alone would be back before its end
HELD_VISIBILITIES = 2
# for a second receiver holding what it got: it must not come back to the drain's receives
SECOND_RECEIVER_VISIBILITY_SECONDS = 60
DEADLINE_SECONDS = 60.0
OPTIONS = DrainOptions(
    receive_wait_seconds=0, visibility_timeout_seconds=VISIBILITY_SECONDS, concurrency=1,
    retry=RetryPolicy(attempts=1, backoff_seconds=0),
)  # fmt: skip


@dataclass
class GatedAnalyser(FakeAnalyser):
    """Answers once the test opens ``gate``: a handler as slow as the test wants, without a clock."""

    started: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        self.started.set()
        opened = await asyncio.to_thread(self.gate.wait, DEADLINE_SECONDS)
        assert opened, "the test never opened the gate"
        return await super().analyse(posting)


@dataclass(frozen=True)
class QueueWithoutHeartbeat(SqsQueue):
    """The real queue, whose messages are never extended: as if the drain had no heartbeat."""

    def extend(self, messages: Sequence[ReceivedMessage], seconds: int) -> int:
        return 0


@contextmanager
def draining(queue: SqsQueue, analyser: GatedAnalyser) -> Iterator[Future[AnalyseReport]]:
    """The drain running in a thread of its own, holding its message in the analyser until the gate opens."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        report = pool.submit(asyncio.run, drain(queue, FakeLake(), analyser, options=OPTIONS))
        try:
            assert analyser.started.wait(DEADLINE_SECONDS), "the drain never handed the message to the analyser"
            yield report
        finally:
            analyser.gate.set()


def second_receive(sqs: SQSClient, queues: Queues) -> list[ReceivedMessage]:
    """What another consumer receives now."""
    return receive(sqs, queues.url, wait_seconds=0, visibility_seconds=SECOND_RECEIVER_VISIBILITY_SECONDS)


def test_moto_hands_a_slow_message_to_a_second_receiver_when_nothing_extends_it(sqs: SQSClient, queues: Queues) -> None:
    sqs.send_message(QueueUrl=queues.url, MessageBody=posting(1))
    analyser = GatedAnalyser()
    with draining(QueueWithoutHeartbeat(sqs, queues.url, queues.dlq_url, VISIBILITY_SECONDS), analyser) as report:
        again = wait_until(lambda: second_receive(sqs, queues), timeout=DEADLINE_SECONDS,
                           what="the held message back to a second receiver")  # fmt: skip
        assert [m.receive_count for m in again] == [2]
    assert report.result(timeout=DEADLINE_SECONDS).received == 1


def test_the_heartbeat_keeps_a_message_held_longer_than_its_visibility_timeout_from_a_second_receiver(
    sqs: SQSClient, queues: Queues
) -> None:
    sqs.send_message(QueueUrl=queues.url, MessageBody=posting(1))
    analyser = GatedAnalyser()
    with draining(SqsQueue(sqs, queues.url, queues.dlq_url, VISIBILITY_SECONDS), analyser) as report:
        holds_for(lambda: second_receive(sqs, queues) == [], seconds=HELD_VISIBILITIES * VISIBILITY_SECONDS,
                  what="the held message hidden from a second receiver")  # fmt: skip
    done = report.result(timeout=DEADLINE_SECONDS)
    assert (done.received, done.stored) == (1, 1)
    left = depth(sqs, queues.url)
    assert (left.visible, left.in_flight) == (0, 0)
    assert sum(analyser.calls.values()) == 1
