"""Run a command with its output copied, line by line, into a log file that rotates by size.

The stack's processes (emulator, Prefect server, worker, autoscaler) run for months: their
logs under ``data/run/`` must stay bounded. Rotating a file that another process holds open
(logrotate's copytruncate) loses the lines written between the copy and the truncation and
leaves the writer's offset past the new end; so the child writes into a pipe that we read,
and we rotate between two lines, never inside one.

``python -m jobping.logpipe --log <file> --max-bytes N --backups K -- <command...>`` is how
`jobping stack up` and the emulator start their processes; `jobping stack run` calls
:func:`run` in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from jobping import private

# a line longer than this is cut into pieces of this size: one line cannot hold the log over its bound
MAX_LINE_BYTES = 64 * 1024
# after the child exits, how long its output may still drain (a grandchild can hold the pipe open)
DRAIN_SECONDS = 5.0
# the signals that end a service: passed on to the child, which ends itself cleanly
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# a child killed by a signal exits as a shell would report it
SIGNAL_EXIT_BASE = 128


class RotatingLog:
    """A log file kept under ``max_bytes``, with at most ``backups`` older files beside it (.1 the newest).

    A write that would take the file past ``max_bytes`` first moves it to ``.1`` (``.1`` to ``.2``,
    and so on, the oldest dropped); so no file is ever over the bound unless a single line is.
    Every file is owner-only (0600 in a 0700 folder): a component may print what is the user's.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        if max_bytes < 1 or backups < 1:
            raise ValueError(f"max_bytes and backups must be positive, not {max_bytes} and {backups}")
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        # held open between writes, closed by close()
        self._file: BinaryIO = private.open_file(path)
        self._size = self._file.tell()
        self._lock = threading.Lock()

    def write(self, line: bytes) -> None:
        with self._lock:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._file.write(line)
            # flushed per line: a reader tailing the log (or a crash) sees every line we took
            self._file.flush()
            self._size += len(line)

    def _rotate(self) -> None:
        self._file.close()
        for number in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{number + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = private.open_file(self.path)
        self._size = 0

    def note(self, text: str) -> None:
        """A line of our own in the log, stamped, so that a reader sees when the child started and ended."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.write(f"{stamp} jobping: {text}\n".encode())

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _pump(stream: BinaryIO, log: RotatingLog) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in iter(lambda: stream.readline(MAX_LINE_BYTES), b""):
            log.write(line)


def run(
    args: Sequence[str],
    log: RotatingLog,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_start: Callable[[int], None] | None = None,
    stopped: threading.Event | None = None,
) -> int:
    """Run ``args`` until it exits, its output into ``log``; SIGTERM, SIGINT and SIGHUP are passed on.

    Returns the child's exit code (128 + the signal's number when a signal ended it); ``stopped``
    is set when one of those signals came. The child
    stays in our process group: whoever stops the group (`jobping stack down`, a terminal's
    ctrl-c) reaches it directly, and a supervisor that signals only us (systemd with
    KillMode=mixed, launchd) reaches it through us; a second SIGTERM is harmless to all four.
    """
    process = subprocess.Popen(  # noqa: S603 - the caller's own executables and fixed arguments
        list(args), cwd=cwd, env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    log.note(f"started {Path(args[0]).name} (pid {process.pid})")
    if on_start is not None:
        # the caller records the pid, e.g. for `jobping stack status`
        on_start(process.pid)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if stopped is not None:
            stopped.set()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    pump = threading.Thread(target=_pump, args=(process.stdout, log), name="logpipe", daemon=True)
    pump.start()
    try:
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    pump.join(DRAIN_SECONDS)
    code = SIGNAL_EXIT_BASE - code if code < 0 else code
    log.note(f"{Path(args[0]).name} (pid {process.pid}) exited with code {code}")
    return code


def command(log: Path, max_bytes: int, backups: int, args: Sequence[str]) -> list[str]:
    """The command line that runs ``args`` with its output into ``log``, rotated (see :func:`main`)."""
    pipe = [sys.executable, "-m", "jobping.logpipe", "--log", str(log), "--max-bytes", str(max_bytes)]
    return [*pipe, "--backups", str(backups), "--", *args]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobping.logpipe", description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="The log file; older ones become <log>.1 ...")
    parser.add_argument("--max-bytes", type=int, required=True, help="Rotate before the file passes this size.")
    parser.add_argument("--backups", type=int, required=True, help="Keep this many older files.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments.")
    given = parser.parse_args(argv)
    command = given.command[1:] if given.command[:1] == ["--"] else given.command
    if not command:
        parser.error("no command after --")
    log = RotatingLog(given.log, given.max_bytes, given.backups)
    try:
        return run(command, log)
    finally:
        log.close()


if __name__ == "__main__":
    sys.exit(main())
