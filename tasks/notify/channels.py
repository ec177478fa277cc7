"""Where a digest goes: a Prefect notification block (Slack, Teams, Discord, email, a custom
webhook: whatever Prefect's blocks offer), or, without one, JSON POSTed to a webhook URL.

A webhook's URL is a secret (its path or query is the token): an error or a log line about
one names only its scheme and host, and the status it answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import SecretStr

from jobping.digest import Digest
from jobping.errors import TransientError
from jobping.markup import Markup
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
# a part of a url shorter than this ("v1", "api") is no token
MIN_SECRET_CHARS = 4
REDACTED = "***"
# prefect's eavesdropper writes apprise's records as "[LEVEL]: message"
APPRISE_FAILURE_LEVELS = ("[WARNING]", "[ERROR]", "[CRITICAL]")
MAX_ERROR_CHARS = 300


class NotifyError(TransientError):
    """The digest was not sent; it goes out with the next run."""


def markup_of(notifier: NotificationBlock) -> Markup:
    """The markup of the app a notification block sends to."""
    return MARKUP_BY_BLOCK_TYPE.get(type(notifier).get_block_type_slug(), "text")


def where(url: str) -> str:
    """``url`` as an error may name it: its scheme and host, never its path, query or user part."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "an invalid url"
    return f"{parts.scheme}://{host}" if parts.scheme and host else "an invalid url"


def secret_parts(value: str) -> set[str]:
    """The pieces of a secret that must not be shown: a url's user part, path segments and query
    values (each as written and decoded), or the whole value when it is no url."""
    parts = {value}
    try:
        url = urlsplit(value)
    except ValueError:
        return parts
    if url.scheme and url.netloc:
        pieces = [url.path, url.query, url.fragment, url.username or "", url.password or ""]
        pieces += url.path.split("/") + [v for _, v in parse_qsl(url.query, keep_blank_values=True)]
        parts |= {piece for piece in pieces + [unquote(p) for p in pieces] if len(piece) >= MIN_SECRET_CHARS}
    return parts


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


def redact(text: str, secrets: Iterable[str]) -> str:
    # longest first: a token inside a path is gone before the path is looked for
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message with the secrets replaced; the record still goes out."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = redact(message, self.secrets)
        if shown != message:
            record.msg, record.args = shown, None
        return True


@contextmanager
def secrets_kept_out_of_logs(secrets: set[str]) -> Iterator[None]:
    """While the block runs, the loggers that write request urls write none of ``secrets``."""
    keeper = RedactSecrets(secrets)
    loggers = [logging.getLogger(name) for name in URL_LOGGERS]
    for logger in loggers:
        logger.addFilter(keeper)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(keeper)


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
        with block.raise_on_failure(), secrets_kept_out_of_logs(secrets):
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
        with secrets_kept_out_of_logs(secrets):
            async with httpx.AsyncClient(timeout=timeout_seconds, headers={"user-agent": "jobping"}) as client:
                response = await client.post(url, json=digest.payload())
    except httpx.HTTPError as exc:
        # from None: httpx's own message and its request carry the whole url
        reason = redact(one_line(str(exc), MAX_ERROR_CHARS), secrets)
        raise NotifyError(f"the webhook {where(url)} failed: {type(exc).__name__}: {reason}") from None
    if not response.is_success:
        raise NotifyError(f"the webhook {where(url)} answered {response.status_code} {response.reason_phrase}")
    return f"webhook {where(url)}"
