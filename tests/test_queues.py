"""Queue semantics against a real moto server process: attributes, redrive, visibility, batches."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from jobping.engine.ports import ReceivedMessage
from jobping.settings import Settings
from tasks.sqs.messages import MAX_BATCH_BYTES, delete, plan_batches, receive, send_entries
from tasks.sqs.queues import MAX_RECEIVE_COUNT, Queues, depth, ensure_queues, queue_attributes
from tests.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# a message whose visibility timeout ended is back within this, on a loaded machine too
VISIBILITY_DEADLINE_SECONDS = 30.0


def entries(count: int, size: int = 10) -> list[SendMessageBatchRequestEntryTypeDef]:
    return [{"Id": str(i), "MessageBody": json.dumps({"n": i, "pad": "x" * size})} for i in range(count)]


def test_ensure_creates_both_queues_with_the_agreed_attributes(sqs: SQSClient, queues: Queues) -> None:
    main = queue_attributes(sqs, queues.url)
    assert main["VisibilityTimeout"] == "60"
    assert main["MessageRetentionPeriod"] == "86400"
    assert main["ReceiveMessageWaitTimeSeconds"] == "20"
    assert main["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(main["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == queues.dlq_arn
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT
    assert queue_attributes(sqs, queues.dlq_url)["MessageRetentionPeriod"] == "1209600"


def test_ensure_again_converges_changed_attributes_back_to_the_settings(
    sqs: SQSClient, queues: Queues, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs.set_queue_attributes(
        QueueUrl=queues.url, Attributes={"VisibilityTimeout": "5", "MessageRetentionPeriod": "600"}
    )
    again = ensure_queues(sqs, settings.sqs)
    assert again == queues
    assert queue_attributes(sqs, queues.url)["VisibilityTimeout"] == "60"
    assert queue_attributes(sqs, queues.url)["MessageRetentionPeriod"] == "86400"
    monkeypatch.setenv("JOBPING_VISIBILITY_TIMEOUT_SECONDS", "90")
    ensure_queues(sqs, Settings().sqs)
    assert queue_attributes(sqs, queues.url)["VisibilityTimeout"] == "90"


def test_a_message_received_three_times_without_delete_moves_to_the_dlq(sqs: SQSClient, queues: Queues) -> None:
    sqs.send_message(QueueUrl=queues.url, MessageBody='{"title": "keeps failing"}')
    for attempt in range(1, MAX_RECEIVE_COUNT + 1):
        got = sqs.receive_message(QueueUrl=queues.url, VisibilityTimeout=0, MaxNumberOfMessages=1, WaitTimeSeconds=0,
                                  MessageSystemAttributeNames=["ApproximateReceiveCount"])  # fmt: skip
        assert len(got["Messages"]) == 1
        assert got["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
    assert sqs.receive_message(QueueUrl=queues.url, VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", []) == []
    in_dlq = receive(sqs, queues.dlq_url, wait_seconds=0)
    assert [m.body for m in in_dlq] == ['{"title": "keeps failing"}']


def test_a_received_message_is_hidden_until_its_visibility_timeout_ends(sqs: SQSClient, queues: Queues) -> None:
    sqs.send_message(QueueUrl=queues.url, MessageBody="{}")
    first = sqs.receive_message(QueueUrl=queues.url, VisibilityTimeout=1, WaitTimeSeconds=0)["Messages"]
    assert len(first) == 1
    assert receive(sqs, queues.url, wait_seconds=0) == []
    assert depth(sqs, queues.url).in_flight == 1
    # moto's server really ends it: the message comes back to the next receive, unasked
    again = wait_until(lambda: receive(sqs, queues.url, wait_seconds=0), timeout=VISIBILITY_DEADLINE_SECONDS,
                       what="the message back after its 1 s visibility timeout")  # fmt: skip
    assert [m.message_id for m in again] == [first[0]["MessageId"]]
    assert again[0].receive_count == 2


def test_send_entries_uses_one_request_per_ten_messages(sqs: SQSClient, queues: Queues) -> None:
    report = send_entries(sqs, queues.url, entries(25))
    assert (report.sent, report.requests, report.failed) == (25, 3, {})
    assert depth(sqs, queues.url).visible == 25


def test_batches_stay_under_the_request_byte_limit() -> None:
    big = entries(10, size=60_000)
    batches = plan_batches(big)
    assert len(batches) > 1
    for batch in batches:
        assert sum(len(e["MessageBody"].encode()) for e in batch) <= MAX_BATCH_BYTES
    assert sum(len(b) for b in batches) == 10


def test_large_messages_are_sent_in_byte_bounded_batches_to_a_real_server(sqs: SQSClient, queues: Queues) -> None:
    report = send_entries(sqs, queues.url, entries(10, size=60_000))
    assert report.sent == 10
    assert report.failed == {}
    assert report.requests == len(plan_batches(entries(10, size=60_000))) > 1


class FlakyBatchClient:
    """Unit stand-in for one function: fails chosen entries of the first calls, like SQS can."""

    def __init__(self, fail_first: int, sender_fault_ids: frozenset[str] = frozenset()) -> None:
        self.calls: list[list[str]] = []
        self.fail_first = fail_first
        self.sender_fault_ids = sender_fault_ids

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        ids = [e["Id"] for e in Entries]
        self.calls.append(ids)
        failing = set(ids[:1]) if len(self.calls) <= self.fail_first else set()
        failing |= self.sender_fault_ids & set(ids)
        return {
            "Successful": [{"Id": i, "MessageId": f"m{i}"} for i in ids if i not in failing],
            "Failed": [
                {"Id": i, "Code": "InternalError", "Message": "try again", "SenderFault": i in self.sender_fault_ids}
                for i in failing
            ],
        }


def test_entries_reported_failed_are_retried_until_sent() -> None:
    client = FlakyBatchClient(fail_first=2)
    report = send_entries(client, "q", entries(5), sleep=lambda _: None)  # type: ignore[arg-type]
    assert report.sent == 5
    assert report.failed == {}
    assert client.calls == [["0", "1", "2", "3", "4"], ["0"], ["0"]]


def test_entries_still_failing_after_retries_are_reported_never_dropped_silently() -> None:
    client = FlakyBatchClient(fail_first=100, sender_fault_ids=frozenset({"3"}))
    report = send_entries(client, "q", entries(5), sleep=lambda _: None)  # type: ignore[arg-type]
    assert report.sent == 3
    assert set(report.failed) == {"0", "3"}
    assert "InternalError" in report.failed["0"]


def test_delete_batch_with_a_stale_receipt_returns_only_the_undeleted_message(sqs: SQSClient, queues: Queues) -> None:
    send_entries(sqs, queues.url, entries(3))
    got = receive(sqs, queues.url, wait_seconds=0)
    assert len(got) == 3
    stale = ReceivedMessage(
        message_id="stale", receipt_handle="not-a-real-receipt", body="", receive_count=1, sent_at=got[0].sent_at
    )
    remaining = delete(sqs, queues.url, [*got, stale], sleep=lambda _: None)
    assert [m.message_id for m in remaining] == ["stale"]
    assert depth(sqs, queues.url).visible + depth(sqs, queues.url).in_flight == 0
