"""The autoscaler: analyse runs in proportion to the queue's depth, created through Prefect.

Every ``JOBPING_SCALE_POLL_SECONDS`` it reads the queue's depth (visible and in flight), asks
:class:`jobping.scaling.ScalePolicy` how many analyse runs that calls for, counts the analyse
deployment's runs that are scheduled, waiting for a slot or running, and creates the missing
ones as flow runs of that deployment. Prefect does the rest: the worker starts them, the
deployment's concurrency limit (``JOBPING_MAX_CONSUMERS``) holds any extra in
AwaitingConcurrencySlot, and each run drains until the queue is empty and ends. While the queue
is empty nothing is created, so the UI shows runs only when there was work.

Prefect has no trigger on an SQS queue's depth (its automations react to Prefect events), so
this loop is the one piece of scheduling jobping does itself; it decides only how many runs to
ask Prefect for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from app.alerts import DlqWatch
from jobping.engine.ports import QueueDepth
from jobping.scaling import ScalePolicy
from jobping.settings import Settings
from tasks.llm.limit import ensure_global_limit
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queues import depth, locate_queues

if TYPE_CHECKING:
    from uuid import UUID

    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

ANALYSE_DEPLOYMENT = "analyse/analyse"
AUTOSCALED_TAG = "autoscaled"
# runs that still hold or will take a consumer's place
ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


@dataclass(frozen=True)
class Decision:
    """One look at the queue: its depth, the runs wanted and active, and how many were created."""

    depth: QueueDepth
    desired: int
    # None: not counted (nothing was wanted)
    active: int | None
    started: int

    def line(self) -> str:
        counted = "not counted" if self.active is None else str(self.active)
        return (
            f"queue {self.depth.name}: {self.depth.visible} visible, {self.depth.in_flight} in flight; "
            f"{self.desired} analyse runs wanted, {counted} active, {self.started} started"
        )


def policy_of(settings: Settings) -> ScalePolicy:
    scale = settings.scale
    return ScalePolicy(scale.max_consumers, scale.messages_per_consumer, scale.scale_activation_messages)


def active_runs(client: SyncPrefectClient, deployment_id: UUID, horizon: timedelta) -> int:
    """The deployment's runs that are scheduled to start within ``horizon``, pending, running or cancelling.

    A run scheduled further ahead (a schedule someone added) is not a consumer yet.
    """
    return client.count_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATES)),
            expected_start_time=FlowRunFilterExpectedStartTime(before_=datetime.now(UTC) + horizon),
        ),
    )


class Autoscaler:
    """Looks at the queue and creates the analyse runs its depth calls for; one look per ``step``."""

    def __init__(self, settings: Settings, sqs: SQSClient, client: SyncPrefectClient) -> None:
        self.settings = settings
        self.policy = policy_of(settings)
        self.sqs = sqs
        self.client = client
        self.queue_url = locate_queues(sqs, settings.sqs).url
        self.poll = timedelta(seconds=settings.scale.scale_poll_seconds)
        # messages that reached the dlq since the last report become an alert (app/alerts.py)
        self.dlq = DlqWatch.of(settings, sqs)

    def deployment_id(self) -> UUID:
        return self.client.read_deployment_by_name(ANALYSE_DEPLOYMENT).id

    def step(self) -> Decision:
        self.dlq.check()
        now = depth(self.sqs, self.queue_url)
        desired = self.policy.desired(now)
        if desired == 0:
            # an idle queue costs one SQS call per poll and nothing in Prefect
            return Decision(now, desired, None, 0)
        deployment = self.deployment_id()
        active = active_runs(self.client, deployment, self.poll)
        wanted = self.policy.to_start(now, active)
        for _ in range(wanted):
            self.client.create_flow_run_from_deployment(deployment, tags=[AUTOSCALED_TAG])
        return Decision(now, desired, active, wanted)

    def run(self, stop: threading.Event) -> None:
        """Look every poll period until ``stop`` is set; a failed look is logged and tried again."""
        logger.info(
            "autoscaling %s for queue %s: at most %d runs, one per %d messages, from %d messages, every %g s",
            ANALYSE_DEPLOYMENT, self.settings.sqs.queue_name, self.policy.max_consumers,
            self.policy.messages_per_consumer, self.policy.activation_messages, self.poll.total_seconds(),
        )  # fmt: skip
        last = ""
        while not stop.is_set():
            try:
                decision = self.step()
            except ObjectNotFound:
                logger.warning("no deployment %s yet: `make up` deploys it", ANALYSE_DEPLOYMENT)
            # the queue or the server may be away for a while (a restart): the next look tries again
            except Exception:
                logger.exception("looking at the queue failed; trying again in %g s", self.poll.total_seconds())
            else:
                line = decision.line()
                # a log line when something changes, not one per poll of an idle queue
                if decision.started or line != last:
                    logger.info("%s", line)
                last = line
            stop.wait(self.poll.total_seconds())


def prepare(settings: Settings) -> None:
    """What the runs need in Prefect: the analyse deployment's limit of runs, the LLM's global limit.

    The deployment runs at most JOBPING_MAX_CONSUMERS at once; JOBPING_LLM_GLOBAL_LIMIT, when set,
    is created (or updated) with JOBPING_LLM_CONCURRENCY slots.
    """
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(ANALYSE_DEPLOYMENT)
        client.update_deployment(deployment.id, DeploymentUpdate(concurrency_limit=settings.scale.max_consumers))
    if settings.llm.global_limit:
        asyncio.run(ensure_global_limit(settings.llm.global_limit, settings.llm.concurrency))


def serve(settings: Settings, stop: threading.Event) -> None:
    """Run the autoscaler against the configured queue and Prefect API until ``stop`` is set."""
    sqs = make_sqs_client(settings)
    while not stop.is_set():
        try:
            prepare(settings)
            break
        except ObjectNotFound:
            # docker-compose starts it beside the one-shot deploy
            logger.warning("no deployment %s yet: waiting for it to be deployed", ANALYSE_DEPLOYMENT)
            stop.wait(settings.scale.scale_poll_seconds)
    with get_client(sync_client=True) as client:
        Autoscaler(settings, sqs, client).run(stop)
