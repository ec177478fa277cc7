"""The DLQ redrive flow: move dead-lettered postings back to the queue, from the UI or the CLI."""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from flows.preflight import preflight_failure
from flows.run_settings import run_settings
from tasks.sqs.client import make_sqs_client
from tasks.sqs.dlq import RedriveReport, redrive
from tasks.sqs.queues import depth, locate_queues

MAX_REDRIVE = 1_000_000


@flow(name="dlq-redrive", flow_run_name="redrive the DLQ", log_prints=True)
def dlq_redrive(
    reason: Annotated[
        str | None, Field(max_length=200, description="Only messages whose DLQ reason contains this text.")
    ] = None,
    max_messages: Annotated[int | None, Field(ge=1, le=MAX_REDRIVE, description="Move at most this many.")] = None,
) -> RedriveReport:
    """Move messages from the dead-letter queue back to the main queue for another try."""
    settings = run_settings()
    failure = preflight_failure(settings, analyses=False)
    if failure is not None:
        # prefect takes a returned state as the run's end: one line, no traceback
        return failure  # type: ignore[return-value]
    sqs = make_sqs_client(settings)
    queues = locate_queues(sqs, settings.sqs)
    report = redrive(sqs, queues.dlq_url, queues.url, reason=reason, limit=max_messages)
    rows = [{"reason": reason_text[:200], "moved": count} for reason_text, count in report.reasons.items()]
    left = depth(sqs, queues.dlq_url)
    create_table_artifact(
        key="dlq-redrive",
        table=rows or [{"reason": "(none matched)", "moved": 0}],
        description=f"moved {report.moved} by {report.method}, kept {report.kept}, failed {report.failed}; "
        f"DLQ now holds {left.visible + left.in_flight}",
    )
    get_run_logger().info("moved %d messages back to the queue (%s)", report.moved, report.method)
    return report
