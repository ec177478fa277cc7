"""Batch bookkeeping when SQS fails part-way: unit tests of one class with a narrow stand-in client."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobping.profile import Profile
from storage.lake import StoredIndex, stored_versions
from tasks.batch import Batch, BatchTargets, Claims, CostBudget
from tasks.llm.offline import OfflineAnalyser
from tasks.sqs.client import QueueUnavailableError
from tasks.sqs.messages import ReceivedMessage


class FlakySqs:
    """Answers like SQS, but the first ``dlq_failures`` dead-letter sends raise, as during an outage."""

    def __init__(self, dlq_failures: int) -> None:
        self.dlq_failures = dlq_failures
        self.deleted: list[str] = []
        self.dead_lettered: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if self.dlq_failures:
            self.dlq_failures -= 1
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=QueueUrl)
        self.dead_lettered += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"], "MessageId": "m"} for e in Entries], "Failed": []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, **_: Any) -> dict[str, Any]:
        return {"Successful": [], "Failed": []}


def message(n: int, body: str) -> ReceivedMessage:
    return ReceivedMessage(message_id=f"id-{n}", receipt_handle=f"rh-{n}", body=body, receive_count=1,
                           sent_at=datetime(2026, 11, 27, tzinfo=UTC))  # fmt: skip


def good(n: int) -> str:
    return json.dumps({"title": f"Data Engineer {n}", "job_url": f"https://jobs.example.com/{n}"})


def attempt(batch: Batch, sqs: FlakySqs, targets: BatchTargets, analyser: OfflineAnalyser) -> None:
    results = asyncio.run(batch.analyse(analyser, CostBudget(None, 4), Claims()))
    batch.settle(results, sqs, targets)  # type: ignore[arg-type]


def test_a_retry_after_a_failed_dead_letter_neither_writes_twice_nor_loses_the_poison(tmp_path: Path) -> None:
    analyser = OfflineAnalyser(Profile(wanted_titles=["data engineer"]))
    targets = BatchTargets(queue_url="q", dlq_url="dlq", lake=tmp_path, visibility_timeout_seconds=60)
    sqs = FlakySqs(dlq_failures=1)
    batch = Batch([message(1, good(1)), message(2, good(2)), message(3, "not json")])
    batch.triage(analyser.prompt_version, StoredIndex())

    with pytest.raises(QueueUnavailableError):
        attempt(batch, sqs, targets, analyser)
    assert len(list(stored_versions(tmp_path))) == 2  # written before the dlq failed
    assert sqs.deleted == []  # and nothing deleted yet
    assert batch.unfinished

    attempt(batch, sqs, targets, analyser)  # the task's retry
    rows = list(tmp_path.rglob("*.parquet"))
    assert len(rows) == 1, "the retry wrote the stored postings again"
    assert sqs.dead_lettered == ["not json"]
    assert sorted(sqs.deleted) == ["rh-1", "rh-2", "rh-3"]
    assert not batch.unfinished
    batch.give_up(sqs, targets)  # type: ignore[arg-type]
    assert batch.outcome.balanced
    assert (batch.outcome.stored, batch.outcome.dead_lettered, batch.outcome.left_for_retry) == (2, 1, 0)


def test_poison_the_dlq_never_takes_is_left_on_the_queue_and_counted(tmp_path: Path) -> None:
    analyser = OfflineAnalyser(Profile())
    targets = BatchTargets(queue_url="q", dlq_url="dlq", lake=tmp_path, visibility_timeout_seconds=60)
    sqs = FlakySqs(dlq_failures=99)
    batch = Batch([message(1, good(1)), message(2, "not json")])
    batch.triage(analyser.prompt_version, StoredIndex())
    with pytest.raises(QueueUnavailableError):
        attempt(batch, sqs, targets, analyser)
    batch.give_up(sqs, targets)  # type: ignore[arg-type]
    assert batch.outcome.balanced
    assert (batch.outcome.stored, batch.outcome.left_for_retry) == (1, 1)
    assert "rh-2" not in sqs.deleted
