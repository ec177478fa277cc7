"""Where a digest goes: a Prefect notification block (Slack, Teams, Discord, email, a custom
webhook: whatever Prefect's blocks offer), or, without one, JSON POSTed to a webhook URL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block

from jobping.digest import Digest
from jobping.errors import TransientError


class NotifyError(TransientError):
    """The digest was not sent; it goes out with the next run."""


async def load_notification_block(block_name: str) -> NotificationBlock:
    """The notification block ``block_name`` ("<block type>/<name>"); a NotifyError saying why when it is not one."""
    if "/" not in block_name:
        raise NotifyError(
            f"JOBPING_NOTIFY_BLOCK={block_name!r} names no block type: write it as "
            "'<block type>/<name>', e.g. 'slack-webhook/jobping' (`prefect block ls` lists them)"
        )
    try:
        block = await Block.aload(block_name)
    except (ValueError, httpx.HTTPError) as exc:
        raise NotifyError(f"the notification block {block_name!r} could not be loaded: {exc}") from exc
    if not isinstance(block, NotificationBlock):
        raise NotifyError(f"the block {block_name!r} is a {type(block).__name__}, not a notification block")
    return block


async def send_to_block(digest: Digest, block_name: str, timeout_seconds: float) -> str:
    """Send through the notification block ``block_name`` ("<block type>/<name>", as `prefect block ls` shows)."""
    notifier: Any = await load_notification_block(block_name)
    try:
        # without it, Prefect's apprise blocks log a failure and return as if they had sent
        with notifier.raise_on_failure():
            await asyncio.wait_for(notifier.anotify(body=digest.body(), subject=digest.subject()), timeout_seconds)
    except Exception as exc:
        raise NotifyError(f"the notification block {block_name!r} failed: {type(exc).__name__}: {exc}") from exc
    return f"block {block_name}"


async def send_to_webhook(digest: Digest, url: str, timeout_seconds: float) -> str:
    """POST the digest's JSON to ``url``; anything but a 2xx is a failure."""
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, headers={"user-agent": "jobping"}) as client:
            response = await client.post(url, json=digest.payload())
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise NotifyError(f"the webhook {httpx.URL(url).host} failed: {type(exc).__name__}: {exc}") from exc
    return f"webhook {httpx.URL(url).host}"
