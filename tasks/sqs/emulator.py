"""The embedded SQS emulator: moto's server on 127.0.0.1, kept running between commands.

It keeps messages in memory only, so it is a development default: stopping it drops
whatever is still queued.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jobping import logpipe, private
from jobping.errors import ConfigurationError
from jobping.processes import Started, alive, command_line, stop_group
from jobping.settings import Settings

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 2.0
POLL_INTERVAL_SECONDS = 0.1
# moto's server answers this with its configuration as JSON: how we know an emulator from any web
# server. Not /moto-api/data.json: that dumps every queue's messages, so a deep queue on a loaded
# machine outlasted the probe and a live emulator was taken for a stranger on its port
MOTO_CONFIG_PATH = "/moto-api/config"
MEMORY_ONLY_WARNING = (
    "the embedded SQS emulator keeps messages in memory only: stopping it drops what is "
    "still queued (set JOBPING_SQS_ENDPOINT_URL for a durable queue)"
)


@dataclass(frozen=True)
class EmulatorStatus:
    url: str
    running: bool
    pid: int | None
    started_here: bool = False


def _pid_file(settings: Settings) -> Path:
    # one file per port: a second emulator on another port is a different emulator
    return settings.run_dir / f"emulator-{settings.sqs.emulator_port}.pid"


def is_our_emulator(pid: int, settings: Settings) -> bool:
    """True when ``pid`` is alive and is moto's server started for this host and port."""
    args = command_line(pid) if alive(pid) else None
    if not args or "moto.server" not in args:
        return False
    pairs = dict(itertools.pairwise(args))
    return pairs.get("-p") == str(settings.sqs.emulator_port) and pairs.get("-H") == settings.sqs.emulator_host


def _read_pid(settings: Settings) -> int | None:
    """The pid of the emulator this data dir started on the configured port, if that very process still runs.

    The file holds the pid and its start time: a pid reused since (or after a reboot) is not ours.
    """
    try:
        path = _pid_file(settings)
        pid, _, started = path.read_text(encoding="ascii").strip().partition(" ")
        recorded = Started(int(pid), started)
        if not started:
            # an older jobping wrote the pid alone: its process had started before the file was written
            recorded = Started.recorded_before(int(pid), path.stat().st_mtime) or recorded
    except (OSError, ValueError):
        return None
    return recorded.pid if recorded.running() and is_our_emulator(recorded.pid, settings) else None


def answers(settings: Settings) -> bool:
    """True when an SQS emulator (moto's server) answers at the configured address."""
    try:
        url = settings.sqs.emulator_url + MOTO_CONFIG_PATH
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as reply:  # noqa: S310 - our own http url
            # moto answers its config with 201
            return reply.status in (200, 201) and isinstance(json.loads(reply.read() or b"null"), dict)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_taken(settings: Settings) -> bool:
    return not _port_free(settings.sqs.emulator_host, settings.sqs.emulator_port)


def status(settings: Settings) -> EmulatorStatus:
    return EmulatorStatus(url=settings.sqs.emulator_url, running=answers(settings), pid=_read_pid(settings))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) != 0


def server_command(settings: Settings) -> list[str]:
    """moto's server on the configured host and port, in the foreground."""
    host, port = settings.sqs.emulator_host, str(settings.sqs.emulator_port)
    return [sys.executable, "-m", "moto.server", "-H", host, "-p", port]


def ensure_running(settings: Settings) -> EmulatorStatus:
    """Reuse the emulator that answers at the configured address, or start one.

    Processes that find it away at the same moment (the autoscaler and a night's scrape, say)
    start it one at a time: the second finds the first's answering.
    """
    if answers(settings):
        return EmulatorStatus(url=settings.sqs.emulator_url, running=True, pid=_read_pid(settings))
    with private.open_file(settings.run_dir / f"emulator-{settings.sqs.emulator_port}.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _start(settings)


def _start(settings: Settings) -> EmulatorStatus:
    if answers(settings):
        return EmulatorStatus(url=settings.sqs.emulator_url, running=True, pid=_read_pid(settings))
    if not _port_free(settings.sqs.emulator_host, settings.sqs.emulator_port):
        if (ours := _read_pid(settings)) is not None:
            # the emulator this data dir started, too busy to answer the probe in time: wait for it
            return _answering(settings, ours)
        raise ConfigurationError(
            f"port {settings.sqs.emulator_port} on {settings.sqs.emulator_host} is taken by something that is "
            "not an SQS emulator: set JOBPING_EMULATOR_PORT to a free port"
        )
    private.folder(settings.run_dir)
    log_path = settings.run_dir / "emulator.log"
    # through the log pipe, whose command line still names moto.server, host and port (is_our_emulator)
    piped = logpipe.command(
        log_path, settings.stack.log_max_bytes, settings.stack.log_backups, server_command(settings)
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        piped,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # its own session, so it outlives this command and ignores our ctrl-c
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers(settings):
        if process.poll() is not None:
            raise ConfigurationError(f"the SQS emulator exited with code {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            # the pipe and moto behind it
            stop_group(process.pid, STOP_TIMEOUT_SECONDS)
            raise ConfigurationError(
                f"the SQS emulator did not answer within {START_TIMEOUT_SECONDS:.0f} s; see {log_path}"
            )
        time.sleep(POLL_INTERVAL_SECONDS)
    # our child, not yet reaped: its start time is its own
    started = Started.of(process.pid)
    private.write_text(_pid_file(settings), f"{process.pid} {started.at if started else ''}")
    logger.warning(
        "started the embedded SQS emulator at %s (pid %d); %s",
        settings.sqs.emulator_url,
        process.pid,
        MEMORY_ONLY_WARNING,
    )
    return EmulatorStatus(url=settings.sqs.emulator_url, running=True, pid=process.pid, started_here=True)


def _answering(settings: Settings, pid: int) -> EmulatorStatus:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers(settings):
        if not is_our_emulator(pid, settings):
            raise ConfigurationError(f"the SQS emulator (pid {pid}) exited; see {settings.run_dir / 'emulator.log'}")
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"the SQS emulator (pid {pid}) holds port {settings.sqs.emulator_port} but did not answer within "
                f"{START_TIMEOUT_SECONDS:.0f} s; `jobping emulator stop` stops it"
            )
        time.sleep(POLL_INTERVAL_SECONDS)
    return EmulatorStatus(url=settings.sqs.emulator_url, running=True, pid=pid)


def stop(settings: Settings) -> bool:
    """Stop the emulator this data dir started on the configured port; False when none of ours runs.

    The pid is signalled only when that process is moto's server on this port: a pid file
    left behind by a crash may name an unrelated process by now.
    """
    pid = _read_pid(settings)
    with contextlib.suppress(FileNotFoundError):
        _pid_file(settings).unlink()
    if pid is None:
        return False
    stop_group(pid, STOP_TIMEOUT_SECONDS)
    return True
