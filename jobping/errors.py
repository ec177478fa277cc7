"""Errors that say whether retrying can help."""

from __future__ import annotations

from pydantic import ValidationError


class JobpingError(Exception):
    """Base of jobping's own errors; the message is safe to show the user."""


class TransientError(JobpingError):
    """A failure that may succeed on retry: throttling, 5xx, timeouts, an unreachable queue."""


class TerminalError(JobpingError):
    """A failure that no retry can fix: invalid input, bad configuration."""


class ConfigurationError(TerminalError):
    """A setting, a file or an endpoint is wrong."""


class PostingRejectedError(TerminalError):
    """This posting can never be analysed (refusal, cut-off answer, invalid answer twice).

    Its message goes to the DLQ with this error's text as the reason.
    """


MAX_SHOWN_INPUT_CHARS = 60
MAX_SHOWN_ERRORS = 5


def describe(error: ValidationError, *, show_input: bool = True) -> str:
    """A pydantic error as one line a user can act on: where, what was given, what is wrong."""
    parts = []
    for item in error.errors()[:MAX_SHOWN_ERRORS]:
        where = ".".join(str(part) for part in item["loc"]) or "value"
        given = item.get("input")
        shown = ""
        if show_input and isinstance(given, str | int | float) and not isinstance(given, bool):
            text = repr(given)
            shown = f" (got {text[:MAX_SHOWN_INPUT_CHARS]}{'...' if len(text) > MAX_SHOWN_INPUT_CHARS else ''})"
        parts.append(f"{where}: {item['msg']}{shown}")
    more = len(error.errors()) - MAX_SHOWN_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
