"""How long the jobping command takes when there is nothing to do, as a user runs it.

Each figure is one whole ``jobping`` process, measured from a warm machine: the embedded
emulator and the local Prefect server already run (the first commands started them), the
sample is already stored. Medians of several runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from standins.servers import free_port

JOBPING = str(Path(sys.executable).parent / "jobping")
COMMAND_TIMEOUT_SECONDS = 300
# the goals, in seconds
GOALS = {
    "jobping --help": 0.5,
    "jobping analyse (empty queue)": 3.0,
    "jobping scrape --source sample (nothing new)": 5.0,
}
COMMANDS = {
    "jobping --help": ["--help"],
    "jobping analyse (empty queue)": ["analyse"],
    "jobping scrape --source sample (nothing new)": ["scrape", "--source", "sample"],
}


@dataclass(frozen=True)
class Startup:
    runs: dict[str, list[float]]

    def median(self, what: str) -> float:
        return statistics.median(self.runs[what])


def _run(env: dict[str, str], args: list[str]) -> float:
    started = time.perf_counter()
    command = [JOBPING, *args]
    limit = COMMAND_TIMEOUT_SECONDS
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit, check=False)  # noqa: S603
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"jobping {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def measure_startup(base: Path, runs: int) -> Startup:
    """Warm up (emulator, Prefect server, the sample stored), then time each command ``runs`` times."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
    env |= {
        "JOBPING_DATA_DIR": str(base / "startup"),
        "JOBPING_EMULATOR_PORT": str(free_port()),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "PREFECT_HOME": str(base / "startup-prefect"),
    }
    try:
        _run(env, ["emulator", "start"])
        _run(env, ["scrape", "--source", "sample"])
        _run(env, ["analyse"])
        return Startup({what: [_run(env, args) for _ in range(runs)] for what, args in COMMANDS.items()})
    finally:
        down = [JOBPING, "stack", "down"]
        subprocess.run(down, env=env, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)  # noqa: S603


def startup_section(startup: Startup) -> list[str]:
    rows = [
        f"| {what} | {startup.median(what):.2f} | {', '.join(f'{v:.2f}' for v in startup.runs[what])} "
        f"| {GOALS[what]:g} |"
        for what in COMMANDS
    ]
    return [
        "## Start-up",
        "",
        "One whole `jobping` process each, on a warm machine: the embedded emulator and the local Prefect",
        "server already run (started by the first commands, not timed), the sample already stored.",
        "",
        "| command | seconds (median) | runs | goal |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
