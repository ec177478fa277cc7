"""The embedded SQS emulator: moto's server on 127.0.0.1, kept running between commands.

It keeps messages in memory only, so it is a development default: stopping it drops
whatever is still queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from jobping.errors import ConfigurationError
from jobping.processes import alive, stop_group
from jobping.settings import Settings

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 2.0
POLL_INTERVAL_SECONDS = 0.1
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


def _pid_file(settings: Settings) -> str:
    return str(settings.run_dir / "emulator.pid")


def _read_pid(settings: Settings) -> int | None:
    try:
        with open(_pid_file(settings), encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def answers(settings: Settings) -> bool:
    """True when something speaking HTTP listens at the emulator's address."""
    try:
        with urllib.request.urlopen(settings.emulator_url + "/moto-api/", timeout=PROBE_TIMEOUT_SECONDS):  # noqa: S310 - our own http url
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def status(settings: Settings) -> EmulatorStatus:
    return EmulatorStatus(url=settings.emulator_url, running=answers(settings), pid=_read_pid(settings))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) != 0


def ensure_running(settings: Settings) -> EmulatorStatus:
    """Reuse the emulator that answers at the configured address, or start one."""
    if answers(settings):
        return EmulatorStatus(url=settings.emulator_url, running=True, pid=_read_pid(settings))
    if not _port_free(settings.emulator_host, settings.emulator_port):
        raise ConfigurationError(
            f"port {settings.emulator_port} on {settings.emulator_host} is taken by something that is "
            "not an SQS emulator: set JOBPING_EMULATOR_PORT to a free port"
        )
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.run_dir / "emulator.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "moto.server", "-H", settings.emulator_host, "-p", str(settings.emulator_port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own session, so it outlives this command and ignores our ctrl-c
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers(settings):
        if process.poll() is not None:
            raise ConfigurationError(f"the SQS emulator exited with code {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            process.kill()
            raise ConfigurationError(
                f"the SQS emulator did not answer within {START_TIMEOUT_SECONDS:.0f} s; see {log_path}"
            )
        time.sleep(POLL_INTERVAL_SECONDS)
    with open(_pid_file(settings), "w", encoding="ascii") as handle:
        handle.write(str(process.pid))
    logger.warning(
        "started the embedded SQS emulator at %s (pid %d); %s", settings.emulator_url, process.pid, MEMORY_ONLY_WARNING
    )
    return EmulatorStatus(url=settings.emulator_url, running=True, pid=process.pid, started_here=True)


def stop(settings: Settings) -> bool:
    """Stop the emulator this data dir started; False when none of ours was running."""
    pid = _read_pid(settings)
    with contextlib.suppress(FileNotFoundError):
        os.remove(_pid_file(settings))
    if pid is None:
        return False
    stop_group(pid, STOP_TIMEOUT_SECONDS)
    return True
