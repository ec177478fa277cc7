"""The settings a flow run uses, built once at its start, with a warning for each variable it ignores."""

from __future__ import annotations

from prefect import get_run_logger

from jobping.environment import unknown_variables
from jobping.settings import Settings


def run_settings() -> Settings:
    """``Settings()``, after one warning in the run's log per ``JOBPING_*`` variable nothing reads.

    A run started by a worker never reaches a terminal: its log is where a typo can be seen.
    """
    logger = get_run_logger()
    for unknown in unknown_variables():
        logger.warning("%s", unknown.line())
    return Settings()
