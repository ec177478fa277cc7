"""The analyse flow: the engine's drain, wired to SQS, the Delta lake and the analyser.

The rules (delete only after a durable write, each message's outcome its own, budgets, the
heartbeat, the outage rule) live in :mod:`jobping.engine`. This flow builds the real queue,
lake and analyser from the settings, runs each batch as a task of its own, and turns the
report into logs and artifacts. Prefect retries a batch whose task raised a TransientError:
its lake write failed for a passing reason (storage/failures.py: S3 5xx or throttling, a
timeout, a connection reset or refused, a lost commit race). Any other error fails the run
at once, the batch's messages left on the queue.
"""

from __future__ import annotations

from contextlib import closing
from typing import Annotated, Any

from prefect import State, Task, flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import flow_run, task_run
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote
from pydantic import Field

from flows.artifacts import top_matches_markdown
from flows.notify import ping_new_matches
from flows.preflight import preflight_failure
from flows.run_settings import run_settings
from jobping.engine.batch import BatchHandler
from jobping.engine.drain import AnalyseReport, DrainOptions, Limits, drain
from jobping.engine.outcomes import BatchResult
from jobping.engine.ports import ReceivedMessage
from jobping.errors import TransientError
from jobping.profile import load_profile
from jobping.settings import Settings
from storage.answers import AnswerLog
from storage.catalog import refresh_catalog
from storage.claims import lake_claims
from storage.lake import Lake
from storage.store import LakeStore, open_lake
from tasks.llm.factory import analyser_in_use, make_analyser
from tasks.llm.offline import OFFLINE_MODEL
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queue import SqsQueue
from tasks.sqs.queues import depth, locate_queues

MAX_JOBS_LIMIT = 1_000_000
MAX_SECONDS_LIMIT = 86_400.0
MAX_COST_LIMIT_USD = 10_000.0
# a batch whose write failed for a passing reason is handled again from the start: nothing of it was
# deleted, and what it stored is skipped
BATCH_RETRIES = 2
BATCH_BACKOFF_SECONDS = 2.0
BATCH_JITTER_FACTOR = 0.5
MAX_LOGGED_REASONS = 20


async def _retry_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    # a bug or bad configuration fails fast; only what can succeed later is retried
    return isinstance(await state.aresult(raise_on_failure=False), TransientError)


def _batch_run_name() -> str:
    messages = task_run.parameters.get("messages")
    return f"analyse {len(messages) if isinstance(messages, list) else '?'} messages"


@task(
    name="analyse-batch",
    task_run_name=_batch_run_name,
    retries=BATCH_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=BATCH_BACKOFF_SECONDS),
    retry_jitter_factor=BATCH_JITTER_FACTOR,
    retry_condition_fn=_retry_transient,
    cache_policy=NO_CACHE,
)
async def analyse_batch(messages: list[ReceivedMessage], handle: BatchHandler) -> BatchResult:
    """Analyse, store and delete one received batch; say what became of each message."""
    result = await handle(messages)
    logger = get_run_logger()
    for reason in result.retry_reasons[:MAX_LOGGED_REASONS]:
        logger.warning("left on the queue for a later run: %s", reason)
    for reason in result.dlq_reasons[:MAX_LOGGED_REASONS]:
        logger.warning("sent to the DLQ: %s", reason)
    return result


async def _as_task(handle: BatchHandler, messages: list[ReceivedMessage]) -> BatchResult:
    # quoted: Prefect would otherwise walk the handler's clients looking for futures
    quoted: Any = quote(handle)
    result: BatchResult = await analyse_batch(messages, quoted)
    return result


def _analyse_run_name() -> str:
    limits = [f"{k} {v:g}" for k, v in flow_run.parameters.items() if isinstance(v, int | float)]
    return f"analyse {Settings().sqs.queue_name}" + (f" ({', '.join(limits)})" if limits else "")


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
    report_matches: Annotated[
        bool,
        Field(
            description="Ping the new matches and show this run's top matches when it ends. The autoscaler turns "
            "it off: after the last of a burst's runs it starts one notify run, so a night sends one digest."
        ),
    ] = True,
) -> AnalyseReport:
    """Drain the queue: receive up to ten at a time, analyse, append to the lake, then delete."""
    settings = run_settings()
    failure = preflight_failure(settings)
    if failure is not None:
        # prefect takes a returned state as the run's end: one line, no traceback
        return failure  # type: ignore[return-value]
    logger = get_run_logger()
    analyser = make_analyser(settings.llm, load_profile(settings.profile_path))
    sqs = make_sqs_client(settings)
    queues = locate_queues(sqs, settings.sqs)
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, settings.sqs.visibility_timeout_seconds)
    lake = open_lake(Lake.from_settings(settings))
    offline = analyser.model == OFFLINE_MODEL
    if offline:
        logger.warning("no LLM configured (OPENAI_API_KEY or OPENAI_BASE_URL): using the offline analyser")
    options = DrainOptions(
        receive_wait_seconds=settings.sqs.receive_wait_seconds,
        visibility_timeout_seconds=settings.sqs.visibility_timeout_seconds,
        concurrency=settings.llm.concurrency,
    )
    async with analyser_in_use(analyser):
        with closing(AnswerLog(settings.data_dir)) as answers:
            report = await drain(
                queue, LakeStore(lake, settings.catalog_path), analyser,
                limits=Limits(max_jobs=max_jobs, max_seconds=max_seconds, max_cost_usd=max_cost_usd),
                options=options, answers=answers, claims=lake_claims(lake), run_batch=_as_task,
            )  # fmt: skip
    report.offline = offline
    refresh_catalog(settings.catalog_path, lake, in_child=True)
    main, dlq = depth(sqs, queues.url), depth(sqs, queues.dlq_url)
    report.queue_visible, report.queue_in_flight, report.dlq_visible = main.visible, main.in_flight, dlq.visible
    await _record(report, top_matches=report_matches)
    if report_matches and settings.notify.configured:
        # no task run for a ping with nowhere to go: it would only cost every run's start-up
        report.ping = await ping_matches(settings)
    logger.info(
        "analysed with %s (%s), %d analyses stored before; received %d: stored %d, skipped %d, "
        "seen %d (%d postings seen again unchanged), DLQ %d, left for retry %d (stopped by %s); %d+%d tokens, $%.4f",
        report.model, report.prompt_version, report.already_stored, report.received, report.stored,
        report.skipped, report.seen, report.seen_postings, report.dead_lettered, report.left_for_retry,
        report.stopped_by,
        report.prompt_tokens, report.completion_tokens, report.cost_usd,
    )  # fmt: skip
    if report.failure is not None:
        # what the run did with what it received, on the error the CLI shows
        report.failure.add_note(report.line())
        raise report.failure
    return report


@task(name="ping new matches", cache_policy=NO_CACHE)
async def ping_matches(settings: Settings) -> str:
    """Send the job groups that fit and were never sent; whatever happens, the run goes on.

    They are this run's fitting analyses and those stored since the last digest by runs that ended before
    their ping (storage/pings.py), read with delta-rs and polars: the run never loads DuckDB.
    """
    logger = get_run_logger()
    try:
        ping = await ping_new_matches(settings)
    except Exception as exc:
        # a notifier, or the lake read behind it, never fails the analyse run: the next run sends
        logger.exception("the ping of new matches failed; the next run sends them")
        return f"ping failed: {type(exc).__name__}"
    (logger.warning if ping.error else logger.info)("%s", ping.line())
    return ping.line()


def _saving(report: AnalyseReport) -> float:
    # a reused analysis would have cost what this run's own analyses cost on average
    paid = report.stored - report.reused
    return report.reused * report.cost_usd / paid if paid else 0.0


async def _record(report: AnalyseReport, *, top_matches: bool) -> None:
    counts = {
        "received": report.received,
        "stored": report.stored,
        "of those, given the analysis of the same job's posting (no LLM request)": report.reused,
        "skipped as already stored": report.skipped,
        "sightings messages recorded (no analysis)": report.seen,
        "of those, postings seen again unchanged": report.seen_postings,
        "sent to the DLQ": report.dead_lettered,
        "left for retry": report.left_for_retry,
        "queue visible after the run": report.queue_visible,
        "queue in flight after the run": report.queue_in_flight,
        "DLQ depth after the run": report.dlq_visible,
        "prompt tokens": report.prompt_tokens,
        "completion tokens": report.completion_tokens,
        "estimated cost (USD)": round(report.cost_usd, 6),
        "estimated saving by reused analyses (USD)": round(_saving(report), 6),
    }
    rows = [{"what": what, "count": count} for what, count in counts.items()]
    analyser = "the OFFLINE analyser (no LLM configured)" if report.offline else f"the LLM {report.model}"
    description = (
        f"analysed with {analyser}, prompt {report.prompt_version}; {report.batches} batches in "
        f"{report.seconds:.1f} s, stopped by {report.stopped_by}; counts add up: {report.balanced}; "
        f"{report.reused} analyses reused from the same job on another board (no LLM request)"
    )
    await acreate_table_artifact(key="analyse-summary", table=rows, description=description)
    if top_matches and report.top:
        await acreate_markdown_artifact(
            key="top-matches", markdown=top_matches_markdown(report.top), description="Best fits of this run"
        )
