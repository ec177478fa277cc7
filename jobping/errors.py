"""Errors that say whether retrying can help."""

from __future__ import annotations


class JobpingError(Exception):
    """Base of jobping's own errors; the message is safe to show the user."""


class TransientError(JobpingError):
    """A failure that may succeed on retry: throttling, 5xx, timeouts, an unreachable queue."""


class TerminalError(JobpingError):
    """A failure that no retry can fix: invalid input, bad configuration."""


class ConfigurationError(TerminalError):
    """A setting, a file or an endpoint is wrong."""
