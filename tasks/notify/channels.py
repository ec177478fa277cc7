"""Where a digest goes: a Prefect notification block (Slack, Teams, Discord, email, a custom
webhook: whatever Prefect's blocks offer), or, without one, JSON POSTed to a webhook URL.

A webhook's URL is a secret (its path or query is the token): an error or a log line about
one names only its scheme and host, and the status it answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import SecretStr

from jobping.digest import Digest
from jobping.errors import TransientError
from jobping.markup import Markup
from jobping.redaction import MIN_SECRET_CHARS, redact, secret_parts, secrets_kept_out_of_logs, where
from jobping.text import one_line

# the app behind each of Prefect's notification blocks, by block type; any other block
# gets text that no chat app's markup acts on
MARKUP_BY_BLOCK_TYPE: dict[str, Markup] = {
    "slack-webhook": "slack",
    "discord-webhook": "discord",
}
# the loggers that write a request's url: apprise (its POST URL at debug), urllib3 under it,
# httpx (every request at info)
URL_LOGGERS = ("apprise", "urllib3.connectionpool", "httpx")
# prefect's eavesdropper writes apprise's records as "[LEVEL]: message"
APPRISE_FAILURE_LEVELS = ("[WARNING]", "[ERROR]", "[CRITICAL]")
MAX_ERROR_CHARS = 300


class NotifyError(TransientError):
    """The digest was not sent; it goes out with the next run."""


def markup_of(notifier: NotificationBlock) -> Markup:
    """The markup of the app a notification block sends to."""
    return MARKUP_BY_BLOCK_TYPE.get(type(notifier).get_block_type_slug(), "text")


def block_secrets(block: Block) -> set[str]:
    """Every secret value a block holds (its url, tokens, secret dicts), and any url field of it."""
    found: set[str] = set()
    for name in type(block).model_fields:
        value = getattr(block, name, None)
        if isinstance(value, SecretStr):
            found |= secret_parts(value.get_secret_value())
        elif isinstance(value, SecretDict):
            found |= {str(v) for v in value.get_secret_value().values() if len(str(v)) >= MIN_SECRET_CHARS}
        elif isinstance(value, str) and "://" in value:
            found |= secret_parts(value)
    return found


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
    notifier = await load_notification_block(block_name)
    await send_through(digest, notifier, block_name, timeout_seconds)
    return f"block {block_name}"


async def send_through(digest: Digest, notifier: NotificationBlock, label: str, timeout_seconds: float) -> None:
    """Send ``digest`` through ``notifier``, its text escaped for the app behind it; ``label`` names it in errors."""
    secrets = block_secrets(notifier)
    body = digest.body(markup_of(notifier))
    block: Any = notifier
    try:
        # without it, Prefect's apprise blocks log a failure and return as if they had sent
        with block.raise_on_failure(), secrets_kept_out_of_logs(secrets, URL_LOGGERS):
            await asyncio.wait_for(block.anotify(body=body, subject=digest.subject()), timeout_seconds)
    except Exception as exc:
        # from None: the chained error (apprise's log, httpx's message) may carry the block's url
        reason = redact(one_line(f"{type(exc).__name__}: {failure_of(exc)}", MAX_ERROR_CHARS), secrets)
        raise NotifyError(f"the notification block {label!r} failed: {reason}") from None


def failure_of(exc: Exception) -> str:
    """What went wrong, in a sentence: for prefect's NotificationError (which keeps apprise's whole
    log, payload included, and no message) its warning and error lines only."""
    log = getattr(exc, "log", None)
    if not isinstance(log, str):
        return str(exc)
    said = [line.partition("]: ")[2] for line in log.splitlines() if line.startswith(APPRISE_FAILURE_LEVELS)]
    return " ".join(said) or "apprise said nothing above debug"


async def send_to_webhook(digest: Digest, url: str, timeout_seconds: float) -> str:
    """POST the digest's JSON to ``url``; anything but a 2xx is a failure."""
    secrets = secret_parts(url)
    try:
        with secrets_kept_out_of_logs(secrets, URL_LOGGERS):
            async with httpx.AsyncClient(timeout=timeout_seconds, headers={"user-agent": "jobping"}) as client:
                response = await client.post(url, json=digest.payload())
    except httpx.HTTPError as exc:
        # from None: httpx's own message and its request carry the whole url
        reason = redact(one_line(str(exc), MAX_ERROR_CHARS), secrets)
        raise NotifyError(f"the webhook {where(url)} failed: {type(exc).__name__}: {reason}") from None
    if not response.is_success:
        raise NotifyError(f"the webhook {where(url)} answered {response.status_code} {response.reason_phrase}")
    return f"webhook {where(url)}"
