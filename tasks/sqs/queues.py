"""The main queue and its dead-letter queue, created and converged idempotently."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from jobping.engine.ports import QueueDepth
from jobping.settings import RECEIVE_WAIT_SECONDS, SqsSettings
from tasks.sqs.client import translate

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

MESSAGE_RETENTION_SECONDS = 86_400
DLQ_RETENTION_SECONDS = 1_209_600
MAX_RECEIVE_COUNT = 3
SSE_ATTRIBUTE = "SqsManagedSseEnabled"
NOT_FOUND_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class Queues:
    url: str
    dlq_url: str
    dlq_arn: str | None


def _find(sqs: SQSClient, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
            return None
        raise


def _converge(sqs: SQSClient, name: str, attributes: dict[str, str]) -> str:
    """Create the queue with these attributes, or set them on the existing one."""
    url = _find(sqs, name)
    if url is None:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    return url


def _with_sse(sqs: SQSClient, name: str, attributes: dict[str, str]) -> str:
    try:
        return _converge(sqs, name, {**attributes, SSE_ATTRIBUTE: "true"})
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if "Attribute" not in code and "InvalidParameter" not in code:
            raise
        logger.warning("the SQS endpoint refused server-side encryption (%s); queue %s is unencrypted", code, name)
        return _converge(sqs, name, attributes)


def ensure_queues(sqs: SQSClient, config: SqsSettings) -> Queues:
    """Create both queues, or converge their attributes to the settings; safe to repeat."""
    try:
        dlq_url = _with_sse(sqs, config.dlq_name, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})
        url = _with_sse(
            sqs,
            config.queue_name,
            {
                "VisibilityTimeout": str(config.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(MESSAGE_RETENTION_SECONDS),
                "ReceiveMessageWaitTimeSeconds": str(RECEIVE_WAIT_SECONDS),
                "RedrivePolicy": redrive,
            },
        )
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "creating the queues") from exc
    return Queues(url=url, dlq_url=dlq_url, dlq_arn=dlq_arn)


def find_queues(sqs: SQSClient, config: SqsSettings) -> Queues | None:
    """The queues' URLs when both exist, else None; creates and changes nothing."""
    try:
        url, dlq_url = _find(sqs, config.queue_name), _find(sqs, config.dlq_name)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "looking up the queues") from exc
    return None if url is None or dlq_url is None else Queues(url=url, dlq_url=dlq_url, dlq_arn=None)


def locate_queues(sqs: SQSClient, config: SqsSettings) -> Queues:
    """The queues' URLs in two calls when both exist; created (and converged) when one is missing.

    The flows use this on every run; `jobping queues ensure` converges attributes on purpose.
    """
    return find_queues(sqs, config) or ensure_queues(sqs, config)


def queue_attributes(sqs: SQSClient, url: str) -> dict[str, str]:
    try:
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {str(name): value for name, value in found.items()}
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "reading queue attributes") from exc


def depth(sqs: SQSClient, url: str) -> QueueDepth:
    attributes = queue_attributes(sqs, url)
    return QueueDepth(
        name=url.rstrip("/").rsplit("/", 1)[-1],
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )
