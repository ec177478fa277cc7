"""Keeping secrets (a webhook's url, a proxy's credentials) out of what is shown: errors, log lines, reports.

A secret is known by its pieces: the text that must never be shown is replaced by ``***``
wherever it appears, in a message we build or in a log record another library writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

# a part of a url shorter than this ("v1", "api") is no token
MIN_SECRET_CHARS = 4
REDACTED = "***"


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


def redact(text: str, secrets: Iterable[str]) -> str:
    # longest first: a token inside a path is gone before the path is looked for
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
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
        if record.exc_info and record.exc_info[1] is not None:
            # a traceback's last line is the exception's message, which may carry the secret too
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact(text, self.secrets)
        return True


@contextmanager
def secrets_kept_out_of_logs(secrets: set[str], logger_names: Iterable[str]) -> Iterator[None]:
    """While the block runs, the loggers named write none of ``secrets``.

    A filter acts only on records logged on its own logger, not on those its children pass up:
    name every logger that writes, not their parent.
    """
    keeper = RedactSecrets(secrets)
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addFilter(keeper)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(keeper)
