"""Alerts as Prefect events: ``jobping.alert.<kind>``, which a Prefect automation sends on.

Anything in jobping that finds a problem a person should hear about (a DLQ that received
messages, an autoscaler that keeps failing, a board that stops answering) calls
:func:`emit_alert`. The event goes to the Prefect API; the automation `jobping stack up`
creates ("jobping: alert", app/alerts.py) turns it into an alert through the channel set
for matches (JOBPING_NOTIFY_BLOCK or JOBPING_NOTIFY_WEBHOOK_URL), so that every alert,
whatever raised it, arrives the same way and shows in the UI's Events and Automations pages.
"""

from __future__ import annotations

from typing import Any

from prefect.events.clients import get_events_client
from prefect.events.schemas.events import Event
from prefect.utilities.asyncutils import run_coro_as_sync

from jobping.text import one_line

ALERT_EVENT_PREFIX = "jobping.alert."
# a title is a subject line; a reason is one line a person reads on a phone
MAX_TITLE_CHARS = 200
MAX_REASON_CHARS = 500
MAX_KIND_CHARS = 40


def alert_event(kind: str, title: str, reason: str, *, hint: str = "", **details: str | int | float) -> Event:
    """The event :func:`emit_alert` sends; ``kind`` is lowercase letters, digits and dashes."""
    if not kind or len(kind) > MAX_KIND_CHARS or not all(c.isascii() and (c.isalnum() or c == "-") for c in kind):
        raise ValueError(f"an alert's kind is up to {MAX_KIND_CHARS} ascii letters, digits and dashes, not {kind!r}")
    payload: dict[str, Any] = {
        "title": one_line(title, MAX_TITLE_CHARS),
        "reason": one_line(reason, MAX_REASON_CHARS),
        "hint": one_line(hint, MAX_REASON_CHARS),
        "details": details,
    }
    return Event(
        event=ALERT_EVENT_PREFIX + kind.lower(),
        resource={"prefect.resource.id": f"jobping.{kind.lower()}", "prefect.resource.name": f"jobping {kind}"},
        payload=payload,
    )


async def aemit_alert(kind: str, title: str, reason: str, *, hint: str = "", **details: str | int | float) -> Event:
    """:func:`emit_alert` for async code."""
    event = alert_event(kind, title, reason, hint=hint, **details)
    # a client of its own, not prefect's background worker: an error reaches the caller,
    # who then knows the alert was not sent (and, like the dlq watch, records nothing)
    async with get_events_client() as events:
        await events.emit(event)
    return event


def emit_alert(kind: str, title: str, reason: str, *, hint: str = "", **details: str | int | float) -> Event:
    """Send an alert as the Prefect event ``jobping.alert.<kind>``; the automation sends it on.

    ``title`` is the subject line ("jobping: 3 new messages in the DLQ jobping-jobs-to-filter-dlq"),
    ``reason`` one line saying what happened, ``hint`` one line saying what to do (optional);
    both are made one line and cut (control characters and newlines become spaces). ``details``
    are a few plain values that travel with it (``queue="...", new=3, total=5``) and reach the
    webhook's JSON under ``details``. Never pass a secret: the event is stored by Prefect.

    Works from sync code and from inside an event loop; raises when the Prefect API cannot be
    reached, so a caller that records "reported" does so only after this returns.
    """
    return run_coro_as_sync(aemit_alert(kind, title, reason, hint=hint, **details))
