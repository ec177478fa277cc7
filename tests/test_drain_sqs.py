"""The drain's requests to a real moto server, with the OpenAI stand-in: what it extends, and how long it polls."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

from jobping.engine.drain import AnalyseReport, DrainOptions, drain
from jobping.profile import load_profile
from jobping.settings import Settings
from standins.servers import StandIn
from storage.lake import Lake
from storage.store import LakeStore, open_lake
from tasks.llm.factory import analyser_in_use, make_analyser
from tasks.sqs.messages import send_entries
from tasks.sqs.queue import SqsQueue
from tests.fakes import posting

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from tasks.sqs.queues import Queues

# the heartbeat beats every half visibility timeout: twice while the stand-in answers
VISIBILITY_SECONDS = 4
LATENCY_MS = 5_000
BATCH = 10
LONG_POLL_SECONDS = 20


async def run(sqs: SQSClient, queues: Queues, settings: Settings, options: DrainOptions) -> AnalyseReport:
    """One drain of the queue through the real lake and the stand-in."""
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, options.visibility_timeout_seconds)
    lake = LakeStore(open_lake(Lake.from_settings(settings)))
    async with analyser_in_use(make_analyser(settings.llm, load_profile(settings.profile_path))) as analyser:
        return await drain(queue, lake, analyser, options=options)


class Requests:
    """What the client asks of SQS, in order: the receipt handles it deletes or extends, each receive's wait."""

    def __init__(self, sqs: SQSClient) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.waits: list[int] = []
        self.depths = 0
        self._lock = threading.Lock()
        sqs.meta.events.register("provide-client-params.sqs", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: object) -> None:
        with self._lock:
            if model.name in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
                self.calls.append((model.name, [entry["ReceiptHandle"] for entry in params["Entries"]]))
            elif model.name == "ReceiveMessage":
                self.waits.append(int(params["WaitTimeSeconds"]))
            elif model.name == "GetQueueAttributes":
                self.depths += 1

    def extensions_after_delete(self) -> list[str]:
        deleted: set[str] = set()
        late: list[str] = []
        for operation, handles in self.calls:
            if operation == "DeleteMessageBatch":
                deleted.update(handles)
            else:
                late.extend(handle for handle in handles if handle in deleted)
        return late

    def extended(self) -> int:
        return sum(len(handles) for operation, handles in self.calls if operation == "ChangeMessageVisibilityBatch")


def test_no_visibility_change_is_sent_for_a_message_already_deleted(
    sqs: SQSClient, queues: Queues, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_LLM_TIMEOUT_SECONDS", "30")
    standin.configure(latency_ms=LATENCY_MS)
    # the first batch is poison, settled at once; the second waits for the stand-in through two beats
    poison = [{"Id": f"p{n}", "MessageBody": "not a posting"} for n in range(BATCH)]
    postings = [{"Id": f"j{n}", "MessageBody": posting(n)} for n in range(BATCH)]
    send_entries(sqs, queues.url, [*poison, *postings])
    requests = Requests(sqs)
    options = DrainOptions(receive_wait_seconds=1, visibility_timeout_seconds=VISIBILITY_SECONDS)
    report = asyncio.run(run(sqs, queues, Settings(), options))
    assert (report.stored, report.dead_lettered, report.left_for_retry) == (BATCH, BATCH, 0)
    # the heartbeat did beat for the batch still waiting for the stand-in
    assert requests.extended() > 0
    assert requests.extensions_after_delete() == []


def test_a_drain_that_received_all_the_queue_held_ends_with_a_short_poll_not_a_long_one(
    sqs: SQSClient, queues: Queues, standin: StandIn
) -> None:
    send_entries(sqs, queues.url, [{"Id": str(n), "MessageBody": posting(n)} for n in range(2 * BATCH)])
    requests = Requests(sqs)
    report = asyncio.run(run(sqs, queues, Settings(), DrainOptions(receive_wait_seconds=LONG_POLL_SECONDS)))
    assert report.stored == 2 * BATCH
    # the queue said 20 wait: two long polls fetch them, then it says none wait, and one short poll ends the drain
    assert requests.waits == [LONG_POLL_SECONDS, LONG_POLL_SECONDS, 0]
    assert requests.depths == 2
