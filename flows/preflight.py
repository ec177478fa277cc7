"""What a flow checks before any slow work, as the CLI does: healed, or one line naming the fix.

A night that cannot publish or store should fail before its first task, not after scraping
every board: the profile, the LLM's settings, a writable lake and an answering queue are
checked first. On the embedded default a stopped emulator is started again (what it held is
gone; the next scrape publishes whatever the lake does not hold).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import State, get_run_logger
from prefect.states import Failed

from jobping.errors import ConfigurationError, JobpingError
from jobping.profile import ProfileError, load_profile
from jobping.settings import Settings
from jobping.text import one_line
from tasks.llm.factory import check_llm
from tasks.sqs.client import ensure_reachable


def check_before_running(settings: Settings, *, analyses: bool = True, queue: bool = True) -> str | None:
    """Raise a one-line error unless the run can do its work; return where SQS answers (if ``queue``).

    For a run that analyses, or decides what is analysed (the scrape skips what is stored with
    this profile's prompt version): the profile, the LLM's secret, a local lake's folder.
    """
    if analyses:
        load_profile(settings.profile_path)
        check_llm(settings.llm)
        if not settings.lake.url:
            check_writable(settings.lake_dir)
    return ensure_reachable(settings) if queue else None


def check_writable(folder: Path) -> None:
    """Raise a ConfigurationError now, rather than after the first batch, when the lake cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".jobping-probe-"):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"the lake {folder} is not writable ({why}): fix it or set JOBPING_DATA_DIR") from exc


def preflight_failure(settings: Settings, *, analyses: bool = True, queue: bool = True) -> State[Any] | None:
    """Inside a flow: None when it may go on, else the Failed state that ends it with one line.

    The state carries the error, so a caller of the flow function gets it raised; the run's
    log and its state message hold the one line, not a traceback.
    """
    try:
        where = check_before_running(settings, analyses=analyses, queue=queue)
    except (JobpingError, ProfileError) as exc:
        return cannot_start(exc)
    get_run_logger().debug("SQS answers at %s", where)
    return None


def cannot_start(exc: Exception) -> State[Any]:
    """The Failed state that ends a flow before its work, its error in one line in the run's log."""
    reason = one_line(exc)
    get_run_logger().error("cannot start: %s", reason)
    return Failed(message=reason, data=exc)
