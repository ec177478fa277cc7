"""The autoscaler survives what is away: one line per distinct problem, a back-off, a status stack status shows."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from app.health import ALERT_AFTER_SECONDS, FAILING, MAX_BACKOFF_SECONDS, OK, Health, PartStatus
from app.stack import _spawn
from app.stack_state import StackState
from jobping.processes import alive, stop_group
from jobping.settings import Settings
from standins.servers import free_port
from tests.waiting import wait_until

JOBPING = str(Path(sys.executable).parent / "jobping")
DEADLINE_SECONDS = 90.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_problem_is_logged_once_backed_off_and_alerted_once_when_it_lasts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, alerts = Clock(), []
    health = Health("autoscaler", tmp_path / "status.json", 2.0, alert=lambda *a: alerts.append(a), clock=clock)
    waits = []
    with caplog.at_level(logging.WARNING, logger="app.health"):
        for _ in range(12):
            waits.append(health.failed(ConnectionError("SQS at http://127.0.0.1:1 does not answer")))
            clock.now += timedelta(seconds=10)
    assert len([r for r in caplog.records if "does not answer" in r.getMessage()]) == 1
    assert waits == sorted(waits)
    assert waits[0] > 2.0
    assert waits[-1] == MAX_BACKOFF_SECONDS
    assert len(alerts) == 1
    assert "does not answer" in alerts[0][1]
    status = PartStatus.read(tmp_path / "status.json")
    assert status is not None
    assert (status.state, status.pid) == (FAILING, os.getpid())

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.health"):
        health.failed(PermissionError("the Prefect API refuses the password"))
        assert health.ok() == 2.0
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records][:1] == ["PermissionError"]
    status = PartStatus.read(tmp_path / "status.json")
    assert status is not None
    assert status.state == OK


def test_an_alert_that_could_not_be_sent_is_tried_again(tmp_path: Path) -> None:
    clock, tries = Clock(), []

    def alert(title: str, reason: str) -> None:
        tries.append(title)
        if len(tries) == 1:
            raise ConnectionError("the Prefect API is away too")

    health = Health("autoscaler", tmp_path / "status.json", 1.0, alert=alert, clock=clock)
    for _ in range(4):
        health.failed(TimeoutError("no answer"))
        clock.now += timedelta(seconds=ALERT_AFTER_SECONDS)
    assert len(tries) == 2


@pytest.mark.parametrize(
    "text",
    ['{"pid": "1", "state": "failing", "reason": "x", "since": "2026-12-06T02:00:00+00:00"}',
     '{"pid": 1, "state": "[red]owned[/red]", "reason": "x", "since": "2026-12-06T02:00:00+00:00"}',
     '{"pid": 999999999, "state": "failing", "reason": "x", "since": "2026-12-06T02:00:00+00:00"}',
     "[]", "not json", "x" * 10_000],
    ids=["pid-a-string", "state-unknown", "pid-gone", "a-list", "not-json", "oversized"],
)  # fmt: skip
def test_a_status_file_that_is_not_ours_is_ignored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "status.json"
    path.write_text(text, encoding="utf-8")
    assert PartStatus.read(path) is None


@pytest.fixture
def autoscaler(env: dict[str, str], prefect_api: None) -> Iterator[tuple[int, Settings]]:
    """`jobping autoscale`, started as `stack up` starts it, against an SQS endpoint where nothing answers."""
    values = os.environ | {
        "JOBPING_SQS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "JOBPING_SCALE_POLL_SECONDS": "0.2",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    settings = Settings()
    pid = _spawn("autoscaler", [JOBPING, "autoscale"], values, settings)
    state = StackState()
    state.record("autoscaler", pid)
    state.save(settings.run_dir / "stack.json")
    yield pid, settings
    stop_group(pid, 30)


def test_the_autoscaler_process_survives_an_away_queue_with_one_line_and_stack_status_says_failing(
    autoscaler: tuple[int, Settings],
) -> None:
    pid, settings = autoscaler
    path = settings.run_dir / "autoscaler.json"

    def failing() -> bool:
        assert alive(pid), "the autoscaler exited"
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return bool(data.get("state") == FAILING and data.get("failures", 0) >= 4)

    wait_until(failing, timeout=DEADLINE_SECONDS, what="a failing status after four failures", interval=0.2,
               seen=lambda: path.exists() and path.read_text(encoding="utf-8"))  # fmt: skip

    shown = subprocess.run([JOBPING, "stack", "status"], capture_output=True, text=True, timeout=120, check=False)
    row = next(line for line in shown.stdout.splitlines() if "autoscaler" in line)
    assert "failing" in row, shown.stdout

    stop_group(pid, 30)
    out = (settings.run_dir / "autoscaler.log").read_text(encoding="utf-8")
    assert out.count("Could not connect to the endpoint URL") == 1, out
    assert "Traceback" not in out, out
