"""Acceptance: a board that keeps failing brings one alert through the user's webhook, and one line when it answers.

Scrape runs go through JobSpy's real ``scrape_jobs`` with only its network scrapers answered offline
(tests/jobspy_boards.py), publish to the real moto queues, and record their boards in the scrape_runs
table; the alerts travel the path every jobping alert takes: a Prefect event, the automation
`jobping stack up` creates, Prefect's webhook block, and a real receiver process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jobspy
import pytest
from jobspy.model import Site

from app.alerts import ensure_alerts
from flows.scrape import scrape
from jobping.settings import NotifySettings, Settings
from standins.servers import free_port, received, webhook_receiver
from storage.lake import Lake
from storage.reader import read_board_health
from tasks.jobspy.search import ScrapeParameters
from tasks.notify.alerts import emit_alert
from tests import jobspy_boards
from tests.jobspy_boards import BlockedBoard
from tests.waiting import wait_until

# four scrape runs, each with a board retried once after SITE_RETRY_DELAY_SECONDS, on a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ALERT_DEADLINE_SECONDS = 60.0
TERM = "data engineer"
FAILING = "glassdoor"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    with webhook_receiver(tmp_path / "received.jsonl", free_port()) as url:
        yield url


@pytest.fixture
def alerting(receiver: str) -> Iterator[str]:
    """The alert automations pointed at the receiver, checked end to end with a test alert; removed after."""
    ensure_alerts(Settings(notify=NotifySettings(webhook_url=f"{receiver}/hook/T0001/token")))
    try:
        emit_alert("test", "jobping: a test alert", "the automation is in place")
        wait_until(lambda: alerts(receiver, "test"), timeout=ALERT_DEADLINE_SECONDS, what="the test alert")
        yield receiver
    finally:
        ensure_alerts(Settings(notify=NotifySettings()))


@pytest.fixture
def boards() -> Iterator[None]:
    saved = dict(jobspy.SCRAPER_MAPPING)
    jobspy_boards.install({Site.GLASSDOOR: BlockedBoard})
    yield
    jobspy.SCRAPER_MAPPING.clear()
    jobspy.SCRAPER_MAPPING.update(saved)


def alerts(url: str, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(record["body"]) for record in received(url)]
    return [body for body in bodies if body.get("kind") == "alert" and body.get("alert") == kind]


def scrape_once() -> None:
    scrape(ScrapeParameters(source="jobspy", sites=["indeed", FAILING], search_terms=[TERM]))  # type: ignore[arg-type]


@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_three_failing_runs_bring_one_alert_naming_the_board_and_an_answering_run_one_recovery_line(
    alerting: str, settings: Settings
) -> None:
    for _night in range(3):
        scrape_once()
    health = read_board_health(Lake.from_settings(settings))
    assert health is not None
    rows = {row[0]: dict(zip(health.columns, row, strict=True)) for row in health.rows}
    assert rows[FAILING]["streak"] == 3
    assert rows[FAILING]["last_status"] == "failed"
    assert "429 Too Many Requests" in rows[FAILING]["last_error"]
    assert rows["indeed"]["streak"] == 0

    (alert,) = wait_until(lambda: alerts(alerting, "board"), timeout=ALERT_DEADLINE_SECONDS, what="the board alert")
    assert FAILING in alert["title"]
    assert alert["details"]["board"] == FAILING
    assert alert["details"]["streak"] == 3
    assert "429 Too Many Requests" in alert["reason"]

    jobspy.SCRAPER_MAPPING[Site.GLASSDOOR] = jobspy_boards.BOARDS[Site.GLASSDOOR]
    scrape_once()
    (recovered,) = wait_until(
        lambda: alerts(alerting, "board-recovered"), timeout=ALERT_DEADLINE_SECONDS, what="the recovery line"
    )
    assert recovered["details"] == {"board": FAILING, "streak": 3}
    assert FAILING in recovered["title"]
    # the recovery was sent after the alert, so a second alert of the streak would have arrived by now
    assert len(alerts(alerting, "board")) == 1
    health = read_board_health(Lake.from_settings(settings))
    assert health is not None
    assert {row[0]: row[health.columns.index("streak")] for row in health.rows} == {FAILING: 0, "indeed": 0}
