"""Sending, receiving, deleting and dead-lettering messages in batches of ten."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from jobping.engine.ports import MAX_BATCH_ENTRIES, ReceivedMessage
from jobping.settings import RECEIVE_WAIT_SECONDS
from jobping.text import one_line
from tasks.sqs.client import translate

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

MAX_BATCH_BYTES = 262_144
ENTRY_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0
REASON_ATTRIBUTE = "jobping-dlq-reason"
MAX_REASON_CHARS = 1_000
# jitter from a generator of our own: the global one belongs to whoever seeds it (hypothesis does)
_JITTER = random.Random()  # noqa: S311
# what a message attribute costs on top of its value: name, type and framing
ATTRIBUTE_OVERHEAD_BYTES = 64


@dataclass
class SendReport:
    sent: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter for the attempt-th retry."""
    return _JITTER.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


def _entry_bytes(entry: SendMessageBatchRequestEntryTypeDef) -> int:
    attributes = entry.get("MessageAttributes", {})
    extra = sum(
        len(k.encode()) + len(str(v.get("StringValue", "")).encode()) + ATTRIBUTE_OVERHEAD_BYTES
        for k, v in attributes.items()
    )
    return len(entry["MessageBody"].encode()) + extra


def plan_batches(
    entries: Sequence[SendMessageBatchRequestEntryTypeDef],
) -> list[list[SendMessageBatchRequestEntryTypeDef]]:
    """Split entries into batches of at most ten whose bytes stay under the request limit."""
    batches: list[list[SendMessageBatchRequestEntryTypeDef]] = []
    current: list[SendMessageBatchRequestEntryTypeDef] = []
    size = 0
    for entry in entries:
        entry_size = _entry_bytes(entry)
        if current and (len(current) == MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        batches.append(current)
    return batches


def send_entries(
    sqs: SQSClient,
    queue_url: str,
    entries: Sequence[SendMessageBatchRequestEntryTypeDef],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """SendMessageBatch in size-aware batches; entries reported Failed are retried with backoff."""
    report = SendReport()
    for batch in plan_batches(entries):
        pending = {entry["Id"]: entry for entry in batch}
        for attempt in range(ENTRY_ATTEMPTS):
            if attempt:
                sleep(backoff_seconds(attempt))
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(pending.values()))
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "sending messages") from exc
            report.requests += 1
            for ok in response.get("Successful", []):
                pending.pop(ok["Id"], None)
                report.sent += 1
            retryable = {}
            for failed in response.get("Failed", []):
                reason = f"{failed.get('Code', '')}: {failed.get('Message', '')}"
                if failed.get("SenderFault"):
                    report.failed[failed["Id"]] = reason
                    pending.pop(failed["Id"], None)
                else:
                    retryable[failed["Id"]] = reason
            if not pending:
                break
            logger.warning(
                "%d of %d entries failed to send (attempt %d), retrying", len(pending), len(batch), attempt + 1
            )
        else:
            for entry_id in pending:
                report.failed[entry_id] = retryable.get(entry_id, "still failing after retries")
    return report


def receive(
    sqs: SQSClient,
    queue_url: str,
    *,
    max_messages: int = MAX_BATCH_ENTRIES,
    wait_seconds: int = RECEIVE_WAIT_SECONDS,
    visibility_seconds: int | None = None,
) -> list[ReceivedMessage]:
    """One ReceiveMessage call: up to ten messages, long-polling for ``wait_seconds``."""
    try:
        if visibility_seconds is None:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(MAX_BATCH_ENTRIES, max_messages)),
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
        else:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(MAX_BATCH_ENTRIES, max_messages)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "receiving messages") from exc
    return [_received(message) for message in response.get("Messages", [])]


def _received(message: Any) -> ReceivedMessage:
    system = message.get("Attributes", {})
    sent_ms = int(system.get("SentTimestamp", 0)) or int(time.time() * 1000)
    attributes = {
        name: str(value.get("StringValue", "")) for name, value in message.get("MessageAttributes", {}).items()
    }
    return ReceivedMessage(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message.get("Body", ""),
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        sent_at=datetime.fromtimestamp(sent_ms / 1000, tz=UTC),
        attributes=attributes,
    )


def delete(
    sqs: SQSClient, queue_url: str, messages: Sequence[ReceivedMessage], *, sleep: Callable[[float], None] = time.sleep
) -> list[ReceivedMessage]:
    """DeleteMessageBatch with failed entries retried; returns the messages still not deleted."""
    remaining: list[ReceivedMessage] = []
    for start in range(0, len(messages), MAX_BATCH_ENTRIES):
        pending = {str(i): m for i, m in enumerate(messages[start : start + MAX_BATCH_ENTRIES])}
        for attempt in range(ENTRY_ATTEMPTS):
            if attempt:
                sleep(backoff_seconds(attempt))
            try:
                response = sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": key, "ReceiptHandle": m.receipt_handle} for key, m in pending.items()],
                )
            except (ClientError, BotoCoreError) as exc:
                logger.warning("DeleteMessageBatch failed (attempt %d): %s", attempt + 1, exc)
                continue
            for ok in response.get("Successful", []):
                pending.pop(ok["Id"], None)
            if not pending:
                break
        remaining.extend(pending.values())
    if remaining:
        logger.error("%d messages could not be deleted and will be delivered again", len(remaining))
    return remaining


def dead_letter(
    sqs: SQSClient,
    dlq_url: str,
    poisoned: Sequence[tuple[ReceivedMessage, str]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ReceivedMessage]:
    """Copy each message to the DLQ with its reason as an attribute; returns those that got there."""
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    by_id: dict[str, ReceivedMessage] = {}
    for index, (message, reason) in enumerate(poisoned):
        by_id[str(index)] = message
        # the reason is read in a terminal and a log: one plain line
        line = one_line(reason, MAX_REASON_CHARS) or "unknown"
        entries.append(
            {
                "Id": str(index),
                "MessageBody": message.body or "<empty>",
                "MessageAttributes": {
                    REASON_ATTRIBUTE: {"DataType": "String", "StringValue": line},
                    "jobping-original-message-id": {"DataType": "String", "StringValue": message.message_id},
                },
            }
        )
    if not entries:
        return []
    report = send_entries(sqs, dlq_url, entries, sleep=sleep)
    for entry_id, reason in report.failed.items():
        logger.error(
            "message %s could not be dead-lettered (%s); it stays on the queue", by_id[entry_id].message_id, reason
        )
    return [message for entry_id, message in by_id.items() if entry_id not in report.failed]


def release(sqs: SQSClient, queue_url: str, messages: Sequence[ReceivedMessage]) -> None:
    """Make messages visible again at once, for work this run chose not to do."""
    for start in range(0, len(messages), MAX_BATCH_ENTRIES):
        chunk = messages[start : start + MAX_BATCH_ENTRIES]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            # harmless: the messages come back when their visibility timeout ends
            logger.warning("could not release %d messages early: %s", len(chunk), exc)
