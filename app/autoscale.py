"""The autoscaler: analyse runs in proportion to the queue's depth, created through Prefect.

Every ``JOBPING_SCALE_POLL_SECONDS`` it reads the queue's depth (visible and in flight), asks
:class:`jobping.scaling.ScalePolicy` how many analyse runs that calls for, counts the analyse
deployment's runs that are scheduled, waiting for a slot or running, and creates the missing
ones as flow runs of that deployment. Prefect does the rest: the worker starts them, the
deployment's concurrency limit (``JOBPING_MAX_CONSUMERS``) holds any extra in
AwaitingConcurrencySlot, and each run drains until the queue is empty and ends. While the queue
is empty nothing is created, so the UI shows runs only when there was work.

A burst (the queue's work from when it was first seen until the queue is empty and no analyse
run is left) ends with one run of the notify deployment: one digest and one top-matches
artifact, however many runs drained it. Its analyse runs are created with ``report_matches``
off, so none of them pings on its own.

Prefect has no trigger on an SQS queue's depth (its automations react to Prefect events), so
this loop is the one piece of scheduling jobping does itself; it decides only how many runs to
ask Prefect for. A queue or an API that is away never stops it: see :mod:`app.health`.
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
from app.health import Health
from jobping.engine.ports import QueueDepth
from jobping.errors import ConfigurationError
from jobping.scaling import ScalePolicy
from jobping.settings import Settings
from tasks.llm.limit import ensure_global_limit
from tasks.notify.alerts import emit_alert
from tasks.sqs.client import ensure_reachable, make_sqs_client
from tasks.sqs.queues import depth, locate_queues

if TYPE_CHECKING:
    from uuid import UUID

    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

ANALYSE_DEPLOYMENT = "analyse/analyse"
NOTIFY_DEPLOYMENT = "notify/notify"
STATUS_FILE = "autoscaler.json"
AUTOSCALED_TAG = "autoscaled"
# runs that still hold or will take a consumer's place
ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


class DeploymentMissingError(ConfigurationError):
    """The analyse deployment is not on the Prefect API (yet)."""


@dataclass(frozen=True)
class Decision:
    """One look at the queue: its depth, the runs wanted and active, how many were created, a burst's end."""

    depth: QueueDepth
    desired: int
    # None: not counted (nothing was wanted)
    active: int | None
    started: int
    notified: bool = False

    def line(self) -> str:
        counted = "not counted" if self.active is None else str(self.active)
        line = (
            f"queue {self.depth.name}: {self.depth.visible} visible, {self.depth.in_flight} in flight; "
            f"{self.desired} analyse runs wanted, {counted} active, {self.started} started"
        )
        return line + ("; the burst is over: started its notify run" if self.notified else "")


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
    """Looks at the queue and creates the analyse runs its depth calls for; one look per ``step``.

    The queue's URL and the SQS client are found on the first look, and again after a failed
    one: an emulator started afresh has lost its queues, which finding them creates again.
    """

    def __init__(self, settings: Settings, sqs: SQSClient | None, client: SyncPrefectClient) -> None:
        self.settings = settings
        self.policy = policy_of(settings)
        self.sqs = sqs
        self.client = client
        self.queue_url: str | None = None
        self.poll = timedelta(seconds=settings.scale.scale_poll_seconds)
        # when the work of the burst now being drained was first seen; None between bursts
        self.burst_since: datetime | None = None
        # runs left over from before a restart are counted once, so their burst gets its digest
        self.counted_once = False
        self.prepared = False
        # messages that reached the dlq since the last report become an alert (app/alerts.py)
        self.dlq = DlqWatch(settings.sqs)

    def deployment_id(self, name: str = ANALYSE_DEPLOYMENT) -> UUID:
        return self.client.read_deployment_by_name(name).id

    def analyse_deployment(self) -> UUID:
        """The analyse deployment, its limit of runs set once (``prepare``); a clear error while it is missing."""
        try:
            deployment = self.deployment_id()
        except ObjectNotFound as exc:
            # docker-compose starts the autoscaler beside the one-shot deploy
            raise DeploymentMissingError(f"no deployment {ANALYSE_DEPLOYMENT} yet: `make up` deploys it") from exc
        if not self.prepared:
            prepare(self.settings)
            self.prepared = True
        return deployment

    def notify_deployment(self) -> UUID | None:
        try:
            return self.deployment_id(NOTIFY_DEPLOYMENT)
        except ObjectNotFound:
            # deployed from an older prefect.yaml: each analyse run pings on its own, as before
            return None

    def step(self) -> Decision:
        if self.sqs is None:
            self.sqs = make_sqs_client(self.settings)
        if self.queue_url is None:
            self.queue_url = locate_queues(self.sqs, self.settings.sqs).url
        self.dlq.check(self.sqs)
        now = depth(self.sqs, self.queue_url)
        desired = self.policy.desired(now)
        if desired == 0 and self.burst_since is None and self.counted_once:
            # an idle queue costs one SQS call per poll and nothing in Prefect
            return Decision(now, desired, None, 0)
        deployment = self.analyse_deployment()
        active = active_runs(self.client, deployment, self.poll)
        self.counted_once = True
        if desired == 0 and active == 0:
            return Decision(now, desired, active, 0, notified=self.end_burst())
        if self.burst_since is None:
            self.burst_since = datetime.now(UTC)
        wanted = self.policy.to_start(now, active)
        # with a notify deployment, the burst's runs leave the digest to it
        parameters = {"report_matches": False} if wanted and self.notify_deployment() else {}
        for _ in range(wanted):
            self.client.create_flow_run_from_deployment(deployment, parameters=parameters, tags=[AUTOSCALED_TAG])
        return Decision(now, desired, active, wanted)

    def end_burst(self) -> bool:
        """Start the notify run of the burst that just ended (if one did); True when started."""
        since, self.burst_since = self.burst_since, None
        notify = self.notify_deployment() if since is not None else None
        if notify is None:
            return False
        self.client.create_flow_run_from_deployment(notify, parameters={"since": since}, tags=[AUTOSCALED_TAG])
        return True

    def forget_queue(self) -> None:
        self.queue_url = None

    def run(self, stop: threading.Event) -> None:
        """Look every poll period until ``stop`` is set; a failed look is reported once and tried again."""
        logger.info(
            "autoscaling %s for queue %s: at most %d runs, one per %d messages, from %d messages, every %g s",
            ANALYSE_DEPLOYMENT, self.settings.sqs.queue_name, self.policy.max_consumers,
            self.policy.messages_per_consumer, self.policy.activation_messages, self.poll.total_seconds(),
        )  # fmt: skip
        health = health_of(self.settings)
        last = ""
        while not stop.is_set():
            try:
                decision = self.step()
            # the queue or the server may be away for a while (a restart, a reboot): look again later
            except Exception as exc:
                wait = health.failed(exc)
                self.forget_queue()
                heal(self.settings)
            else:
                wait = health.ok()
                line = decision.line()
                # a log line when something changes, not one per poll of an idle queue
                if decision.started or decision.notified or line != last:
                    logger.info("%s", line)
                last = line
            stop.wait(wait)


def health_of(settings: Settings) -> Health:
    log = settings.run_dir / "autoscaler.log"

    def alert(title: str, reason: str) -> None:
        # a jobping.alert.autoscaler event, which the alert automation sends through the user's channel
        emit_alert("autoscaler", f"jobping: {title}", reason, hint=f"`jobping stack status`; its log is {log}")

    return Health("autoscaler", settings.run_dir / STATUS_FILE, settings.scale.scale_poll_seconds, alert=alert)


def heal(settings: Settings) -> None:
    """Start the embedded emulator again if it is what stopped answering; any other problem waits."""
    try:
        ensure_reachable(settings)
    # whatever healing meets is the next look's problem, reported there
    except Exception as exc:
        logger.debug("healing did not help: %s", exc)


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
    """Run the autoscaler against the configured queue and Prefect API until ``stop`` is set.

    Nothing that is away at its start stops it: the queue, the API and the deployment are
    looked for at every look until they are there.
    """
    with get_client(sync_client=True) as client:
        Autoscaler(settings, None, client).run(stop)
