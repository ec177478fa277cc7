"""Draining the queue in overlapping batches, within budgets, until it is empty.

While the analyser works on some batches, the next are already received, so it is never
idle while the queue is polled; a heartbeat keeps every held message invisible; a batch
that stores nothing and leaves work behind means the analyser is down, and receiving
stops rather than spending the messages' receive counts. Given a shared claim record, every
posting is claimed for all consumers before it costs anything, and the heartbeat renews the
claims as it extends the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobping.engine.batch import BatchHandler, CostBudget, InFlight, RetryPolicy
from jobping.engine.claims import SharedClaims
from jobping.engine.groups import Groups
from jobping.engine.holding import Holding
from jobping.engine.outcomes import BatchResult, Counts, Retry, TopMatch
from jobping.engine.ports import (
    MAX_BATCH_ENTRIES,
    Analyser,
    AnalysisStore,
    AnswerStore,
    ClaimRecord,
    Queue,
    ReceivedMessage,
)
from jobping.settings import LLM_CONCURRENCY, RECEIVE_WAIT_SECONDS, VISIBILITY_TIMEOUT_SECONDS

# postings received ahead of the analyser, per request it may have in flight
PREFETCH_FACTOR = 4
# the poll that confirms a queue with nothing visible or delayed is empty
IDLE_PROBE_WAIT_SECONDS = 0
TOP_MATCHES = 10
# a claim's lease, in visibility timeouts: the heartbeat renews it with the messages' visibility, and a
# heartbeat a whole visibility timeout late (a loaded machine) must not let another consumer take a live
# holder's claim over and analyse the posting a second time; a killed holder's claim is taken over one
# visibility timeout after its message comes back
LEASE_VISIBILITIES = 2

RunBatch = Callable[[BatchHandler, list[ReceivedMessage]], Awaitable[BatchResult]]


@dataclass(frozen=True)
class Limits:
    """The budgets of one drain: messages, seconds and dollars (None: no limit)."""

    max_jobs: int | None = None
    max_seconds: float | None = None
    max_cost_usd: float | None = None

    def reached(self, received: int, elapsed: float, budget: CostBudget) -> str | None:
        if self.max_jobs is not None and received >= self.max_jobs:
            return f"max_jobs {self.max_jobs}"
        if self.max_seconds is not None and elapsed >= self.max_seconds:
            return f"max_seconds {self.max_seconds:g}"
        if budget.exhausted:
            return f"max_cost_usd {self.max_cost_usd:g}"
        return None

    def wanted(self, received: int) -> int:
        return MAX_BATCH_ENTRIES if self.max_jobs is None else min(MAX_BATCH_ENTRIES, self.max_jobs - received)


@dataclass(frozen=True)
class DrainOptions:
    """How the drain uses the queue and the analyser; unsaid, as the settings' defaults say."""

    receive_wait_seconds: int = RECEIVE_WAIT_SECONDS
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS
    # requests the analyser may have in flight at once
    concurrency: int = LLM_CONCURRENCY
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def prefetch(self) -> int:
        return max(MAX_BATCH_ENTRIES, self.concurrency * PREFETCH_FACTOR)


@dataclass
class AnalyseReport(Counts):
    """What a drain did with every message it received."""

    model: str = ""
    prompt_version: str = ""
    # the caller says whether the analyser is the offline stand-in rather than an LLM
    offline: bool = False
    already_stored: int = 0
    batches: int = 0
    seconds: float = 0.0
    stopped_by: str = "empty queue"
    dlq_reasons: list[str] = field(default_factory=list)
    retry_reasons: list[str] = field(default_factory=list)
    top: list[TopMatch] = field(default_factory=list)
    # the queues after the run, as the caller saw them
    queue_visible: int = 0
    queue_in_flight: int = 0
    dlq_visible: int = 0
    # the first error that stopped the drain; raised by the caller once it has reported
    failure: BaseException | None = None
    # what the caller's ping of new matches after the run did, as one line
    ping: str = ""

    def add_batch(self, result: BatchResult) -> None:
        self.batches += 1
        self.add(result.counts)
        self.dlq_reasons.extend(result.dlq_reasons)
        self.retry_reasons.extend(result.retry_reasons)
        # one line per job: the best posting of each group
        best: dict[str, TopMatch] = {}
        for match in sorted([*self.top, *result.top], key=lambda match: -match.fit_score):
            best.setdefault(match.job_group or match.job_url, match)
        self.top = list(best.values())[:TOP_MATCHES]


async def handle_directly(handler: BatchHandler, messages: list[ReceivedMessage]) -> BatchResult:
    return await handler(messages)


async def drain(
    queue: Queue,
    lake: AnalysisStore,
    analyser: Analyser,
    *,
    limits: Limits | None = None,
    options: DrainOptions | None = None,
    answers: AnswerStore | None = None,
    claims: ClaimRecord | None = None,
    run_batch: RunBatch = handle_directly,
) -> AnalyseReport:
    """Receive, analyse, store and delete until the queue is empty or a limit is reached.

    ``run_batch`` runs one batch through the handler; the flow passes one that makes each
    batch a task of its own. Whatever one batch raises stops the drain; the batches already
    running finish first, and the report says what every received message became. ``claims``
    is the record every consumer of the queue shares; without it, duplicates are caught within
    this drain only.
    """
    limits, options = limits or Limits(), options or DrainOptions()
    # a claim stored since this moment may be newer than what the drain reads next
    known_since = datetime.now(UTC)
    stored = await asyncio.to_thread(lake.stored_versions)
    shared = None
    if claims is not None:
        lease = LEASE_VISIBILITIES * options.visibility_timeout_seconds
        shared = SharedClaims(claims, lease_seconds=lease, known_since=known_since)
    groups, holding = Groups(lake, analyser.prompt_version), Holding()
    budget = CostBudget(limits.max_cost_usd, options.concurrency)
    handler = BatchHandler(
        queue, lake, analyser, stored=stored, budget=budget, in_flight=InFlight(), shared=shared, answers=answers,
        retry=options.retry, groups=groups, holding=holding,
    )  # fmt: skip
    report = AnalyseReport(model=analyser.model, prompt_version=analyser.prompt_version, already_stored=len(stored))
    run = _Drain(queue, handler, holding, report=report, limits=limits, options=options, run_batch=run_batch)
    try:
        await run.run()
    finally:
        if shared is not None:
            # what is still held (a batch that raised) is anyone's at once; old claims are pruned
            await asyncio.to_thread(shared.close)
    if budget.exhausted and report.stopped_by == "empty queue":
        report.stopped_by = limits.reached(0, 0, budget) or report.stopped_by
    return report


class _Drain:
    """The batches of one drain in flight, up to a number of messages held at once."""

    def __init__(
        self,
        queue: Queue,
        handler: BatchHandler,
        holding: Holding,
        *,
        report: AnalyseReport,
        limits: Limits,
        options: DrainOptions,
        run_batch: RunBatch,
    ) -> None:
        self.queue, self.handler, self.holding, self.report = queue, handler, holding, report
        self.limits, self.options, self.run_batch = limits, options, run_batch
        self.running: dict[asyncio.Future[BatchResult], list[ReceivedMessage]] = {}
        self.received = 0
        # messages the queue last said were visible or delayed, less those received since
        self.expected = 0
        self.outage = False

    async def run(self) -> None:
        started = time.monotonic()
        shared = self.handler.shared
        renew = shared.renew if shared is not None else None
        async with heartbeat(self.queue, self.holding, self.options.visibility_timeout_seconds, renew=renew):
            try:
                while self.report.failure is None:
                    await self.make_room()
                    # asked once room is made: the batches that finished meanwhile may have spent the budget
                    stop = self.stop_reason(time.monotonic() - started)
                    if stop or self.report.failure is not None:
                        self.report.stopped_by = stop or self.report.stopped_by
                        break
                    wanted, wait = self.limits.wanted(self.received), await self.poll_wait()
                    messages = await asyncio.to_thread(self.queue.receive, wanted, wait)
                    if not messages:
                        break
                    self.received += len(messages)
                    self.expected -= len(messages)
                    self.holding.hold(messages)
                    self.running[asyncio.ensure_future(self.run_batch(self.handler, messages))] = messages
            except Exception as exc:
                # a receive that fails still lets the batches already running settle and count
                self.report.failure = self.report.failure or exc
            finally:
                if self.running:
                    done, _ = await asyncio.wait(self.running)
                    self.collect(done)
        self.report.seconds = time.monotonic() - started

    async def poll_wait(self) -> int:
        """Seconds the next receive waits: a long poll while messages are known to wait, one short poll once none do.

        Once this drain has received as many as the queue last said it held, it asks again (one request
        per catch-up, not per receive): with nothing visible or delayed, a long poll could only hold the
        drain's end back by its whole wait, since what is in flight elsewhere comes back at its visibility
        timeout, later than a long poll waits. At the start, the same holds only when nothing is in flight.
        """
        wait = self.options.receive_wait_seconds
        if self.expected > 0:
            return wait
        depth = await asyncio.to_thread(self.queue.depth)
        self.expected = depth.visible + depth.delayed
        nothing_waits = depth.idle if self.received == 0 else not self.expected
        return min(wait, IDLE_PROBE_WAIT_SECONDS) if nothing_waits else wait

    def stop_reason(self, elapsed: float) -> str | None:
        """Why no further batch should be received, or None to go on."""
        if self.outage:
            return "the LLM being unavailable"
        return self.limits.reached(self.received, elapsed, self.handler.budget)

    async def make_room(self) -> None:
        # what finished while the receive waited is counted now: its failure or outage stops the drain at once
        self.collect({batch for batch in self.running if batch.done()})
        while sum(len(messages) for messages in self.running.values()) >= self.options.prefetch:
            done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
            self.collect(done)

    def collect(self, done: set[asyncio.Future[BatchResult]]) -> None:
        report = self.report
        for finished in done:
            messages = self.running.pop(finished)
            # a batch that raised let nothing go itself: its messages come back when their visibility ends
            self.holding.let_go(messages)
            error = finished.exception()
            if error is not None:
                # nothing of a batch that raised was deleted: all of it comes again
                report.failure = report.failure or error
                report.add(Counts(received=len(messages), left_for_retry=len(messages)))
                report.batches += 1
                continue
            result = finished.result()
            report.add_batch(result)
            report.failure = report.failure or result.fatal
            # a batch that stored nothing and left work behind for a passing reason means the
            # analyser is down: receiving more would only spend the messages' receive counts
            retried = sum(isinstance(outcome, Retry) for _, outcome in result.outcomes)
            if retried and not result.counts.stored:
                self.outage = True


@contextlib.asynccontextmanager
async def heartbeat(
    queue: Queue, holding: Holding, timeout_seconds: int, *, renew: Callable[[], object] | None = None
) -> AsyncIterator[None]:
    """While the block runs, every half visibility timeout, extend the messages still held (and ``renew``).

    Slow work (a slow LLM) is then not delivered a second time; a batch waiting for the
    analyser is held too, from its receive on. ``renew`` extends the claims held, whose lease
    is a visibility timeout too.
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(timeout_seconds / 2)
            await asyncio.to_thread(holding.extend, queue, timeout_seconds)
            if renew is not None:
                await asyncio.to_thread(renew)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
