"""Prefect's console handler as the CLI wants it: one line per record, tracebacks left to the UI."""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler


class OneLineConsoleHandler(PrefectConsoleHandler):
    """Prints a record without its traceback; the API handler still sends the traceback to the UI.

    The CLI names this class in ``PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS`` unless ``--debug``
    is given, so that it holds however often Prefect configures its logging.
    """

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
