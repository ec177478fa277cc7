"""The dead-letter queue: what is in it and why, and moving messages back for another try."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from jobping.engine.ports import ReceivedMessage
from tasks.sqs.client import translate
from tasks.sqs.messages import REASON_ATTRIBUTE, delete, receive, release, send_entries

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

# long enough to list or move a page of messages before they show again
PEEK_VISIBILITY_SECONDS = 60
MOVE_TASK_POLL_SECONDS = 1.0
MOVE_TASK_TIMEOUT_SECONDS = 300.0
NO_REASON = "exceeded maxReceiveCount (moved by SQS)"
MAX_TITLE_CHARS = 80


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str
    receive_count: int
    age_seconds: float
    title: str
    site: str


@dataclass
class RedriveReport:
    moved: int = 0
    kept: int = 0
    failed: int = 0
    method: str = "receive, send, delete"
    reasons: dict[str, int] = field(default_factory=dict)


def reason_of(message: ReceivedMessage) -> str:
    return message.attributes.get(REASON_ATTRIBUTE) or NO_REASON


def _shown(value: object) -> str:
    # a title may be any JSON value, nested deep enough to break str()
    return value if isinstance(value, str) else ""


def dead_letter(message: ReceivedMessage, now: datetime) -> DeadLetter:
    title, site = "", ""
    try:
        data = json.loads(message.body)
    # the DLQ holds what could not be read: nesting past the recursion limit, huge integers
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        inner = data.get("posting")
        posting = inner if isinstance(inner, dict) else data
        title, site = _shown(posting.get("title"))[:MAX_TITLE_CHARS], _shown(posting.get("site"))[:MAX_TITLE_CHARS]
    return DeadLetter(
        message_id=message.message_id,
        reason=reason_of(message),
        receive_count=message.receive_count,
        age_seconds=(now - message.sent_at).total_seconds(),
        title=title,
        site=site,
    )


def _peek_all(sqs: SQSClient, dlq_url: str, limit: int) -> list[ReceivedMessage]:
    seen: dict[str, ReceivedMessage] = {}
    while len(seen) < limit:
        batch = receive(sqs, dlq_url, max_messages=limit - len(seen), wait_seconds=0,
                        visibility_seconds=PEEK_VISIBILITY_SECONDS)  # fmt: skip
        fresh = [m for m in batch if m.message_id not in seen]
        if not fresh:
            break
        seen.update((m.message_id, m) for m in fresh)
    return list(seen.values())


def list_dead_letters(sqs: SQSClient, dlq_url: str, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` messages of the DLQ, described; they are visible again afterwards.

    SQS has no peek: each message is received, which raises its ApproximateReceiveCount by one.
    """
    messages = _peek_all(sqs, dlq_url, limit)
    release(sqs, dlq_url, messages)
    now = datetime.now(UTC)
    return [dead_letter(m, now) for m in messages]


def redrive(
    sqs: SQSClient, dlq_url: str, queue_url: str, *, reason: str | None = None, limit: int | None = None
) -> RedriveReport:
    """Move DLQ messages back to the main queue: send first, then delete, so a crash loses nothing.

    With no filter, SQS's own StartMessageMoveTask is used where the endpoint has it.
    """
    if reason is None and limit is None:
        moved = _move_task(sqs, dlq_url, queue_url)
        if moved is not None:
            return RedriveReport(moved=moved, method="StartMessageMoveTask")
    report = RedriveReport()
    keep: list[ReceivedMessage] = []
    cap = limit if limit is not None else 1_000_000
    while report.moved < cap:
        batch = receive(sqs, dlq_url, max_messages=cap - report.moved, wait_seconds=0,
                        visibility_seconds=PEEK_VISIBILITY_SECONDS)  # fmt: skip
        if not batch:
            break
        chosen = [m for m in batch if reason is None or reason.lower() in reason_of(m).lower()]
        keep.extend(m for m in batch if m not in chosen)
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": m.body} for i, m in enumerate(chosen)
        ]
        sent = send_entries(sqs, queue_url, entries) if entries else None
        failed_ids = set(sent.failed) if sent else set()
        copied = [m for i, m in enumerate(chosen) if str(i) not in failed_ids]
        report.failed += len(chosen) - len(copied)
        keep.extend(m for i, m in enumerate(chosen) if str(i) in failed_ids)
        # a crash here leaves a copy in both queues: a duplicate the store absorbs, never a loss
        left = delete(sqs, dlq_url, copied)
        report.moved += len(copied) - len(left)
        for message in copied:
            key = reason_of(message)
            report.reasons[key] = report.reasons.get(key, 0) + 1
    report.kept = len(keep)
    release(sqs, dlq_url, keep)
    return report


def _move_task(sqs: SQSClient, dlq_url: str, queue_url: str) -> int | None:
    """SQS's server-side redrive; None when the endpoint does not offer it."""
    try:
        arns = [
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for url in (dlq_url, queue_url)
        ]
        handle = sqs.start_message_move_task(SourceArn=arns[0], DestinationArn=arns[1])["TaskHandle"]
    except (ClientError, BotoCoreError) as exc:
        logger.info("StartMessageMoveTask is not available here (%s); moving message by message", exc)
        return None
    deadline = time.monotonic() + MOVE_TASK_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            tasks = sqs.list_message_move_tasks(SourceArn=arns[0], MaxResults=10)["Results"]
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "watching the message move task") from exc
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else None)
        if task is not None and task.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
            if task.get("Status") != "COMPLETED":
                raise translate(RuntimeError(str(task.get("FailureReason"))), "moving messages")
            return int(task.get("ApproximateNumberOfMessagesMoved", 0))
        time.sleep(MOVE_TASK_POLL_SECONDS)
    raise TimeoutError(f"the message move task did not finish within {MOVE_TASK_TIMEOUT_SECONDS:.0f} s")
