"""The analyse flow: drain the queue in batches into the Parquet lake, until empty or a budget."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from jobping.analysis import Analyser
from jobping.settings import Settings
from storage.catalog import refresh_catalog
from storage.lake import StoredVersion, stored_versions
from tasks.batch import BatchOutcome, BatchTargets, process_batch
from tasks.llm.factory import make_analyser
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import MAX_BATCH_ENTRIES, ReceivedMessage, receive
from tasks.sqs.queues import depth, ensure_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_JOBS_LIMIT = 1_000_000
MAX_SECONDS_LIMIT = 86_400.0


class AnalyseReport(BaseModel):
    """What an analyse run did with every message it received."""

    model: str
    prompt_version: str
    batches: int = 0
    received: int = 0
    stored: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    left_for_retry: int = 0
    not_deleted: int = 0
    stopped_by: str = "empty queue"
    queue_visible: int = 0
    queue_in_flight: int = 0
    dlq_visible: int = 0
    dlq_reasons: list[str] = Field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.skipped + self.dead_lettered + self.left_for_retry


def _batch_run_name() -> str:
    from prefect.runtime import task_run

    return f"analyse {len(task_run.parameters.get('messages') or [])} messages"


@task(name="analyse-batch", task_run_name=_batch_run_name, cache_policy=NO_CACHE)
def analyse_batch(
    messages: list[ReceivedMessage],
    *,
    sqs: SQSClient,
    targets: BatchTargets,
    analyser: Analyser,
    stored: set[StoredVersion],
) -> BatchOutcome:
    outcome = process_batch(messages, sqs=sqs, targets=targets, analyser=analyser, stored=stored)
    logger = get_run_logger()
    logger.info(
        "batch: %d received, %d stored, %d skipped, %d to the DLQ, %d left for retry",
        outcome.received, outcome.stored, outcome.skipped, outcome.dead_lettered, outcome.left_for_retry,
    )  # fmt: skip
    for reason in outcome.dlq_reasons:
        logger.warning("sent to the DLQ: %s", reason)
    return outcome


def _record(report: AnalyseReport) -> None:
    rows = [
        {"what": "received", "count": report.received},
        {"what": "stored", "count": report.stored},
        {"what": "skipped as already stored", "count": report.skipped},
        {"what": "sent to the DLQ", "count": report.dead_lettered},
        {"what": "left for retry", "count": report.left_for_retry},
        {"what": "queue visible after the run", "count": report.queue_visible},
        {"what": "queue in flight after the run", "count": report.queue_in_flight},
        {"what": "DLQ depth after the run", "count": report.dlq_visible},
    ]
    description = (
        f"analyser {report.model} ({report.prompt_version}), {report.batches} batches, "
        f"stopped by {report.stopped_by}; counts add up: {report.balanced}"
    )
    create_table_artifact(key="analyse-summary", table=rows, description=description)


@flow(name="analyse", flow_run_name="analyse queue", log_prints=True)
def analyse(
    max_jobs: Annotated[
        int | None, Field(ge=1, le=MAX_JOBS_LIMIT, description="Stop after this many messages.")
    ] = None,
    max_seconds: Annotated[
        float | None,
        Field(gt=0, le=MAX_SECONDS_LIMIT, description="Stop receiving new batches after this many seconds."),
    ] = None,
) -> AnalyseReport:
    """Drain the queue: receive up to ten at a time, analyse, write Parquet, then delete."""
    settings = Settings()
    logger = get_run_logger()
    analyser = make_analyser(settings)
    sqs = make_sqs_client(settings)
    queues = ensure_queues(sqs, settings)
    targets = BatchTargets(queue_url=queues.url, dlq_url=queues.dlq_url, lake=settings.lake_dir)
    stored = stored_versions(settings.lake_dir)
    report = AnalyseReport(model=analyser.model, prompt_version=analyser.prompt_version)
    logger.info(
        "analysing with %s (%s); %d analyses already stored", analyser.model, analyser.prompt_version, len(stored)
    )

    started = time.monotonic()
    while True:
        if max_jobs is not None and report.received >= max_jobs:
            report.stopped_by = f"max_jobs {max_jobs}"
            break
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            report.stopped_by = f"max_seconds {max_seconds:g}"
            break
        wanted = MAX_BATCH_ENTRIES if max_jobs is None else min(MAX_BATCH_ENTRIES, max_jobs - report.received)
        messages = receive(sqs, queues.url, max_messages=wanted, wait_seconds=settings.receive_wait_seconds)
        if not messages:
            break
        outcome = analyse_batch(messages, sqs=sqs, targets=targets, analyser=analyser, stored=stored)
        stored |= outcome.new_versions
        report.batches += 1
        for name in ("received", "stored", "skipped", "dead_lettered", "left_for_retry", "not_deleted"):
            setattr(report, name, getattr(report, name) + getattr(outcome, name))
        report.dlq_reasons.extend(outcome.dlq_reasons)

    refresh_catalog(settings.catalog_path, settings.lake_dir)
    main, dlq = depth(sqs, queues.url), depth(sqs, queues.dlq_url)
    report.queue_visible, report.queue_in_flight, report.dlq_visible = main.visible, main.in_flight, dlq.visible
    _record(report)
    logger.info(
        "received %d: stored %d, skipped %d, DLQ %d, left for retry %d (stopped by %s)",
        report.received, report.stored, report.skipped, report.dead_lettered, report.left_for_retry, report.stopped_by,
    )  # fmt: skip
    return report
