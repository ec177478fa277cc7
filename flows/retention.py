"""Prefect's memory of jobping's runs, kept bounded: runs that ended long ago are deleted.

Prefect's server keeps every flow run, task run, log and artifact forever by default. The
hourly maintenance deletes jobping's own runs that ended longer ago than
``JOBPING_RETENTION_DAYS``, their artifacts first (Prefect's delete of a run takes its task
runs and logs, not its artifacts). Only runs of jobping's flows are touched: a Prefect server
of the user's own may hold other people's runs. (Prefect's own database vacuum does the same
for a whole server, but it cannot be set below an hour, which a time-compressed soak needs.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

# the flows of prefect.yaml (tests/test_retention.py keeps the two lists equal)
JOBPING_FLOWS = ("scrape", "analyse", "notify", "dlq-redrive", "compact")
FINAL_STATES = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
RUNS_PER_PAGE = 200
# at most this many runs a maintenance: a first run over a large backlog ends, the next goes on
MAX_RUNS_PER_MAINTENANCE = 5_000


@task(name="forget old runs", cache_policy=NO_CACHE)
def forget_old_runs(retention: timedelta) -> int:
    """Delete jobping's runs (with their artifacts, task runs and logs) that ended before ``retention`` ago."""
    cutoff = datetime.now(UTC) - retention
    flows = FlowFilter(name=FlowFilterName(any_=list(JOBPING_FLOWS)))
    ended = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=FINAL_STATES)),
        end_time=FlowRunFilterEndTime(before_=cutoff),
    )
    deleted = 0
    with get_client(sync_client=True) as client:
        while deleted < MAX_RUNS_PER_MAINTENANCE:
            runs = client.read_flow_runs(
                flow_filter=flows, flow_run_filter=ended, sort=FlowRunSort.END_TIME_DESC, limit=RUNS_PER_PAGE
            )
            if not runs:
                break
            ids = [run.id for run in runs]
            for artifact in client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
            ):
                client.delete_artifact(artifact.id)
            for run_id in ids:
                try:
                    client.delete_flow_run(run_id)
                except ObjectNotFound:
                    # deleted meanwhile by another maintenance
                    continue
            deleted += len(ids)
    if deleted:
        get_run_logger().info("deleted %d runs of jobping that ended before %s", deleted, f"{cutoff:%Y-%m-%d %H:%M}")
    return deleted
