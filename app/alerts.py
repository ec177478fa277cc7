"""Alerts: a night that went wrong reaches the user through the channel set for matches.

Prefect does the work. `jobping stack up` creates two automations (or updates them, by name):

- ``jobping: a run failed``: a run of any deployment tagged ``jobping`` (scrape, analyse,
  dlq-redrive, compact, and any later one) enters Failed, Crashed or TimedOut;
- ``jobping: alert``: any ``jobping.alert.*`` event, which :func:`tasks.notify.alerts.emit_alert`
  sends (the DLQ watch below, the autoscaler when it keeps failing).

Each has one action for the channel that is set: JOBPING_NOTIFY_WEBHOOK_URL becomes Prefect's
``Webhook`` block ``jobping-alerts`` (its URL a secret in Prefect's block storage, never in
our files) called with the JSON :data:`RUN_ALERT` or :data:`EVENT_ALERT`; JOBPING_NOTIFY_BLOCK
is sent a subject and a plain-text body. With neither set, both automations and the webhook
block are deleted. Their firings show in the UI's Automations and Events pages.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.events.actions import CallWebhook, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from prefect.types import SecretDict
from prefect.variables import Variable

from jobping.errors import ConfigurationError
from jobping.markup import NEUTRAL_TEXT
from jobping.settings import NotifySettings, Settings, SqsSettings
from jobping.text import one_line
from tasks.notify.alerts import ALERT_EVENT_PREFIX, MAX_REASON_CHARS, MAX_TITLE_CHARS, emit_alert
from tasks.sqs.queues import depth, locate_queues

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

RUN_AUTOMATION = "jobping: a run failed"
ALERT_AUTOMATION = "jobping: alert"
AUTOMATIONS = (RUN_AUTOMATION, ALERT_AUTOMATION)
WEBHOOK_BLOCK = "jobping-alerts"
JOBPING_TAG = "jobping"
# a run that ends in one of these went wrong; Cancelled is someone's choice, not a failure
FAILED_STATES = ("Failed", "Crashed", "TimedOut")
# the count of dead-lettered messages last reported, per DLQ: kept in Prefect, so that a
# restarted autoscaler neither repeats a report nor forgets one
DLQ_VARIABLE = "jobping_dlq_reported"
DLQ_HINT = "`jobping dlq list` shows them with their reasons; `jobping dlq redrive` sends them back"

# the alert's fields, one jinja mapping each, rendered by the Prefect server when the
# automation fires; `tojson` makes the webhook's JSON valid whatever a state message holds
RUN_ALERT = (
    '{% set a = {"kind": "alert", "alert": "run",'
    ' "title": "jobping: " ~ (deployment.name or flow.name) ~ " run " ~ (flow_run.state.name | lower) ~ ": "'
    " ~ flow_run.name,"
    ' "run": flow_run.name | string, "state": flow_run.state.name | string,'
    ' "reason": ((flow_run.state.message or "no message") ~ "").split() | join(" ")'
    f' | truncate({MAX_REASON_CHARS}, true, "...", 0),'
    ' "hint": "the run\'s page in the Prefect UI shows its logs",'
    ' "url": flow_run | ui_url, "occurred": event.occurred.isoformat(),'
    ' "details": {"deployment": deployment.name or none, "flow": flow.name or none, "run_id": flow_run.id | string}}'
    " %}"
)
EVENT_ALERT = (
    '{% set a = {"kind": "alert", "alert": event.event | replace("' + ALERT_EVENT_PREFIX + '", ""),'
    # an event's text is made one line here too: not every sender uses emit_alert
    f' "title": (event.payload.title ~ "").split() | join(" ") | truncate({MAX_TITLE_CHARS}, true, "...", 0),'
    ' "run": none, "state": none,'
    f' "reason": (event.payload.reason ~ "").split() | join(" ") | truncate({MAX_REASON_CHARS}, true, "...", 0),'
    ' "hint": event.payload.hint or none,'
    ' "url": event | ui_url, "occurred": event.occurred.isoformat(), "details": event.payload.details or {}}'
    " %}"
)
JSON = "{{ a | tojson }}"
# a notification block shows the text in its app's markup (Slack's, Discord's, ...): what the text
# holds is made nothing any of them acts on, as jobping.markup's "text" does (no <, >, mention or
# masked link); the JSON above is data, escaped by whoever shows it
NEUTRAL = "".join(f" | replace({old!r}, {new!r})" for old, new in NEUTRAL_TEXT)
SUBJECT = "{{ a.title" + NEUTRAL + " }}"
BODY = (
    "{{ a.reason" + NEUTRAL + " }}\n{% if a.hint %}{{ a.hint" + NEUTRAL + " }}\n{% endif %}"
    "{% if a.url %}{{ a.url }}\n{% endif %}"
)


def _channel(client: SyncPrefectClient, notify: NotifySettings) -> UUID:
    """The id of the block alerts go through: the user's notification block, or our webhook block."""
    if notify.block:
        slug, _, name = notify.block.partition("/")
        if not name:
            raise ConfigurationError(
                f"JOBPING_NOTIFY_BLOCK={notify.block!r} names no block type: write it as '<block type>/<name>'"
            )
        try:
            return client.read_block_document_by_name(name, slug, include_secrets=False).id
        except ObjectNotFound:
            raise ConfigurationError(
                f"JOBPING_NOTIFY_BLOCK={notify.block!r}: no such block on the Prefect server; create it in the UI "
                "(Blocks) or fix the name ('<block type>/<name>', as `prefect block ls` shows it)"
            ) from None
    assert notify.webhook_url is not None
    webhook = Webhook(method="POST", url=notify.webhook_url, headers=SecretDict({"Content-Type": "application/json"}))
    # the user's env says where alerts go: the block follows it on every `stack up`
    return cast("UUID", webhook.save(WEBHOOK_BLOCK, overwrite=True))


def automations(notify: NotifySettings, block_id: UUID) -> list[AutomationCore]:
    """The two automations, sending through the block ``block_id`` (a notification block, or a webhook)."""

    def send(alert: str) -> list[CallWebhook | SendNotification]:
        if notify.block:
            return [SendNotification(block_document_id=block_id, subject=alert + SUBJECT, body=alert + BODY)]
        return [CallWebhook(block_document_id=block_id, payload=alert + JSON)]

    failed = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{JOBPING_TAG}"},
        expect={f"prefect.flow-run.{state}" for state in FAILED_STATES},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )
    raised = EventTrigger(expect={ALERT_EVENT_PREFIX + "*"}, posture=Posture.Reactive, threshold=1, within=timedelta(0))
    # each automation: its name, what it is for, the trigger, and the alert it sends
    wanted = [
        (
            RUN_AUTOMATION,
            "A run of a jobping deployment failed, crashed or timed out: tell the user (made by "
            "`jobping stack up` from JOBPING_NOTIFY_*; edits here are replaced by the next `stack up`).",
            failed,
            RUN_ALERT,
        ),
        (
            ALERT_AUTOMATION,
            "A jobping.alert.* event (a DLQ that received messages, an autoscaler that keeps "
            "failing): tell the user (made by `jobping stack up` from JOBPING_NOTIFY_*).",
            raised,
            EVENT_ALERT,
        ),
    ]
    return [
        AutomationCore(name=name, description=description, trigger=trigger, actions=list(send(alert)))
        for name, description, trigger, alert in wanted
    ]


def _put(client: SyncPrefectClient, automation: AutomationCore) -> None:
    """Create ``automation``, or update the one of its name (and delete any others of that name)."""
    found = client.read_automations_by_name(automation.name)
    if not found:
        client.create_automation(automation)
        return
    keep, *others = found
    for other in others:
        client.delete_automation(other.id)
    client.update_automation(keep.id, automation)


def ensure_alerts(settings: Settings) -> str:
    """Create or update the alert automations for the channel set; delete them when none is set.

    Runs against the Prefect API of the current settings (`stack up` sets them). Returns one
    line for the console, naming the channel but never a webhook's URL.
    """
    notify = settings.notify
    with get_client(sync_client=True) as client:
        if not notify.configured:
            for name in AUTOMATIONS:
                for automation in client.read_automations_by_name(name):
                    client.delete_automation(automation.id)
            # the webhook's url (a secret) is not kept once nothing needs it
            with suppress(ObjectNotFound):
                client.delete_block_document(client.read_block_document_by_name(WEBHOOK_BLOCK, "webhook").id)
            return "alerts: none (set JOBPING_NOTIFY_BLOCK or JOBPING_NOTIFY_WEBHOOK_URL to be told of failed runs)"
        for wanted in automations(notify, _channel(client, notify)):
            _put(client, wanted)
    where = (
        f"the block {notify.block}" if notify.block else f"the webhook (its URL in the block webhook/{WEBHOOK_BLOCK})"
    )
    return f"alerts (failed runs, a DLQ that fills) go to {where}: the UI's Automations page shows them"


def send_test_alert() -> str:
    """Emit one ``jobping.alert.test`` event, which the alert automation sends on; say where it goes."""
    with get_client(sync_client=True) as client:
        if not client.read_automations_by_name(ALERT_AUTOMATION):
            raise ConfigurationError(
                f"no automation {ALERT_AUTOMATION!r} on this Prefect server: set JOBPING_NOTIFY_BLOCK or "
                "JOBPING_NOTIFY_WEBHOOK_URL and run `jobping stack up`"
            )
    emit_alert("test", "jobping: a test alert", "sent by `jobping notify --test-alert`: alerts reach you this way",
               hint="nothing to do")  # fmt: skip
    return f"sent the event {ALERT_EVENT_PREFIX}test; the automation {ALERT_AUTOMATION!r} sends it on"


@dataclass
class DlqWatch:
    """Reports the messages that reached the DLQ since the last report, once, as a ``jobping.alert.dlq``.

    The count last reported lives in the Prefect variable ``jobping_dlq_reported`` (per DLQ):
    read at the first look, written after each report. A DLQ that shrank (redriven, deleted,
    expired) is recorded silently, and what arrives after counts from there. The alert is sent
    before the count is written: a crash in between repeats one report, it never loses one.
    """

    config: SqsSettings
    # the seam tests use; the real one sends a prefect event
    emit: Callable[..., object] = emit_alert
    reported: int | None = None
    # found at the first look, and again after a failed one (an emulator started afresh lost it)
    dlq_url: str | None = None
    last_problem: str = ""

    def look(self, sqs: SQSClient) -> int:
        """Read the DLQ's depth; report what is new. Returns how many were reported (0: nothing new)."""
        if self.dlq_url is None:
            self.dlq_url = locate_queues(sqs, self.config).dlq_url
        now = depth(sqs, self.dlq_url)
        total = now.visible + now.in_flight + now.delayed
        name = self.config.dlq_name
        if self.reported is None:
            self.reported = int(_reported().get(name, 0))
        if total == self.reported:
            return 0
        new = max(total - self.reported, 0)
        if new:
            self.emit(
                "dlq",
                f"jobping: {new} new message{'s' if new != 1 else ''} in the DLQ {name}",
                f"{new} message{'s' if new != 1 else ''} dead-lettered since the last report; {total} in the DLQ now",
                hint=DLQ_HINT,
                queue=name,
                new=new,
                total=total,
            )
        Variable.set(DLQ_VARIABLE, {**_reported(), name: total}, overwrite=True)
        self.reported = total
        return new

    def check(self, sqs: SQSClient) -> None:
        """:meth:`look`, for a loop that must go on: a failure is logged once per distinct problem."""
        try:
            self.look(sqs)
        # the queue or the API may be away; the next look tries again, and reports then
        except Exception as exc:
            self.dlq_url = None
            problem = one_line(f"{type(exc).__name__}: {exc}", MAX_REASON_CHARS)
            if problem != self.last_problem:
                logger.warning("watching the DLQ %s failed (%s); trying again each look", self.config.dlq_name, problem)
            self.last_problem = problem
        else:
            self.last_problem = ""


def _reported() -> dict[str, int]:
    value: object = Variable.get(DLQ_VARIABLE, default={})
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}
