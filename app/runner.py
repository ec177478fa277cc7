"""`jobping stack run <component>`: one process of the stack in the foreground, as a service runs it.

A systemd unit or launchd agent starts this command, never the component itself, so that:
the Prefect server's password is read from ``data/prefect/api-auth`` at run time (no unit file
holds it); the component's output goes into a log under ``data/run`` that rotates; a
component that keeps failing is restarted later and later; and `jobping stack status` can
tell which components run as services. It writes ``data/run/services/<component>.json``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from app import prefect_server, stack
from jobping import logpipe, private
from jobping.errors import ConfigurationError
from jobping.processes import Started, command_line, start_time
from jobping.settings import Settings
from tasks.sqs import emulator

logger = logging.getLogger(__name__)

# a failed run shorter than this counts toward the back-off; a longer one resets it
FAST_EXIT_SECONDS = 60.0
# the wait before the next start after 1, 2, 3... fast failures doubles from this, up to the max:
# systemd 252 (Debian 12) has no RestartSteps and launchd only a fixed ThrottleInterval, so the
# growing part of the back-off is here, the same under both
BACKOFF_FIRST_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 300.0
# how long the worker and autoscaler wait for the server before failing (and being restarted)
SERVER_WAIT_SECONDS = 180.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Component:
    """One process of the stack, as `jobping stack run` names it."""

    name: str
    # its log is data/run/<log>.log, as `jobping stack up` has always named it
    log: str
    # as `jobping stack status` names it
    part: str
    description: str
    after_server: bool


COMPONENTS = (
    Component("emulator", "emulator", "SQS emulator", "the embedded SQS emulator (moto, messages in memory)", False),
    Component("server", "prefect-server", "Prefect server", "the Prefect server and UI", False),
    Component("worker", "prefect-worker", "Prefect worker", "the Prefect worker of the jobping pool", True),
    Component("autoscaler", "autoscaler", "autoscaler", "analyse runs kept in proportion to the queue", True),
)
NAMES = tuple(component.name for component in COMPONENTS)


def components(settings: Settings) -> list[Component]:
    """The components this configuration runs: the emulator only when no SQS endpoint is set."""
    return [c for c in COMPONENTS if c.name != "emulator" or settings.sqs.uses_emulator]


def component(name: str, settings: Settings) -> Component:
    for found in components(settings):
        if found.name == name:
            return found
    if name == "emulator":
        raise ConfigurationError("JOBPING_SQS_ENDPOINT_URL is set: there is no embedded emulator to run")
    raise ConfigurationError(f"no component {name!r}; one of {', '.join(NAMES)}")


def command(part: Component, settings: Settings) -> list[str]:
    match part.name:
        case "emulator":
            return emulator.server_command(settings)
        case "server":
            return stack.server_command(settings)
        case "worker":
            return stack.worker_command()
        case _:
            return stack.autoscaler_command()


def log_path(part: Component, settings: Settings) -> Path:
    return settings.run_dir / f"{part.log}.log"


def launchd_log_path(part: Component, settings: Settings) -> Path:
    """Where launchd writes the runner's own output (systemd: the journal)."""
    return settings.run_dir / f"{part.log}.launchd.log"


@dataclass
class Record:
    """What a runner says about its component: written at each change, read by status and the next start."""

    pid: int = 0
    child: int | None = None
    # waiting (backing off), running, exited
    state: str = "exited"
    manager: str = "foreground"
    failures: int = 0
    code: int | None = None
    since: float = 0.0
    # the runner's start time: its pid is the runner's only while it matches (pids are reused)
    started: str = ""

    def running(self, name: str) -> bool:
        """Whether the runner lives: the process with its pid and start time, still `jobping stack run <name>`."""
        if self.state == "exited" or not Started(self.pid, self.started).running():
            return False
        args = command_line(self.pid) or []
        return "run" in args and name in args


def record_path(name: str, settings: Settings) -> Path:
    return settings.run_dir / "services" / f"{name}.json"


def read_record(name: str, settings: Settings) -> Record:
    try:
        data = json.loads(record_path(name, settings).read_text(encoding="utf-8"))
        return Record(**{k: v for k, v in data.items() if k in Record.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return Record()


def _write(record: Record, name: str, settings: Settings) -> None:
    # run/ first: mkdir would make it as a parent with the default mode, open to others
    private.folder(settings.run_dir)
    private.write_text(record_path(name, settings), json.dumps(asdict(record)))


def _manager() -> str:
    # what started us, from the variables each sets in its services' environment
    if "INVOCATION_ID" in os.environ:
        return "systemd"
    if "XPC_SERVICE_NAME" in os.environ:
        return "launchd"
    return "foreground"


def backoff_seconds(failures: int) -> float:
    """The wait before a start that follows ``failures`` fast failures in a row."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_FIRST_SECONDS * 2.0 ** (failures - 1), BACKOFF_MAX_SECONDS)


def _wait_for_server(settings: Settings, stop: threading.Event, log: logpipe.RotatingLog) -> bool:
    deadline = time.monotonic() + SERVER_WAIT_SECONDS
    if not prefect_server.healthy(settings):
        log.note(f"waiting for the Prefect server at {prefect_server.api_url(settings)}")
    while not prefect_server.healthy(settings):
        if time.monotonic() > deadline:
            log.note(f"the Prefect server did not answer within {SERVER_WAIT_SECONDS:.0f} s")
            return False
        if stop.wait(POLL_SECONDS):
            return False
    return True


def run(name: str, settings: Settings) -> int:
    """Run one component in the foreground until it exits or we are told to stop; its exit code."""
    part = component(name, settings)
    # launchd made it with its own umask: the runner's lines are the user's alone too
    private.tighten(launchd_log_path(part, settings))
    previous = read_record(name, settings)
    if previous.running(name) and previous.pid != os.getpid():
        raise ConfigurationError(f"the {part.part} already runs under `jobping stack run` (pid {previous.pid})")
    record = Record(pid=os.getpid(), state="waiting", manager=_manager(), failures=previous.failures, since=time.time(),
                    started=start_time(os.getpid()) or "")  # fmt: skip
    _write(record, name, settings)
    stop = threading.Event()

    def stopping(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in logpipe.FORWARDED:
        signal.signal(signum, stopping)
    log = logpipe.RotatingLog(log_path(part, settings), settings.stack.log_max_bytes, settings.stack.log_backups)
    try:
        delay = backoff_seconds(record.failures)
        if delay:
            log.note(f"{record.failures} fast failures in a row: starting the {part.part} in {delay:.0f} s")
        if stop.wait(delay) or (part.after_server and not _wait_for_server(settings, stop, log)):
            return 0 if stop.is_set() else 1
        # built now, not at install: the password is read from its owner-only file at each start
        env = stack.prefect_env(settings)

        def started(pid: int) -> None:
            record.child, record.state, record.since = pid, "running", time.time()
            _write(record, name, settings)

        began = time.monotonic()
        code = logpipe.run(command(part, settings), log, env=env, cwd=stack.PROJECT_ROOT, on_start=started,
                           stopped=stop)  # fmt: skip
        fast = time.monotonic() - began < FAST_EXIT_SECONDS
        record.code = code
        record.failures = record.failures + 1 if code and fast and not stop.is_set() else 0
        return 0 if stop.is_set() else code
    finally:
        record.state, record.child, record.since = "exited", None, time.time()
        _write(record, name, settings)
        log.close()
