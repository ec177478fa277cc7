"""One received batch, end to end: parse, skip what is stored, analyse, write, then delete.

The order is the guarantee: a message is deleted only after its row is durably stored (or
it is skipped as already stored, or it is safely in the DLQ). Anything else stays on the
queue and is delivered again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime

from jobping.contract import Envelope, PoisonMessageError
from jobping.engine.claims import Held, HeldElsewhere, SharedClaims, StoredElsewhere
from jobping.engine.groups import Groups, Placement
from jobping.engine.holding import Holding
from jobping.engine.outcomes import (
    FINISHED,
    BatchResult,
    Claimed,
    DeadLettered,
    Deferred,
    Fatal,
    Outcome,
    Retry,
    Seen,
    Skipped,
    Stored,
    TopMatch,
)
from jobping.engine.ports import (
    Analysed,
    Analyser,
    AnalysisStore,
    AnswerStore,
    Queue,
    ReceivedMessage,
    Sighting,
    StoredIndex,
    StoredVersion,
)
from jobping.errors import ConfigurationError, PostingRejectedError, TransientError
from jobping.sightings import Sightings, parse_body
from jobping.text import one_line

logger = logging.getLogger(__name__)

# a DLQ reason travels as a message attribute: long enough to act on, short enough to read
MAX_REASON_CHARS = 1_000
# jitter from a generator of our own: the global one belongs to whoever seeds it (hypothesis does)
_JITTER = random.Random()  # noqa: S311


@dataclass(frozen=True)
class RetryPolicy:
    """How often a posting that failed for a passing reason (429, 5xx, a timeout) is tried within its batch."""

    attempts: int = 3
    backoff_seconds: float = 2.0
    jitter_factor: float = 0.5

    def delay(self, retry: int) -> float:
        """Seconds before the ``retry``-th retry: exponential, with jitter so that batches spread out."""
        base: float = self.backoff_seconds * 2 ** (retry - 1)
        jitter = _JITTER.uniform(-self.jitter_factor, self.jitter_factor)
        return max(0.0, base * (1 + jitter))


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


class InFlight:
    """Postings this process analyses right now: a duplicate in another batch waits instead of paying twice."""

    def __init__(self) -> None:
        self._analysed: dict[StoredVersion, asyncio.Future[bool]] = {}

    async def wait_for_other(self, version: StoredVersion) -> bool:
        """True when another batch already analysed this version; else take it for this one."""
        other = self._analysed.get(version)
        if other is not None and await asyncio.shield(other):
            return True
        self._analysed[version] = asyncio.get_running_loop().create_future()
        return False

    def release(self, version: StoredVersion, *, analysed: bool) -> None:
        taken = self._analysed.get(version)
        if taken is not None and not taken.done():
            taken.set_result(analysed)

    def forget(self, version: StoredVersion) -> None:
        """The analysis of ``version`` was not stored after all: the next message carrying it analyses it."""
        taken = self._analysed.get(version)
        if taken is not None and taken.done():
            del self._analysed[version]


def judge(error: BaseException) -> Outcome:
    """What an error raised while handling one posting means for that posting."""
    if isinstance(error, PostingRejectedError):
        return DeadLettered(one_line(f"analysis failed: {error}", MAX_REASON_CHARS))
    if isinstance(error, TransientError):
        return Retry(one_line(error, MAX_REASON_CHARS))
    if isinstance(error, ConfigurationError) or not isinstance(error, Exception):
        # a rejected key or a bad setting fails every posting alike: keep the message, stop the run
        return Fatal(error)
    # anything else this one posting raised decides its outcome alone, never the run's
    return DeadLettered(one_line(f"analysis raised {type(error).__name__}: {error}", MAX_REASON_CHARS))


@dataclass(eq=False)
class BatchHandler:
    """Handles batches of one run: the queue, the lake and the analyser, and what the run shares.

    Calling it handles one batch to the end and returns each message's outcome. It keeps no
    state of the batch between calls: a batch handled again (a retry after a failed write)
    starts afresh, and what an earlier call stored is skipped through ``stored``. ``holding``
    (the drain's) is told when a batch's messages are settled, before any of them is deleted.
    """

    queue: Queue
    lake: AnalysisStore
    analyser: Analyser
    _: KW_ONLY
    stored: StoredIndex
    budget: CostBudget
    in_flight: InFlight = field(default_factory=InFlight)
    shared: SharedClaims | None = None
    answers: AnswerStore | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    groups: Groups | None = None
    holding: Holding | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __post_init__(self) -> None:
        # without one (a handler made for one batch, in tests) the groups start from an empty lake
        self.placing: Groups = self.groups or Groups(self.lake, self.analyser.prompt_version)

    async def __call__(self, messages: Sequence[ReceivedMessage]) -> BatchResult:
        outcomes: dict[str, Outcome] = {}
        sightings: list[Sighting] = []
        todo = self._triage(messages, outcomes, sightings)
        envelopes = dict(todo)
        placements = await self.placing.place_all(todo)
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1:
                await self.sleep(self.retry.delay(attempt - 1))
            answers = await asyncio.gather(
                *(self._analyse(message_id, envelope, placements[message_id]) for message_id, envelope in todo),
                return_exceptions=True,
            )
            for (message_id, _), answer in zip(todo, answers, strict=True):
                outcomes[message_id] = answer if not isinstance(answer, BaseException) else judge(answer)
            todo = [(message_id, envelope) for message_id, envelope in todo if isinstance(outcomes[message_id], Retry)]
            if not todo or any(isinstance(outcome, Fatal) for outcome in outcomes.values()):
                break
        for message_id, placement in placements.items():
            # what got no analysis is no member to reuse from; a posting placed after it analyses its own
            if not isinstance(outcomes[message_id], Stored):
                placement.give_up()
        result = await asyncio.to_thread(self._settle, messages, outcomes, envelopes, sightings)
        # the rows are durable: their keys' members can be read back from the lake. A batch that raised
        # forgets nothing (its rows may be stored or not): its keys' members stay until the drain ends
        await self.placing.forget(placements.values())
        return result

    def _triage(
        self, messages: Sequence[ReceivedMessage], outcomes: dict[str, Outcome], sightings: list[Sighting]
    ) -> list[tuple[str, Envelope]]:
        """Parse every message: poison is dead-lettered, what is stored is skipped, sightings are to record
        (never analysed), the rest is to do."""
        seen: set[StoredVersion] = set()
        todo: list[tuple[str, Envelope]] = []
        for message in messages:
            try:
                envelope = parse_body(message.body, message.sent_at)
            except PoisonMessageError as exc:
                outcomes[message.message_id] = DeadLettered(one_line(exc.reason, MAX_REASON_CHARS))
                continue
            except Exception as exc:
                reason = f"could not be read: {type(exc).__name__}: {exc}"
                outcomes[message.message_id] = DeadLettered(one_line(reason, MAX_REASON_CHARS))
                continue
            if isinstance(envelope, Sightings):
                sightings.append(Sighting(tuple(envelope.job_keys), envelope.scraped_at, message.message_id))
                outcomes[message.message_id] = Seen(len(envelope.job_keys))
                continue
            version = StoredVersion(
                envelope.job_key, envelope.content_hash, self.analyser.prompt_version, envelope.scraped
            )
            if version in self.stored or version in seen:
                outcomes[message.message_id] = Skipped()
                continue
            seen.add(version)
            todo.append((message.message_id, envelope))
        return todo

    async def _analyse(self, message_id: str, envelope: Envelope, placement: Placement) -> Outcome:
        version = StoredVersion(envelope.job_key, envelope.content_hash, self.analyser.prompt_version, envelope.scraped)
        if await self.in_flight.wait_for_other(version):
            return Skipped(duplicate=True)
        try:
            outcome = await self._analyse_claimed(version, message_id, envelope, placement)
        except BaseException:
            await self._let_go(version)
            self.in_flight.release(version, analysed=False)
            raise
        if isinstance(outcome, Deferred):
            await self._let_go(version)
        self.in_flight.release(version, analysed=isinstance(outcome, Stored | Skipped))
        return outcome

    async def _let_go(self, version: StoredVersion) -> None:
        """This call stores nothing of ``version``: its shared claim is anyone's at once, with its answer."""
        if self.shared is not None:
            await asyncio.to_thread(self.shared.release, [version])

    async def _analyse_claimed(
        self, version: StoredVersion, message_id: str, envelope: Envelope, placement: Placement
    ) -> Stored | Skipped | Claimed | Deferred:
        shared = self.shared
        claim = await asyncio.to_thread(shared.claim, version, message_id) if shared is not None else Held()
        if isinstance(claim, StoredElsewhere):
            self.stored.add_all([version])
            return Skipped()
        if isinstance(claim, HeldElsewhere):
            return Claimed(claim.retry_after_seconds)
        paid = claim.answer or (self.answers.get(version) if self.answers is not None else None)
        if paid is not None:
            return Stored(paid, placement.settle(paid, reused=False))
        reused = await placement.reusable()
        if reused is not None:
            # the same job's near-identical posting was analysed: its analysis, at no cost
            return Stored(reused, placement.settle(reused, reused=True))
        async with self.budget.slots:
            if self.budget.exhausted:
                return Deferred()
            result = await self.analyser.analyse(envelope.posting)
            if self.answers is not None and result.prompt_tokens:
                self.answers.put(version, result)
        if self.shared is not None and result.prompt_tokens:
            await asyncio.to_thread(self.shared.answered, version, result)
        self.budget.spent_usd += result.cost_usd
        return Stored(result, placement.settle(result, reused=False))

    def _settle(
        self,
        messages: Sequence[ReceivedMessage],
        outcomes: dict[str, Outcome],
        envelopes: dict[str, Envelope],
        sightings: Sequence[Sighting] = (),
    ) -> BatchResult:
        """Write the analyses and the sightings, dead-letter the poison, then delete what is safe; keep the rest."""
        now = datetime.now(UTC)
        analysed = [
            Analysed(envelopes[m.message_id], outcome.result, now, m.message_id, outcome.grouping)
            for m in messages
            if isinstance(outcome := outcomes[m.message_id], Stored)
        ]
        if self.shared is not None and analysed:
            # another consumer took over the claim (and stores the posting): this message comes back, and is skipped
            lost = self.shared.taken_over(a.version for a in analysed)
            for elsewhere in (a for a in analysed if a.version in lost):
                outcomes[elsewhere.message_id] = Claimed(max(1, math.ceil(self.shared.lease.total_seconds())))
                self.in_flight.forget(elsewhere.version)
            analysed = [a for a in analysed if a.version not in lost]
        # the durable write comes first; if it raises, nothing below runs and nothing is deleted
        try:
            self.lake.write(analysed)
        except BaseException:
            for written in analysed:
                self.in_flight.forget(written.version)
            raise
        self.stored.add_all(a.version for a in analysed)
        if self.shared is not None:
            self.shared.stored(a.version for a in analysed)
        if sightings:
            # durable before any delete too; if it raises the analyses above are stored, and their
            # messages, coming again, are skipped
            self.lake.record_sightings(sightings)

        if self.holding is not None:
            # every message's fate is decided: no extension may follow its delete, release or new timeout
            self.holding.let_go(messages)
        poisoned = [(m, o.reason) for m in messages if isinstance(o := outcomes[m.message_id], DeadLettered)]
        try:
            taken = {m.message_id for m in self.queue.dead_letter(poisoned)} if poisoned else set()
        except TransientError as exc:
            logger.warning("the DLQ could not be reached (%s): %d messages stay on the queue", exc, len(poisoned))
            taken = set()
        for message, reason in poisoned:
            if message.message_id not in taken:
                # not in the DLQ, so not deleted: it comes again and goes to the DLQ then
                why = f"could not be dead-lettered: {reason}"
                outcomes[message.message_id] = Retry(one_line(why, MAX_REASON_CHARS))

        finished = [m for m in messages if isinstance(outcomes[m.message_id], FINISHED)]
        not_deleted = self.queue.delete(finished) if finished else []
        self._come_back(messages, outcomes)

        result = BatchResult(outcomes=[(m.message_id, outcomes[m.message_id]) for m in messages])
        for _, outcome in result.outcomes:
            result.counts.count(outcome)
            if isinstance(outcome, Fatal) and result.fatal is None:
                result.fatal = outcome.error
        result.counts.not_deleted = len(not_deleted)
        result.top = [top_match(a) for a in analysed]
        return result

    def _come_back(self, messages: Sequence[ReceivedMessage], outcomes: dict[str, Outcome]) -> None:
        """Make visible again what was left for later for a reason that is no failure."""
        deferred = [m for m in messages if isinstance(outcomes[m.message_id], Deferred)]
        if deferred:
            # the budget stopped them: visible again at once for the next run
            self.queue.release(deferred)
        claimed: dict[int, list[ReceivedMessage]] = {}
        for m in messages:
            if isinstance(outcome := outcomes[m.message_id], Claimed):
                claimed.setdefault(outcome.retry_after_seconds, []).append(m)
        for seconds, held in claimed.items():
            # back when the claim met is stored (then skipped) or has run out (then taken over)
            self.queue.extend(held, seconds)


def top_match(analysed: Analysed) -> TopMatch:
    posting, analysis = analysed.envelope.posting, analysed.result.analysis
    return TopMatch(
        fit_score=analysis.fit_score,
        verdict=analysis.verdict,
        title=posting.title,
        company=posting.company or "",
        job_url=posting.job_url,
        job_group=analysed.grouping.job_group if analysed.grouping is not None else "",
    )
