"""Alerts: the shapes a webhook and a notification block receive, and the DLQ watch's memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from prefect.server.events.actions import JinjaTemplateAction
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.schemas.core import Deployment, Flow, FlowRun
from prefect.server.schemas.states import State, StateType
from prefect.server.utilities.user_templates import render_user_template_sync
from prefect.settings import PREFECT_UI_URL, temporary_settings

from app.alerts import BODY, EVENT_ALERT, JSON, RUN_ALERT, SUBJECT, DlqWatch
from jobping.digest import Digest, Match
from jobping.markup import escape
from jobping.settings import Settings
from tasks.notify.alerts import alert_event
from tasks.sqs.queues import Queues

UI = "http://127.0.0.1:4321"
# what a flow run's state message can hold: quotes, markup, a traceback's lines
MESSAGE = 'Flow run encountered an exception: ProfileError: bad "salary"\n  at line 2 <b>&\r\n  done'
ONE_LINE = 'Flow run encountered an exception: ProfileError: bad "salary" at line 2 <b>& done'


def render(template: str, context: dict[str, Any]) -> str:
    """``template`` rendered as the Prefect server renders an automation's action."""
    JinjaTemplateAction._register_filters_if_needed()
    with temporary_settings({PREFECT_UI_URL: UI}):
        return render_user_template_sync(template, context)


def failed_run_context() -> dict[str, Any]:
    flow = Flow(id=uuid4(), name="analyse")
    deployment = Deployment(id=uuid4(), name="analyse", flow_id=flow.id)
    state = State(type=StateType.FAILED, name="Failed", message=MESSAGE)
    run = FlowRun(id=uuid4(), name="tidy-fox", flow_id=flow.id, deployment_id=deployment.id, state=state)
    event = ReceivedEvent(
        occurred=datetime(2026, 12, 6, 2, 0, tzinfo=UTC),
        event="prefect.flow-run.Failed",
        resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"},
        id=uuid4(),
    )
    return {"flow_run": run, "flow": flow, "deployment": deployment, "event": event}


def test_a_failed_run_reaches_a_webhook_as_one_alert_object_with_its_name_reason_and_link() -> None:
    context = failed_run_context()
    run = context["flow_run"]
    payload = json.loads(render(RUN_ALERT + JSON, context))
    assert payload == {
        "kind": "alert",
        "alert": "run",
        "title": "jobping: analyse run failed: tidy-fox",
        "run": "tidy-fox",
        "state": "Failed",
        "reason": ONE_LINE,
        "hint": "the run's page in the Prefect UI shows its logs",
        "url": f"{UI}/runs/flow-run/{run.id}",
        "occurred": "2026-12-06T02:00:00+00:00",
        "details": {"deployment": "analyse", "flow": "analyse", "run_id": str(run.id)},
    }


def test_a_failed_run_reaches_a_notification_block_as_a_plain_subject_and_body() -> None:
    context = failed_run_context()
    assert render(RUN_ALERT + SUBJECT, context) == "jobping: analyse run failed: tidy-fox"
    assert render(RUN_ALERT + BODY, context).splitlines() == [
        escape(ONE_LINE, "text"),
        "the run's page in the Prefect UI shows its logs",
        f"{UI}/runs/flow-run/{context['flow_run'].id}",
    ]


def dlq_event() -> ReceivedEvent:
    sent = alert_event(
        "dlq", "jobping: 3 new messages in the DLQ q-dlq", "3 dead-lettered\nsince the last report; 5 now",
        hint="`jobping dlq list`", queue="q-dlq", new=3, total=5,
    )  # fmt: skip
    return ReceivedEvent(**sent.model_dump())


def test_an_event_sent_without_emit_alert_still_reaches_a_webhook_as_one_line_fields() -> None:
    # the autoscaler's own alert is sent with prefect's emit_event, title and reason only
    sent = alert_event("autoscaler", "t", "r")
    event = ReceivedEvent(
        **sent.model_dump() | {"payload": {"title": "the autoscaler\nkeeps failing", "reason": "a\r\nb"}}
    )
    payload = json.loads(render(EVENT_ALERT + JSON, {"event": event}))
    assert (payload["alert"], payload["title"], payload["reason"]) == (
        "autoscaler",
        "the autoscaler keeps failing",
        "a b",
    )
    assert (payload["hint"], payload["details"]) == (None, {})


def test_an_alert_event_reaches_a_webhook_with_its_title_reason_hint_details_and_link() -> None:
    event = dlq_event()
    payload = json.loads(render(EVENT_ALERT + JSON, {"event": event}))
    assert payload == {
        "kind": "alert",
        "alert": "dlq",
        "title": "jobping: 3 new messages in the DLQ q-dlq",
        "run": None,
        "state": None,
        "reason": "3 dead-lettered since the last report; 5 now",
        "hint": "`jobping dlq list`",
        "url": f"{UI}/events/event/{event.occurred:%Y-%m-%d}/{event.id}",
        "occurred": event.occurred.isoformat(),
        "details": {"queue": "q-dlq", "new": 3, "total": 5},
    }
    assert render(EVENT_ALERT + SUBJECT, {"event": event}) == "jobping: 3 new messages in the DLQ q-dlq"
    assert render(EVENT_ALERT + BODY, {"event": event}).splitlines()[:2] == [
        "3 dead-lettered since the last report; 5 now",
        "`jobping dlq list`",
    ]


@pytest.mark.parametrize("kind", ["", "DLQ alert", "a.b", "x" * 41], ids=["empty", "space", "dot", "too-long"])
def test_an_alert_kind_that_would_not_make_one_event_name_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        alert_event(kind, "t", "r")


def test_the_digest_s_json_says_it_carries_matches() -> None:
    match = Match("g1", "Data Engineer", "ACME", "Berlin", 91, "apply", "fits", ["indeed"], ["https://x/1"],
                  datetime(2026, 12, 6, tzinfo=UTC))  # fmt: skip
    payload = Digest([match]).payload()
    assert payload["kind"] == "matches"
    assert [m["job_group"] for m in payload["matches"]] == ["g1"]


@pytest.mark.usefixtures("prefect_api")
def test_the_dlq_watch_reports_new_dead_letters_once_and_remembers_across_a_restart(
    settings: Settings, sqs: Any, queues: Queues
) -> None:
    sent: list[dict[str, Any]] = []

    def watch() -> DlqWatch:
        return DlqWatch(settings.sqs, emit=lambda *a, **k: sent.append(k))

    first = watch()
    assert first.look(sqs) == 0
    for i in range(3):
        sqs.send_message(QueueUrl=queues.dlq_url, MessageBody=f"dead {i}")
    assert first.look(sqs) == 3
    assert first.look(sqs) == 0
    # a restarted autoscaler reads what was reported from Prefect: no second report
    restarted = watch()
    assert restarted.look(sqs) == 0
    sqs.send_message(QueueUrl=queues.dlq_url, MessageBody="dead 3")
    assert restarted.look(sqs) == 1
    assert [(k["queue"], k["new"], k["total"]) for k in sent] == [
        (settings.sqs.dlq_name, 3, 3),
        (settings.sqs.dlq_name, 1, 4),
    ]
    # a redrive empties it: recorded silently, and what comes next counts from there
    sqs.purge_queue(QueueUrl=queues.dlq_url)
    assert restarted.look(sqs) == 0
    sqs.send_message(QueueUrl=queues.dlq_url, MessageBody="dead 4")
    assert watch().look(sqs) == 1
    assert sent[-1]["total"] == 1
    assert len(sent) == 3


def test_an_alert_s_text_reaches_a_notification_block_with_nothing_a_chat_app_acts_on() -> None:
    hostile = "<!channel> URGENT @everyone [Verify your account](https://evil.example/login) <https://evil.example|ok>"
    context = failed_run_context()
    context["flow_run"].state.message = hostile
    body = render(RUN_ALERT + BODY, context).splitlines()
    assert body[0] == escape(hostile, "text")
    event = ReceivedEvent(**alert_event("dlq", hostile, hostile, hint=hostile).model_dump())
    shown = [
        render(EVENT_ALERT + SUBJECT, {"event": event}),
        *render(EVENT_ALERT + BODY, {"event": event}).splitlines(),
    ]
    for line in [body[0], *shown[:3]]:
        assert not {"<", ">"} & set(line), line
        assert "](" not in line
        assert "@everyone" not in line
