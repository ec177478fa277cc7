"""One received batch, end to end: parse, skip what is stored, analyse, write, then delete.

The order is the guarantee: a message is deleted only after its row is durably in the
lake (or it is skipped as already stored, or it is safely in the DLQ). Anything else
stays on the queue and is delivered again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jobping.analysis import Analyser, AnalysisResult
from jobping.contract import Envelope, PoisonMessageError, parse_message
from jobping.errors import TerminalError
from storage.lake import StoredVersion, to_row, write_rows
from tasks.sqs.messages import ReceivedMessage, dead_letter, delete

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

ANALYSIS_CONCURRENCY = 16


@dataclass
class BatchOutcome:
    """What became of every received message; the counts always add up to ``received``."""

    received: int = 0
    stored: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    left_for_retry: int = 0
    not_deleted: int = 0
    new_versions: set[StoredVersion] = field(default_factory=set)
    dlq_reasons: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def add(self, other: BatchOutcome) -> None:
        self.received += other.received
        self.stored += other.stored
        self.skipped += other.skipped
        self.dead_lettered += other.dead_lettered
        self.left_for_retry += other.left_for_retry
        self.not_deleted += other.not_deleted
        self.new_versions |= other.new_versions
        self.dlq_reasons.extend(other.dlq_reasons)
        self.files.extend(other.files)

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.skipped + self.dead_lettered + self.left_for_retry


@dataclass(frozen=True)
class BatchTargets:
    queue_url: str
    dlq_url: str
    lake: Path


async def _analyse_all(
    analyser: Analyser, envelopes: Sequence[Envelope], concurrency: int
) -> list[AnalysisResult | BaseException]:
    gate = asyncio.Semaphore(concurrency)

    async def one(envelope: Envelope) -> AnalysisResult:
        async with gate:
            return await analyser.analyse(envelope.posting)

    return await asyncio.gather(*(one(e) for e in envelopes), return_exceptions=True)


def process_batch(
    messages: Sequence[ReceivedMessage],
    *,
    sqs: SQSClient,
    targets: BatchTargets,
    analyser: Analyser,
    stored: set[StoredVersion],
    concurrency: int = ANALYSIS_CONCURRENCY,
) -> BatchOutcome:
    outcome = BatchOutcome(received=len(messages))
    now = datetime.now(UTC)
    poison: list[tuple[ReceivedMessage, str]] = []
    skipped: list[ReceivedMessage] = []
    todo: list[tuple[ReceivedMessage, Envelope]] = []
    seen: set[StoredVersion] = set()
    for message in messages:
        try:
            envelope = parse_message(message.body, message.sent_at)
        except PoisonMessageError as exc:
            poison.append((message, exc.reason))
            continue
        version = StoredVersion(envelope.job_key, envelope.content_hash, analyser.prompt_version)
        if version in stored or version in seen:
            skipped.append(message)
            continue
        seen.add(version)
        todo.append((message, envelope))

    results = asyncio.run(_analyse_all(analyser, [envelope for _, envelope in todo], concurrency))
    rows: list[dict[str, object]] = []
    analysed: list[ReceivedMessage] = []
    retry: list[ReceivedMessage] = []
    for (message, envelope), result in zip(todo, results, strict=True):
        if isinstance(result, TerminalError):
            poison.append((message, f"analysis refused: {result}"))
        elif isinstance(result, BaseException):
            logger.warning("analysis of message %s failed, it will be delivered again: %s", message.message_id, result)
            retry.append(message)
        else:
            rows.append(to_row(envelope, result, now, message.message_id))
            analysed.append(message)
            outcome.new_versions.add(StoredVersion(envelope.job_key, envelope.content_hash, result.prompt_version))

    # the durable write comes first; if it raises, nothing below runs and nothing is deleted
    outcome.files = [str(path) for path in write_rows(targets.lake, rows)]
    dead = dead_letter(sqs, targets.dlq_url, poison)
    outcome.dlq_reasons = [reason for message, reason in poison if message in dead]
    retry.extend(message for message, _ in poison if message not in dead)

    not_deleted = delete(sqs, targets.queue_url, [*analysed, *skipped, *dead])
    outcome.not_deleted = len(not_deleted)
    outcome.stored = len(analysed)
    outcome.skipped = len(skipped)
    outcome.dead_lettered = len(dead)
    outcome.left_for_retry = len(retry)
    return outcome
