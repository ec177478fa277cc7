"""A pid in stack.json is signalled only when its command line proves it is the part this data dir started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.stack import StackState, _spawn, ours
from jobping.processes import alive, command_line, stop_group
from jobping.settings import Settings

JOBPING = str(Path(sys.executable).parent / "jobping")
EXEC_DEADLINE_SECONDS = 10.0


@pytest.fixture
def stranger() -> Iterator[int]:
    """A process nobody started for jobping: a stale or forged stack.json may name it."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process.pid
    process.kill()
    process.wait()


def test_stack_down_leaves_a_process_a_forged_stack_json_names_alone_and_says_so(
    settings: Settings, stranger: int
) -> None:
    StackState(pids={"server": stranger, "worker": stranger, "autoscaler": stranger}).save(
        settings.run_dir / "stack.json"
    )
    done = subprocess.run([JOBPING, "stack", "down"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert alive(stranger), "stack down signalled a process it did not start"
    assert done.stdout.count("left alone") == 3, done.stdout
    assert "nothing of ours was running" in done.stdout


def test_a_part_started_by_up_is_ours_for_its_data_dir_only(settings: Settings, tmp_path: Path) -> None:
    pid = _spawn("prefect-worker", ["sleep", "300"], dict(os.environ), settings)
    try:
        # the spawned process may still be between fork and exec for a moment: wait for its command line
        deadline = time.monotonic() + EXEC_DEADLINE_SECONDS
        while not ours("worker", pid, settings):
            assert time.monotonic() < deadline, command_line(pid)
            time.sleep(0.05)
        assert not ours("autoscaler", pid, settings)
        other = Settings(data_dir=tmp_path / "other")  # type: ignore[call-arg]
        assert not ours("worker", pid, other)
    finally:
        stop_group(pid, 10)
    assert not ours("worker", pid, settings)
