"""Background processes that jobping starts in their own session and later stops by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.1
# linux: a new random id at every boot
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# /proc/<pid>/stat's field 22 (starttime, clock ticks since boot), counted from field 3, after the name
START_FIELD = 22 - 3
PS_SECONDS = 10.0


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); reap it if it is ours
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_group(pid: int, timeout_seconds: float) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it if it outlives the timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(POLL_SECONDS)


def command_line(pid: int) -> list[str] | None:
    """The arguments ``pid`` was started with, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
        raw = b""
    except OSError:
        return None
    if raw:
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    # no /proc (macOS): ps shows the arguments joined by spaces, enough to recognise ours
    done = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)  # noqa: S603, S607
    return done.stdout.split() or None


def _ps(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=PS_SECONDS, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return " ".join(done.stdout.split()) if done.returncode == 0 else ""


def boot_id() -> str:
    """This boot's id: Linux's random boot_id, else (macOS) the kernel's boot time."""
    try:
        return BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return _ps(["sysctl", "-n", "kern.boottime"]).partition("}")[0].strip("{ ").replace(" ", "")


def start_time(pid: int) -> str | None:
    """When ``pid`` started, as ``<boot id>/<start>``, which no later process of any boot shares; None if gone.

    Linux: the start in clock ticks since boot, field 22 of /proc/<pid>/stat; macOS: ps's
    ``lstart`` (to the second). A pid reused by another process, now or after a reboot, gives
    another value.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
        started = _ps(["ps", "-o", "lstart=", "-p", str(pid)])
        return f"{boot_id()}/{started}" if started else None
    except OSError:
        return None
    # the name (field 2) may hold spaces and parentheses: the fields after its last ")" are plain
    fields = stat.rpartition(")")[2].split()
    return f"{boot_id()}/{fields[START_FIELD]}" if len(fields) > START_FIELD else None


def started_at(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (to a clock tick, or a second on macOS); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        boot = next(
            line for line in Path("/proc/stat").read_text(encoding="ascii").splitlines() if line.startswith("btime")
        )
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
        started = _ps(["ps", "-o", "lstart=", "-p", str(pid)])
        try:
            return time.mktime(time.strptime(started, "%a %b %d %H:%M:%S %Y")) if started else None
        except ValueError:
            return None
    except (OSError, StopIteration):
        return None
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= START_FIELD:
        return None
    return int(boot.split()[1]) + int(fields[START_FIELD]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Started:
    """A process we started, as a state file records it: its pid and its :func:`start_time`."""

    pid: int
    at: str

    @classmethod
    def of(cls, pid: int) -> Started | None:
        """``pid`` as it is now (call it while the process cannot have been reaped: it is our child)."""
        at = start_time(pid)
        return cls(pid, at) if at else None

    @classmethod
    def recorded_before(cls, pid: int, written_at: float) -> Started | None:
        """``pid``, from a record an older jobping wrote without a start time at ``written_at`` (the file's
        mtime), if the process running now had started by then; None for a pid reused since, or after a reboot.
        """
        started = started_at(pid)
        # a clock tick of slack: the record is written just after the start it follows
        return cls.of(pid) if started is not None and started <= written_at + 1.0 else None

    def running(self) -> bool:
        """Whether this very process still runs: its pid is alive with the start time we recorded."""
        return self.pid > 0 and bool(self.at) and alive(self.pid) and start_time(self.pid) == self.at

    def before_this_boot(self) -> bool:
        """Whether it was recorded before the machine last started (every such pid is someone else's now)."""
        return self.at.partition("/")[0] != boot_id()
