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


class BrittleAnalyser(OfflineAnalyser):
    """The offline analyser, raising what ``fail`` says on one posting's title."""

    def __init__(self, fail: Exception) -> None:
        super().__init__(Profile())
        self.fail = fail

    async def analyse(self, posting: Any) -> Any:
        if posting.title.endswith(" 2"):
            raise self.fail
        return await super().analyse(posting)


def test_an_error_one_posting_raises_sends_that_posting_to_the_dlq_and_stores_the_rest(tmp_path: Path) -> None:
    analyser = BrittleAnalyser(ValueError("salary 187,200,000 above the bound"))
    targets = BatchTargets(queue_url="q", dlq_url="dlq", lake=tmp_path, visibility_timeout_seconds=60)
    sqs = FlakySqs(dlq_failures=0)
    batch = Batch([message(1, good(1)), message(2, good(2)), message(3, good(3))])
    batch.triage(analyser.prompt_version, StoredIndex())
    attempt(batch, sqs, targets, analyser)
    assert batch.fatal is None
    assert (batch.outcome.stored, batch.outcome.dead_lettered) == (2, 1)
    assert "ValueError: salary 187,200,000" in batch.outcome.dlq_reasons[0]
    assert sorted(sqs.deleted) == ["rh-1", "rh-2", "rh-3"]


def test_a_configuration_error_keeps_the_message_and_stops_the_run(tmp_path: Path) -> None:
    from jobping.errors import ConfigurationError

    analyser = BrittleAnalyser(ConfigurationError("the API key was rejected"))
    targets = BatchTargets(queue_url="q", dlq_url="dlq", lake=tmp_path, visibility_timeout_seconds=60)
    sqs = FlakySqs(dlq_failures=0)
    batch = Batch([message(1, good(1)), message(2, good(2))])
    batch.triage(analyser.prompt_version, StoredIndex())
    attempt(batch, sqs, targets, analyser)
    assert isinstance(batch.fatal, ConfigurationError)
    assert sqs.dead_lettered == []
    assert "rh-2" not in sqs.deleted


def test_a_body_the_parser_chokes_on_is_poison_for_that_message_alone(tmp_path: Path) -> None:
    analyser = OfflineAnalyser(Profile())
    huge = '{"title": "t", "job_url": "https://x.example/1", "min_amount": ' + "9" * 5_000 + "}"
    batch = Batch([message(1, good(1)), message(2, huge)])
    batch.triage(analyser.prompt_version, StoredIndex())
    assert [m.message_id for m, _ in batch.todo] == ["id-1"]
    attempt(batch, FlakySqs(dlq_failures=0), BatchTargets("q", "dlq", tmp_path, 60), analyser)
    assert batch.outcome.dead_lettered == 1
    assert "not JSON" in batch.outcome.dlq_reasons[0]
