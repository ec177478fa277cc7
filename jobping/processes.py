"""Background processes that jobping starts in their own session and later stops by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

POLL_SECONDS = 0.1


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
