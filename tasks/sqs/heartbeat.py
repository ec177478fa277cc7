"""Keeping slow work invisible: extend the visibility of a batch's messages while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tasks.sqs.messages import MAX_BATCH_ENTRIES, ReceivedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


def extend(sqs: SQSClient, queue_url: str, messages: Sequence[ReceivedMessage], seconds: int) -> int:
    """ChangeMessageVisibilityBatch to ``seconds`` from now; returns how many were extended."""
    extended = 0
    for start in range(0, len(messages), MAX_BATCH_ENTRIES):
        chunk = messages[start : start + MAX_BATCH_ENTRIES]
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not extend the visibility of %d messages: %s", len(chunk), exc)
            continue
        extended += len(response.get("Successful", []))
        for failed in response.get("Failed", []):
            logger.warning("could not extend the visibility of a message: %s", failed.get("Code"))
    return extended


class VisibilityHeartbeat:
    """While the block runs, every half visibility timeout, extend the messages still held.

    Slow work (a slow LLM) is then not delivered a second time; the heartbeat stops when the
    block ends, whether the batch succeeded or failed.
    """

    def __init__(
        self, sqs: SQSClient, queue_url: str, timeout_seconds: int, held: Callable[[], Sequence[ReceivedMessage]]
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._timeout = timeout_seconds
        self._held = held
        self._task: asyncio.Task[None] | None = None
        self.beats = 0

    async def __aenter__(self) -> VisibilityHeartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._timeout / 2)
            held = list(self._held())
            if held:
                await asyncio.to_thread(extend, self._sqs, self._url, held, self._timeout)
                self.beats += 1
