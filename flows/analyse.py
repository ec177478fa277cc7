"""The analyse flow: drain the queue in batches into the Parquet lake, until empty or a budget.

Batches overlap: while the LLM works on some, the next are already received, so the model
is never idle while SQS is polled. Each batch is one Prefect task run.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import duckdb
from prefect import State, Task, flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, Field

from jobping.analysis import Analyser
from jobping.errors import TransientError
from jobping.settings import Settings
from jobping.text import one_line
from storage.answers import AnswerLog
from storage.catalog import refresh_catalog
from storage.lake import Lake, StoredIndex, stored_versions
from tasks.batch import Batch, BatchOutcome, BatchTargets, Claims, CostBudget
from tasks.llm.factory import make_analyser
from tasks.llm.offline import OFFLINE_MODEL
from tasks.sqs.client import make_sqs_client
from tasks.sqs.heartbeat import VisibilityHeartbeat
from tasks.sqs.messages import MAX_BATCH_ENTRIES, ReceivedMessage, receive
from tasks.sqs.queues import QueueDepth, depth, locate_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_JOBS_LIMIT = 1_000_000
MAX_SECONDS_LIMIT = 86_400.0
MAX_COST_LIMIT_USD = 10_000.0
BATCH_RETRIES = 2
BATCH_BACKOFF_SECONDS = 2.0
BATCH_JITTER_FACTOR = 0.5
# postings received ahead of the analyser, so that it never waits for a receive
PREFETCH_FACTOR = 4
# the poll that confirms an idle queue (nothing visible, in flight or delayed) is empty
IDLE_PROBE_WAIT_SECONDS = 0
TOP_MATCHES = 10


class AnalyseReport(BaseModel):
    """What an analyse run did with every message it received."""

    model: str
    prompt_version: str
    offline: bool
    batches: int = 0
    received: int = 0
    stored: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    left_for_retry: int = 0
    not_deleted: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    stopped_by: str = "empty queue"
    queue_visible: int = 0
    queue_in_flight: int = 0
    dlq_visible: int = 0
    dlq_reasons: list[str] = Field(default_factory=list)
    top: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.skipped + self.dead_lettered + self.left_for_retry

    def counts(self) -> str:
        return (
            f"received {self.received} = stored {self.stored} + skipped {self.skipped} + "
            f"DLQ {self.dead_lettered} + left for retry {self.left_for_retry}"
        )

    def add(self, outcome: BatchOutcome) -> None:
        self.batches += 1
        for name in ("received", "stored", "skipped", "dead_lettered", "left_for_retry", "not_deleted",
                     "prompt_tokens", "completion_tokens", "cost_usd"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(outcome, name))
        self.dlq_reasons.extend(outcome.dlq_reasons)
        self.top = sorted([*self.top, *outcome.top], key=lambda row: -int(row["fit_score"]))[:TOP_MATCHES]


class Limits(BaseModel):
    """The budgets of one drain: messages, seconds and dollars."""

    max_jobs: int | None
    max_seconds: float | None
    max_cost_usd: float | None

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


class Drain:
    """Batches in flight at once, up to a number of postings; the first failure stops the drain."""

    def __init__(self, report: AnalyseReport, prefetch: int) -> None:
        self.report = report
        self.prefetch = prefetch
        self.running: dict[asyncio.Future[BatchOutcome], Batch] = {}
        self.failure: BaseException | None = None
        self.outage = False
        self.received = 0

    def start(self, batch: Batch, work: Coroutine[Any, Any, BatchOutcome]) -> None:
        self.received += len(batch.messages)
        self.running[asyncio.ensure_future(work)] = batch

    def stop_reason(self, limits: Limits, elapsed: float, budget: CostBudget) -> str | None:
        """Why no further batch should be received, or None to go on."""
        if self.outage:
            return "the LLM being unavailable"
        return limits.reached(self.received, elapsed, budget)

    def held(self) -> list[ReceivedMessage]:
        """Every message a running batch still holds, from its receive until it is settled."""
        return [message for batch in self.running.values() for message in batch.held()]

    async def make_room(self) -> None:
        while sum(len(batch.messages) for batch in self.running.values()) >= self.prefetch:
            done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
            self._collect(done)

    async def finish(self) -> None:
        if self.running:
            done, _ = await asyncio.wait(self.running)
            self._collect(done)

    def raise_failure(self) -> None:
        """Raise the first failure, noting what the run did with what it received."""
        if self.failure is not None:
            self.failure.add_note(self.report.counts())
            raise self.failure

    def _collect(self, done: set[asyncio.Future[BatchOutcome]]) -> None:
        for finished in done:
            batch = self.running.pop(finished)
            error = finished.exception()
            if error is not None:
                self.failure = self.failure or error
                # a failed batch still received its messages: what it did not finish goes back to the queue
                batch.outcome.left_for_retry += len(batch.held())
                self.report.add(batch.outcome)
            else:
                outcome = finished.result()
                self.report.add(outcome)
                # a batch that stored nothing and left work behind means the llm is down:
                # receiving more would only spend the messages' receive counts
                if outcome.left_for_retry and not outcome.stored:
                    self.outage = True


class EarlyCatalog:
    """Binds the catalog's views once the lake holds a file, rather than only at the end of the run.

    DuckDB binds a view by reading the schema of every file it covers, so a first run that bound
    them at its end would hold memory in proportion to the files it wrote (one per batch). Bound
    early, the views read later files by themselves and the refresh at the end is a no-op.
    """

    def __init__(self, catalog: Path, lake: Lake) -> None:
        self.catalog, self.lake = catalog, lake
        self.tried = False

    async def bind_once_stored(self, stored: int) -> None:
        if self.tried or not stored:
            return
        # once only: a reader holding the catalog is not waited for, the end of the run tries again
        self.tried = True
        try:
            await asyncio.to_thread(refresh_catalog, self.catalog, self.lake)
        except (duckdb.Error, OSError) as exc:
            # batches are in flight: the refresh at the end of the run tries again, and reports
            get_run_logger().warning("the catalog's views were not bound yet: %s", exc)


class BatchRetryError(TransientError):
    """Some postings of a batch failed for a passing reason; the task tries them again."""


async def _retry_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    # a bug or bad configuration fails fast; only what can succeed later is retried
    return isinstance(await state.aresult(raise_on_failure=False), TransientError)


def _batch_run_name() -> str:
    batch = task_run.parameters.get("batch")
    return f"analyse {len(batch.messages) if isinstance(batch, Batch) else '?'} messages"


@task(
    name="analyse-batch",
    task_run_name=_batch_run_name,
    retries=BATCH_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=BATCH_BACKOFF_SECONDS),
    retry_jitter_factor=BATCH_JITTER_FACTOR,
    retry_condition_fn=_retry_transient,
    cache_policy=NO_CACHE,
)
async def analyse_batch(
    batch: Batch,
    *,
    sqs: SQSClient,
    targets: BatchTargets,
    analyser: Analyser,
    stored: StoredIndex,
    budget: CostBudget,
    claims: Claims,
    answers: AnswerLog,
) -> BatchOutcome:
    """One attempt: analyse what is left of the batch, store it, delete it; retry what may pass."""
    logger = get_run_logger()
    if task_run.run_count <= 1:
        batch.triage(analyser.prompt_version, stored)
    results = await batch.analyse(analyser, budget, claims, answers)
    await asyncio.to_thread(batch.settle, results, sqs, targets)
    if batch.unfinished and batch.fatal is None and task_run.run_count <= BATCH_RETRIES:
        reasons = sorted({reason for _, reason in batch.transient})
        raise BatchRetryError(f"{len(batch.transient)} postings to try again: {'; '.join(reasons)[:300]}")
    for message, reason in batch.transient:
        logger.warning("message %s left on the queue for a later run: %s", message.message_id, reason)
    await asyncio.to_thread(batch.give_up, sqs, targets)
    stored.add_all(batch.outcome.new_versions)
    for reason in batch.outcome.dlq_reasons:
        logger.warning("sent to the DLQ: %s", reason)
    if batch.fatal is not None:
        raise batch.fatal
    return batch.outcome


async def _record(report: AnalyseReport) -> None:
    rows = [
        {"what": "received", "count": report.received},
        {"what": "stored", "count": report.stored},
        {"what": "skipped as already stored", "count": report.skipped},
        {"what": "sent to the DLQ", "count": report.dead_lettered},
        {"what": "left for retry", "count": report.left_for_retry},
        {"what": "queue visible after the run", "count": report.queue_visible},
        {"what": "queue in flight after the run", "count": report.queue_in_flight},
        {"what": "DLQ depth after the run", "count": report.dlq_visible},
        {"what": "prompt tokens", "count": report.prompt_tokens},
        {"what": "completion tokens", "count": report.completion_tokens},
        {"what": "estimated cost (USD)", "count": round(report.cost_usd, 6)},
    ]
    analyser = "the OFFLINE analyser (no LLM configured)" if report.offline else f"the LLM {report.model}"
    description = (
        f"analysed with {analyser}, prompt {report.prompt_version}; {report.batches} batches in "
        f"{report.seconds:.1f} s, stopped by {report.stopped_by}; counts add up: {report.balanced}"
    )
    await acreate_table_artifact(key="analyse-summary", table=rows, description=description)
    if report.top:
        lines = ["| fit | verdict | title | company | link |", "|---|---|---|---|---|"]
        for row in report.top:
            title, company = markdown_text(str(row["title"])), markdown_text(str(row["company"]))
            url = str(row["job_url"])
            # job_url is http(s) by the contract; escaping keeps a crafted one inside its link
            link = f"[open](<{url.replace('>', '%3E').replace(' ', '%20')}>)"
            lines.append(f"| {row['fit_score']} | {row['verdict']} | {title} | {company} | {link} |")
        await acreate_markdown_artifact(
            key="top-matches", markdown="\n".join(lines), description="Best fits of this run"
        )


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def markdown_text(text: str) -> str:
    """Posting text as literal markdown: no image, link, html or table cell of its own; one line."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def _first_wait(queue: QueueDepth, wait_seconds: int) -> int:
    # nothing queued or in flight: one short poll to be sure, not a 20 s long poll for nothing
    idle = queue.visible + queue.in_flight + queue.delayed == 0
    return min(wait_seconds, IDLE_PROBE_WAIT_SECONDS) if idle else wait_seconds


def _analyse_run_name() -> str:
    from prefect.runtime import flow_run

    limits = [f"{k} {v:g}" for k, v in flow_run.parameters.items() if isinstance(v, int | float)]
    return f"analyse {Settings().queue_name}" + (f" ({', '.join(limits)})" if limits else "")


@flow(name="analyse", flow_run_name=_analyse_run_name, log_prints=True)
async def analyse(
    max_jobs: Annotated[
        int | None, Field(ge=1, le=MAX_JOBS_LIMIT, description="Stop after this many messages.")
    ] = None,
    max_seconds: Annotated[
        float | None,
        Field(gt=0, le=MAX_SECONDS_LIMIT, description="Stop receiving new batches after this many seconds."),
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        Field(gt=0, le=MAX_COST_LIMIT_USD, description="Stop sending postings to the LLM after this spend."),
    ] = None,
) -> AnalyseReport:
    """Drain the queue: receive up to ten at a time, analyse, write Parquet, then delete."""
    settings = Settings()
    logger = get_run_logger()
    analyser = make_analyser(settings)
    sqs = make_sqs_client(settings)
    queues = locate_queues(sqs, settings)
    targets = BatchTargets(
        queue_url=queues.url,
        dlq_url=queues.dlq_url,
        lake=Lake.from_settings(settings),
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
    )
    stored = stored_versions(targets.lake)
    budget = CostBudget(max_cost_usd, settings.llm_concurrency)
    claims = Claims()
    answers = AnswerLog(settings.data_dir)
    offline = analyser.model == OFFLINE_MODEL
    report = AnalyseReport(model=analyser.model, prompt_version=analyser.prompt_version, offline=offline)
    if offline:
        logger.warning("no LLM configured (OPENAI_API_KEY or OPENAI_BASE_URL): using the offline analyser")
    logger.info(
        "analysing with %s (%s); %d analyses already stored", analyser.model, analyser.prompt_version, len(stored)
    )

    limits = Limits(max_jobs=max_jobs, max_seconds=max_seconds, max_cost_usd=max_cost_usd)
    prefetch = max(MAX_BATCH_ENTRIES, settings.llm_concurrency * PREFETCH_FACTOR)
    drain = Drain(report, prefetch)
    started = time.monotonic()
    catalog = EarlyCatalog(settings.catalog_path, targets.lake)
    first_wait = _first_wait(depth(sqs, queues.url), settings.receive_wait_seconds)
    # the heartbeat covers a message from its receive on, waiting batches included
    async with VisibilityHeartbeat(sqs, queues.url, settings.visibility_timeout_seconds, drain.held):
        while drain.failure is None:
            stop = drain.stop_reason(limits, time.monotonic() - started, budget)
            if stop:
                report.stopped_by = stop
                break
            await drain.make_room()
            if drain.failure is not None:
                break
            await catalog.bind_once_stored(report.stored)
            messages = await asyncio.to_thread(
                receive,
                sqs,
                queues.url,
                max_messages=limits.wanted(drain.received),
                wait_seconds=first_wait if drain.received == 0 else settings.receive_wait_seconds,
                # the setting applies even to a queue created with another default
                visibility_seconds=settings.visibility_timeout_seconds,
            )
            if not messages:
                break
            batch = Batch(messages)
            work = analyse_batch(
                batch,
                sqs=sqs,
                targets=targets,
                analyser=analyser,
                stored=stored,
                budget=budget,
                claims=claims,
                answers=answers,
            )
            drain.start(batch, work)
        await drain.finish()
    answers.close()
    if budget.exhausted and report.stopped_by == "empty queue":
        report.stopped_by = limits.reached(0, 0, budget) or report.stopped_by
    report.seconds = time.monotonic() - started

    refresh_catalog(settings.catalog_path, targets.lake)
    main, dlq = depth(sqs, queues.url), depth(sqs, queues.dlq_url)
    report.queue_visible, report.queue_in_flight, report.dlq_visible = main.visible, main.in_flight, dlq.visible
    await _record(report)
    logger.info(
        "received %d: stored %d, skipped %d, DLQ %d, left for retry %d (stopped by %s); %d+%d tokens, $%.4f",
        report.received, report.stored, report.skipped, report.dead_lettered, report.left_for_retry,
        report.stopped_by, report.prompt_tokens, report.completion_tokens, report.cost_usd,
    )  # fmt: skip
    drain.raise_failure()
    return report
