"""Pings: after a burst of analyse runs (or one run by hand), the new fitting job groups as one digest.

A group is sent once, ever: the ledger (storage/pings.py) is written after the digest went
out, so a crash in between repeats a digest and never loses one. A notifier that fails is
reported and the run goes on; what it could not send is still new for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from flows.artifacts import top_matches_markdown
from flows.run_settings import run_settings
from jobping.digest import Digest, Match
from jobping.engine.drain import TOP_MATCHES
from jobping.profile import Profile, ProfileError, load_profile
from jobping.settings import Settings
from storage.lake import Lake
from storage.pings import new_fitting_matches, record_pings, top_matches_since
from tasks.notify.channels import NotifyError, send_to_block, send_to_webhook

logger = logging.getLogger(__name__)

# a notify run that could not send is tried again; what it could not send stays new meanwhile
NOTIFY_RETRIES = 2
NOTIFY_RETRY_DELAY_SECONDS = 60


@dataclass
class PingReport:
    """What one look for new matches found and did."""

    # job groups with a fitting analysis since the last digest (storage/pings.py)
    fitting: int = 0
    new: list[Match] = field(default_factory=list)
    sent: int = 0
    channel: str | None = None
    error: str | None = None

    def line(self) -> str:
        if self.channel is None and not self.fitting:
            return "no notifier set (JOBPING_NOTIFY_BLOCK or JOBPING_NOTIFY_WEBHOOK_URL): nothing sent"
        if self.error is not None:
            return f"{len(self.new)} new matches not sent ({self.error}); the next run sends them"
        if self.sent:
            return f"{self.sent} new matches sent through {self.channel}"
        if self.new and self.channel is None:
            return f"{len(self.new)} new matches; no notifier set (JOBPING_NOTIFY_BLOCK or JOBPING_NOTIFY_WEBHOOK_URL)"
        return f"no new matches to send ({self.fitting} fitting groups analysed since the last digest, all sent before)"


def _profile(settings: Settings) -> Profile | None:
    """The profile the matches are explained against; None when it cannot be read, and the digest goes out
    explained by the analyses alone (the analyse run's preflight names what is wrong with the file)."""
    try:
        return load_profile(settings.profile_path)
    except ProfileError as exc:
        logger.warning("the digest's reasons leave the profile out: %s", exc)
        return None


async def ping_new_matches(settings: Settings, *, dry_run: bool = False) -> PingReport:
    """Send the new fitting groups as one digest (unless ``dry_run``) and record them as sent."""
    notify = settings.notify
    report = PingReport()
    if notify.block:
        report.channel = f"block {notify.block}"
    elif notify.webhook_url is not None:
        report.channel = "webhook"
    if not notify.configured and not dry_run:
        # nowhere to send: the lake is not read
        return report
    lake = Lake.from_settings(settings)
    profile = _profile(settings)
    report.fitting, report.new = await asyncio.to_thread(new_fitting_matches, lake, notify.min_score, profile)
    if not report.new or dry_run:
        return report
    digest = Digest(report.new)
    try:
        if notify.block:
            report.channel = await send_to_block(digest, notify.block, notify.timeout_seconds)
        else:
            assert notify.webhook_url is not None
            url = notify.webhook_url.get_secret_value()
            report.channel = await send_to_webhook(digest, url, notify.timeout_seconds)
    except NotifyError as exc:
        report.error = str(exc)
        return report
    # after sending, never before: a crash here repeats this digest next run, it never loses it
    sent_at = datetime.now(UTC)
    await asyncio.to_thread(
        record_pings, lake, digest.groups, digest_id=digest.digest_id, channel=report.channel, sent_at=sent_at
    )
    report.sent = len(digest.matches)
    return report


@flow(
    name="notify",
    flow_run_name="the matches of a burst",
    log_prints=True,
    retries=NOTIFY_RETRIES,
    retry_delay_seconds=NOTIFY_RETRY_DELAY_SECONDS,
)
async def notify_matches(since: datetime | None = None) -> str:
    """One burst's end: its best matches as one artifact, and one digest of every new fitting job.

    The autoscaler starts this once the queue is empty and the last analyse run of a burst has
    ended, however many runs drained it; ``since`` is when it first saw the burst's work.
    """
    settings = run_settings()
    logger = get_run_logger()
    lake = Lake.from_settings(settings)
    top = await asyncio.to_thread(top_matches_since, lake, since, TOP_MATCHES)
    if top:
        when = f"since {since:%Y-%m-%d %H:%M} UTC" if since else "of every analysis"
        await acreate_markdown_artifact(
            key="top-matches", markdown=top_matches_markdown(top), description=f"Best fits {when}"
        )
    ping = await ping_new_matches(settings)
    if ping.error is not None:
        # this run exists to send: a digest that did not go out is its failure, retried by prefect
        raise NotifyError(ping.line())
    logger.info("%s", ping.line())
    return ping.line()
