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
from typing import TYPE_CHECKING

from jobping.analysis import Analyser, AnalysisResult
from jobping.contract import Envelope, PoisonMessageError, parse_message
from jobping.errors import ConfigurationError, PostingRejectedError, TransientError
from jobping.text import one_line
from storage.answers import AnswerLog
from storage.lake import Lake, StoredIndex, StoredVersion, to_row, write_rows
from tasks.sqs.messages import ReceivedMessage, dead_letter, delete, release

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """What became of every received message; the counts always add up to ``received``."""

    received: int = 0
    stored: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    left_for_retry: int = 0
    not_deleted: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    new_versions: set[StoredVersion] = field(default_factory=set)
    dlq_reasons: list[str] = field(default_factory=list)
    top: list[dict[str, object]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.skipped + self.dead_lettered + self.left_for_retry


@dataclass(frozen=True)
class BatchTargets:
    queue_url: str
    dlq_url: str
    lake: Lake
    visibility_timeout_seconds: int


class CostBudget:
    """Dollars the run may spend and requests it may have in flight; once spent, no new posting is sent."""

    def __init__(self, limit_usd: float | None, concurrency: int) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        # the check happens once a slot is free, so queued postings see what the others spent
        self.slots = asyncio.Semaphore(concurrency)

    @property
    def exhausted(self) -> bool:
        return self.limit_usd is not None and self.spent_usd >= self.limit_usd


class Claims:
    """Postings being analysed right now, so that a duplicate in another batch waits instead of paying twice."""

    def __init__(self) -> None:
        self._analysed: dict[StoredVersion, asyncio.Future[bool]] = {}

    async def wait_for_other(self, version: StoredVersion) -> bool:
        """True when another batch already analysed this version; else claim it for this one."""
        other = self._analysed.get(version)
        if other is not None and await asyncio.shield(other):
            return True
        self._analysed[version] = asyncio.get_running_loop().create_future()
        return False

    def release(self, version: StoredVersion, *, analysed: bool) -> None:
        claim = self._analysed.get(version)
        if claim is not None and not claim.done():
            claim.set_result(analysed)


DUPLICATE = "duplicate"
# a DLQ reason travels as a message attribute: long enough to act on, short enough to read
MAX_REASON_CHARS = 1_000
Result = AnalysisResult | BaseException | None | str


class Batch:
    """The messages of one receive, carried across the attempts of the task that handles them."""

    def __init__(self, messages: Sequence[ReceivedMessage]) -> None:
        self.messages = list(messages)
        self.outcome = BatchOutcome(received=len(self.messages))
        self.todo: list[tuple[ReceivedMessage, Envelope]] = []
        self.prompt_version = ""
        self.transient: list[tuple[ReceivedMessage, str]] = []
        self.deferred: list[ReceivedMessage] = []
        self.fatal: BaseException | None = None
        self._finished: set[str] = set()
        self._written: list[ReceivedMessage] = []
        self._poison: list[tuple[ReceivedMessage, str]] = []
        self._skipped: list[ReceivedMessage] = []

    def triage(self, prompt_version: str, stored: StoredIndex) -> None:
        """Parse every message; poison to the DLQ list, already stored to the skip list."""
        seen: set[StoredVersion] = set()
        self.prompt_version = prompt_version
        for message in self.messages:
            try:
                envelope = parse_message(message.body, message.sent_at)
            except PoisonMessageError as exc:
                self._poisoned(message, exc.reason)
                continue
            except Exception as exc:
                self._poisoned(message, f"could not be read: {type(exc).__name__}: {exc}")
                continue
            version = StoredVersion(envelope.job_key, envelope.content_hash, prompt_version)
            if version in stored or version in seen:
                self._skipped.append(message)
                continue
            seen.add(version)
            self.todo.append((message, envelope))

    async def analyse(
        self, analyser: Analyser, budget: CostBudget, claims: Claims, answers: AnswerLog | None = None
    ) -> list[Result]:
        """Analyse what is left to do, concurrently; None where the budget ran out first."""

        async def one(envelope: Envelope) -> AnalysisResult | str | None:
            version = StoredVersion(envelope.job_key, envelope.content_hash, self.prompt_version)
            if await claims.wait_for_other(version):
                return DUPLICATE
            paid = answers.get(version) if answers is not None else None
            if paid is not None:
                claims.release(version, analysed=True)
                return paid
            try:
                async with budget.slots:
                    if budget.exhausted:
                        claims.release(version, analysed=False)
                        return None
                    result = await analyser.analyse(envelope.posting)
                    if answers is not None and result.prompt_tokens:
                        answers.put(version, result)
            except BaseException:
                claims.release(version, analysed=False)
                raise
            claims.release(version, analysed=True)
            budget.spent_usd += result.cost_usd
            return result

        return await asyncio.gather(*(one(envelope) for _, envelope in self.todo), return_exceptions=True)

    def settle(self, results: Sequence[Result], sqs: SQSClient, targets: BatchTargets) -> None:
        """Write the analyses, dead-letter the poison, then delete what is safe; keep the rest."""
        now = datetime.now(UTC)
        rows: list[dict[str, object]] = []
        done: list[ReceivedMessage] = []
        self.transient = []
        for (message, envelope), result in zip(self.todo, results, strict=True):
            if result is None:
                self.deferred.append(message)
            elif isinstance(result, str):
                self._skipped.append(message)
            elif isinstance(result, PostingRejectedError):
                self._poisoned(message, f"analysis failed: {result}")
            elif isinstance(result, TransientError):
                self.transient.append((message, one_line(result, MAX_REASON_CHARS)))
            elif isinstance(result, ConfigurationError) or (
                isinstance(result, BaseException) and not isinstance(result, Exception)
            ):
                # a rejected key or a bad setting fails every posting alike: keep the message, stop the run
                logger.error("analysis of message %s failed: %s", message.message_id, one_line(result))
                self.transient.append((message, one_line(result, MAX_REASON_CHARS)))
                self.fatal = self.fatal or result
            elif isinstance(result, Exception):
                # anything else this one posting raised decides its outcome alone, never the run's
                reason = self._poisoned(message, f"analysis raised {type(result).__name__}: {result}")
                logger.error("message %s goes to the DLQ: %s", message.message_id, reason)
            else:
                rows.append(to_row(envelope, result, now, message.message_id))
                done.append(message)
                self.outcome.new_versions.add(
                    StoredVersion(envelope.job_key, envelope.content_hash, result.prompt_version)
                )
                self._count(result, envelope)

        # the durable write comes first; if it raises, nothing below runs and nothing is deleted
        write_rows(targets.lake, rows)
        # written is stored, whatever fails next: a retry of this batch must not write it again
        self.outcome.stored += len(done)
        self._written.extend(done)
        # what failed for a passing reason is tried again on the next attempt
        self.todo = [(m, e) for m, e in self.todo if any(m is t for t, _ in self.transient)]

        dead = dead_letter(sqs, targets.dlq_url, self._poison)
        self.outcome.dlq_reasons.extend(reason for message, reason in self._poison if message in dead)
        finished = [*self._written, *self._skipped, *dead]
        not_deleted = delete(sqs, targets.queue_url, finished)
        self._finished.update(m.message_id for m in finished)
        self.outcome.not_deleted += len(not_deleted)
        self.outcome.skipped += len(self._skipped)
        self.outcome.dead_lettered += len(dead)
        # poison the DLQ did not take stays with the batch for the next attempt
        self._poison = [(m, r) for m, r in self._poison if m not in dead]
        self._skipped, self._written = [], []

    def _poisoned(self, message: ReceivedMessage, reason: str) -> str:
        """Mark ``message`` for the DLQ; its reason, from a posting or a server, becomes one plain line."""
        line = one_line(reason, MAX_REASON_CHARS)
        self._poison.append((message, line))
        return line

    @property
    def unfinished(self) -> bool:
        """Whether another attempt has something to do: passing failures, or poison not yet in the DLQ."""
        return bool(self.transient or self._poison)

    def held(self) -> list[ReceivedMessage]:
        """The messages this batch still holds: received, and not yet deleted or released."""
        return [m for m in self.messages if m.message_id not in self._finished]

    def give_up(self, sqs: SQSClient, targets: BatchTargets) -> None:
        """Leave what is still undone on the queue; postings the budget stopped are visible at once."""
        if self.deferred:
            release(sqs, targets.queue_url, self.deferred)
        self._finished.update(m.message_id for m in self.messages)
        self.outcome.left_for_retry += len(self.transient) + len(self.deferred) + len(self._poison)
        for message, reason in self._poison:
            logger.warning(
                "message %s could not be dead-lettered (%s); it stays on the queue", message.message_id, reason
            )
        self.todo, self.transient, self.deferred, self._poison = [], [], [], []

    def _count(self, result: AnalysisResult, envelope: Envelope) -> None:
        outcome = self.outcome
        outcome.prompt_tokens += result.prompt_tokens
        outcome.completion_tokens += result.completion_tokens
        outcome.cost_usd += result.cost_usd
        outcome.top.append(
            {
                "fit_score": result.analysis.fit_score,
                "verdict": result.analysis.verdict,
                "title": envelope.posting.title,
                "company": envelope.posting.company or "",
                "job_url": envelope.posting.job_url,
            }
        )
