"""Keeping slow work invisible: extend the visibility of messages still being worked on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from jobping.engine.ports import MAX_BATCH_ENTRIES, ReceivedMessage

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
