"""The heartbeat against a real moto server and the OpenAI stand-in: what it extends, and what it never does."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

from jobping.engine.drain import DrainOptions, drain
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


class SettlingRequests:
    """Every receipt handle the client sends to DeleteMessageBatch or ChangeMessageVisibilityBatch, in order."""

    def __init__(self, sqs: SQSClient) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        for operation in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
            sqs.meta.events.register(f"provide-client-params.sqs.{operation}", self._record(operation))

    def _record(self, operation: str) -> Any:
        def record(params: dict[str, Any], **_: object) -> None:
            with self._lock:
                self.calls.append((operation, [entry["ReceiptHandle"] for entry in params["Entries"]]))

        return record

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
    settings = Settings()
    requests = SettlingRequests(sqs)

    async def run() -> Any:
        queue = SqsQueue(sqs, queues.url, queues.dlq_url, VISIBILITY_SECONDS)
        options = DrainOptions(receive_wait_seconds=1, visibility_timeout_seconds=VISIBILITY_SECONDS)
        lake = LakeStore(open_lake(Lake.from_settings(settings)))
        async with analyser_in_use(make_analyser(settings.llm, load_profile(settings.profile_path))) as analyser:
            return await drain(queue, lake, analyser, options=options)

    report = asyncio.run(run())
    assert (report.stored, report.dead_lettered, report.left_for_retry) == (BATCH, BATCH, 0)
    # the heartbeat did beat for the batch still waiting for the stand-in
    assert requests.extended() > 0
    assert requests.extensions_after_delete() == []
