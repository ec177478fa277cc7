"""A long-running part's health: one log line per distinct problem, a status file, an alert if it lasts.

The autoscaler runs for months unwatched. A queue or API that is away must neither kill it
nor fill its log: each distinct problem is logged once (its traceback at debug level), the
looks that fail are spaced out with a back-off, the state is written to a small JSON file
that `jobping stack status` reads (so "running" is never said of a part that only fails),
and a problem that outlasts :data:`ALERT_AFTER_SECONDS` is sent to the user as an alert
event (``jobping.alert.<part>``), once per problem.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jobping import private
from jobping.processes import Started, start_time
from jobping.text import one_line

logger = logging.getLogger(__name__)

ALERT_AFTER_SECONDS = 45.0
MAX_BACKOFF_SECONDS = 60.0
MAX_REASON_CHARS = 300
# a status file is ours to read back only if it is this small: anything larger is not ours
MAX_STATUS_BYTES = 4_096
OK, FAILING = "ok", "failing"


def error_line(exc: BaseException) -> str:
    """An error as one short line: its type and message, never a traceback."""
    return one_line(f"{type(exc).__name__}: {exc}", MAX_REASON_CHARS)


@dataclass(frozen=True)
class PartStatus:
    """What a part last wrote of itself: ``ok``, or ``failing`` since when and why."""

    pid: int
    state: str
    reason: str
    since: datetime
    # the writer's start time: the pid is the writer's only while it matches
    started: str = ""

    @classmethod
    def read(cls, path: Path) -> PartStatus | None:
        """The status in ``path`` when it is well-formed and its process still runs; else None.

        The file is outside input like any other: a wrong type, an oversized file, a pid that
        is gone or that another process holds now (its start time is not the writer's) gives
        None, never an exception or a stranger's text on the screen.
        """
        try:
            if path.stat().st_size > MAX_STATUS_BYTES:
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
            pid, state, reason, started = data["pid"], data["state"], data["reason"], data["started"]
            since = datetime.fromisoformat(data["since"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not (isinstance(pid, int) and pid > 0 and state in (OK, FAILING) and isinstance(reason, str)):
            return None
        if not (isinstance(started, str) and Started(pid, started).running()):
            return None
        return cls(pid, state, one_line(reason, MAX_REASON_CHARS), since, started)


class Health:
    """The health of one long-running part: call :meth:`failed` or :meth:`ok` after each look."""

    def __init__(
        self,
        part: str,
        path: Path,
        poll_seconds: float,
        alert: Callable[[str, str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.part = part
        self.clock = clock
        self.path = path
        self.poll_seconds = poll_seconds
        self.alert = alert
        self.reason: str | None = None
        self.since: datetime | None = None
        self.alerted = False
        self.failures = 0
        # read once: on macOS it asks ps
        self.started = start_time(os.getpid()) or ""
        self._write(OK, "")

    def failed(self, exc: BaseException) -> float:
        """Record a failed look; return how long to wait before the next one (a back-off)."""
        reason = error_line(exc)
        now = self.clock()
        self.failures += 1
        if reason != self.reason:
            # one line per distinct problem; the traceback only for someone debugging
            logger.warning("%s: %s; trying again with a back-off", self.part, reason)
            logger.debug("%s failed", self.part, exc_info=exc)
            if self.reason is None:
                self.since = now
            self.reason, self.alerted = reason, False
        self._write(FAILING, reason)
        since = self.since or now
        if not self.alerted and (now - since).total_seconds() >= ALERT_AFTER_SECONDS and self.alert is not None:
            try:
                self.alert(f"the {self.part} keeps failing", f"{reason} (since {since:%Y-%m-%d %H:%M:%S} UTC)")
            # the alert goes through the prefect api, which may be what is away: the next look tries again
            except Exception as alert_error:
                logger.warning("%s: the alert could not be sent: %s", self.part, error_line(alert_error))
            else:
                self.alerted = True
        return float(min(MAX_BACKOFF_SECONDS, self.poll_seconds * 2 ** min(self.failures, 10)))

    def ok(self) -> float:
        """Record a look that worked; return the normal wait."""
        if self.reason is not None:
            logger.warning("%s: working again after %d failed looks", self.part, self.failures)
            self.reason, self.since, self.failures, self.alerted = None, None, 0, False
            self._write(OK, "")
        return self.poll_seconds

    def _write(self, state: str, reason: str) -> None:
        data = {
            "pid": os.getpid(),
            "started": self.started,
            "state": state,
            "reason": reason,
            "since": (self.since or self.clock()).isoformat(),
            "failures": self.failures,
        }
        try:
            private.write_text(self.path, json.dumps(data))
        except OSError as exc:
            logger.warning("%s: its status file %s could not be written: %s", self.part, self.path, error_line(exc))
