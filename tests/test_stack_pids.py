"""A pid from a file is signalled only when its command line and its start time prove it is the part we started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.health import PartStatus
from app.runner import Record
from app.stack import _spawn
from app.stack_state import LOGS, StackState, forget_stale, ours
from jobping import logpipe
from jobping.processes import alive, boot_id, command_line, start_time, stop_group
from jobping.settings import Settings
from standins.servers import free_port
from tests.waiting import wait_until

JOBPING = str(Path(sys.executable).parent / "jobping")
EXEC_DEADLINE_SECONDS = 10.0
COMMAND_SECONDS = 120
POLL_SECONDS = 0.05
PARTS = ("server", "worker", "autoscaler")
# a python process that lives until it is killed: it waits for its stdin, a pipe the test holds open
LIVES_UNTIL_KILLED = "import sys; sys.stdin.read()"


def _wait_for_exec(pid: int, looks_like: str) -> None:
    """A just-spawned process may still be between fork and exec: wait for its command line."""
    wait_until(lambda: any(looks_like in arg for arg in command_line(pid) or []), timeout=EXEC_DEADLINE_SECONDS,
               what=f"pid {pid}'s command line with {looks_like!r}", interval=POLL_SECONDS,
               seen=lambda: command_line(pid))  # fmt: skip


@pytest.fixture
def stranger() -> Iterator[int]:
    """A process nobody started for jobping: a stale or forged stack.json may name it."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def mimics(settings: Settings) -> Iterator[dict[str, int]]:
    """For each part, a live process started by someone else with the very argv `up` gives that part.

    It runs our log pipe writing this data dir's log of the part, as a part `up` started would;
    only its start time is not one we recorded.
    """
    started = {}
    for part in PARTS:
        argv = logpipe.command(settings.run_dir / f"{LOGS[part]}.log", settings.stack.log_max_bytes,
                               settings.stack.log_backups, ["sleep", "300"])  # fmt: skip
        started[part] = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    for process in started.values():
        _wait_for_exec(process.pid, "jobping.logpipe")
    yield {part: process.pid for part, process in started.items()}
    for process in started.values():
        stop_group(process.pid, 10)
        process.wait()


def forged(pids: dict[str, int], started: dict[str, str], settings: Settings) -> None:
    path = settings.run_dir / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pids": pids, "started": started}), encoding="utf-8")


def test_stack_down_leaves_a_process_a_forged_stack_json_names_alone_and_says_so(
    settings: Settings, stranger: int
) -> None:
    StackState(pids={"server": stranger, "worker": stranger, "autoscaler": stranger}).save(
        settings.run_dir / "stack.json"
    )
    done = subprocess.run([JOBPING, "stack", "down"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert alive(stranger), "stack down signalled a process it did not start"
    assert done.stdout.count("is not the process we started") == 3, done.stdout
    assert "nothing of ours was running" in done.stdout


def test_stack_down_spares_a_process_with_our_command_line_but_a_start_time_we_did_not_record(
    settings: Settings, mimics: dict[str, int]
) -> None:
    # the pids and command lines are right; the start time is one no process of this boot has
    forged(mimics, {part: f"{boot_id()}/1" for part in mimics}, settings)
    assert not any(ours(part, StackState.load(settings.run_dir / "stack.json"), settings) for part in mimics)
    done = subprocess.run([JOBPING, "stack", "down"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [part for part, pid in mimics.items() if not alive(pid)] == []
    for part, pid in mimics.items():
        assert f"stale: {part} pid {pid} is not the process we started (it started at another time); ignored" in (
            done.stdout
        ), done.stdout
    assert "nothing of ours was running" in done.stdout


def test_after_a_reboot_every_recorded_pid_is_stale_said_once_and_never_signalled(settings: Settings) -> None:
    # parts `up` really started, recorded with their real start times, then the file says another boot
    state = StackState()
    for part in PARTS:
        state.record(part, _spawn(LOGS[part], ["sleep", "300"], dict(os.environ), settings))
    try:
        for part in PARTS:
            _wait_for_exec(state.pids[part], "jobping.logpipe")
        assert all(ours(part, state, settings) for part in PARTS)
        other_boot = str(uuid.uuid4())
        state.started = {part: other_boot + "/" + at.partition("/")[2] for part, at in state.started.items()}
        state.save(settings.run_dir / "stack.json")

        done = subprocess.run([JOBPING, "stack", "down"], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert [part for part in PARTS if not alive(state.pids[part])] == []
        assert done.stdout.count("(it was recorded before the last reboot); ignored") == len(PARTS), done.stdout

        # said once: the file is rewritten without them, so the next command has nothing to say
        state.save(settings.run_dir / "stack.json")
        assert len(forget_stale(settings)) == len(PARTS)
        assert StackState.load(settings.run_dir / "stack.json").pids == {}
        assert forget_stale(settings) == []
    finally:
        for pid in state.pids.values():
            stop_group(pid, 10)


def test_a_part_started_by_up_is_ours_for_its_data_dir_only(settings: Settings, tmp_path: Path) -> None:
    state = StackState()
    state.record("worker", _spawn("prefect-worker", ["sleep", "300"], dict(os.environ), settings))
    pid = state.pids["worker"]
    try:
        _wait_for_exec(pid, "jobping.logpipe")
        assert ours("worker", state, settings)
        assert not ours("autoscaler", state, settings)
        other = Settings(data_dir=tmp_path / "other")  # type: ignore[call-arg]
        assert not ours("worker", state, other)
    finally:
        stop_group(pid, 10)
    assert not ours("worker", state, settings)


@pytest.mark.parametrize(
    "start", [None, "1"], ids=["pid-only-written-before-the-process-started", "a-start-time-we-did-not-record"]
)
def test_emulator_stop_spares_a_process_with_moto_s_command_line_that_it_did_not_start(
    settings: Settings, start: str | None
) -> None:
    port = free_port()
    # moto's server as `jobping emulator start` runs it, by its arguments; started by someone else
    argv = [sys.executable, "-c", LIVES_UNTIL_KILLED, "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    mimic = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_exec(mimic.pid, "moto.server")
        env = {k: v for k, v in os.environ.items() if k != "JOBPING_SQS_ENDPOINT_URL"}
        env["JOBPING_EMULATOR_PORT"] = str(port)
        pid_file = settings.run_dir / f"emulator-{port}.pid"
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(mimic.pid) if start is None else f"{mimic.pid} {boot_id()}/{start}", encoding="ascii")
        # as an older jobping wrote it, for a process that held the pid before this one did
        written = time.time() - 60
        os.utime(pid_file, (written, written))
        done = subprocess.run([JOBPING, "emulator", "stop"], env=env, capture_output=True, text=True,
                              timeout=COMMAND_SECONDS, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert mimic.poll() is None, "emulator stop signalled a process it did not start"
        assert "no emulator of ours was running" in done.stdout, done.stdout
    finally:
        mimic.kill()
        mimic.wait()


def test_a_status_file_naming_a_live_pid_with_another_start_time_is_not_the_autoscaler_s(
    tmp_path: Path, stranger: int
) -> None:
    path = tmp_path / "autoscaler.json"
    status = {"pid": stranger, "state": "failing", "reason": "forged", "since": "2026-12-06T02:00:00+00:00"}
    path.write_text(json.dumps(status | {"started": f"{boot_id()}/1"}), encoding="utf-8")
    assert PartStatus.read(path) is None
    # the same file with the process's own start time is read
    path.write_text(json.dumps(status | {"started": start_time(stranger)}), encoding="utf-8")
    assert PartStatus.read(path) is not None


def test_a_runner_record_naming_a_process_with_its_command_line_but_another_start_time_is_not_running(
    tmp_path: Path,
) -> None:
    # `jobping stack run worker` by its arguments, started by someone else
    argv = [sys.executable, "-c", LIVES_UNTIL_KILLED, "stack", "run", "worker"]
    mimic = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_exec(mimic.pid, "stack")
        assert not Record(pid=mimic.pid, state="running", started=f"{boot_id()}/1").running("worker")
        assert Record(pid=mimic.pid, state="running", started=start_time(mimic.pid) or "").running("worker")
    finally:
        mimic.kill()
        mimic.wait()


# a `stack up` and `stack down` (stack up measured 145 s in test_stack_e2e on a loaded machine)
@pytest.mark.timeout(600)
@pytest.mark.slow
def test_stack_up_spares_processes_with_our_command_lines_that_it_did_not_start(
    settings: Settings, env: dict[str, str], mimics: dict[str, int]
) -> None:
    forged(mimics, {part: f"{boot_id()}/1" for part in mimics}, settings)
    shell = os.environ | {"JOBPING_PREFECT_PORT": str(free_port())}
    try:
        up = subprocess.run([JOBPING, "stack", "up"], env=shell, capture_output=True, text=True, timeout=300,
                            check=False)  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        assert [part for part, pid in mimics.items() if not alive(pid)] == []
        for part, pid in mimics.items():
            assert f"stale: {part} pid {pid} is not the process we started" in up.stdout, up.stdout
        state = StackState.load(settings.run_dir / "stack.json")
        assert all(state.pids[part] != mimics[part] and ours(part, state, settings) for part in PARTS), state
    finally:
        down = subprocess.run([JOBPING, "stack", "down"], env=shell, capture_output=True, text=True,
                              timeout=COMMAND_SECONDS, check=False)  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped: autoscaler, worker, server" in down.stdout
    assert [part for part, pid in mimics.items() if not alive(pid)] == []


# `stack down` of three processes: measured 58 s on a machine 40 to 70 processes deep for its 2 cores
@pytest.mark.timeout(300)
@pytest.mark.parametrize("before", [True, False], ids=["written-after-they-started", "written-before-they-started"])
def test_a_stack_json_an_older_jobping_wrote_without_start_times_is_ours_only_if_written_after_they_started(
    settings: Settings, mimics: dict[str, int], before: bool
) -> None:
    # an older jobping's stack.json: pids alone, written once every part had started (or, for pids
    # reused since, before the processes holding them now started)
    forged(mimics, {}, settings)
    if not before:
        written = time.time() - 3600
        os.utime(settings.run_dir / "stack.json", (written, written))
    done = subprocess.run([JOBPING, "stack", "down"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    if before:
        assert [part for part, pid in mimics.items() if alive(pid)] == [], done.stdout
        assert "stale" not in done.stdout
    else:
        assert [part for part, pid in mimics.items() if not alive(pid)] == []
        assert done.stdout.count("(no start time was recorded for it); ignored") == len(mimics), done.stdout
