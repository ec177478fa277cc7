"""An SQS queue and its DLQ as the analyse engine's Queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobping.engine.ports import QueueDepth, ReceivedMessage
from tasks.sqs.heartbeat import extend
from tasks.sqs.messages import dead_letter, delete, receive, release
from tasks.sqs.queues import depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class SqsQueue:
    """The queue at ``url`` with its DLQ at ``dlq_url``; receives hide messages for ``visibility_seconds``."""

    sqs: SQSClient
    url: str
    dlq_url: str
    visibility_seconds: int

    def depth(self) -> QueueDepth:
        return depth(self.sqs, self.url)

    def receive(self, max_messages: int, wait_seconds: int) -> list[ReceivedMessage]:
        # the setting applies even to a queue created with another default
        return receive(
            self.sqs, self.url, max_messages=max_messages, wait_seconds=wait_seconds,
            visibility_seconds=self.visibility_seconds,
        )  # fmt: skip

    def delete(self, messages: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        return delete(self.sqs, self.url, messages)

    def dead_letter(self, poisoned: Sequence[tuple[ReceivedMessage, str]]) -> list[ReceivedMessage]:
        return dead_letter(self.sqs, self.dlq_url, poisoned)

    def release(self, messages: Sequence[ReceivedMessage]) -> None:
        release(self.sqs, self.url, messages)

    def extend(self, messages: Sequence[ReceivedMessage], seconds: int) -> int:
        return extend(self.sqs, self.url, messages, seconds)
