"""DLQ tooling against a real moto server: listing with reasons, redriving, then storing."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from app.cli import app
from flows.analyse import analyse
from flows.dlq import dlq_redrive
from jobping.settings import Settings
from standins.servers import free_port
from storage.reader import reader
from tasks.sqs.dlq import NO_REASON, list_dead_letters, redrive
from tasks.sqs.queues import MAX_RECEIVE_COUNT, Queues, depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.usefixtures("prefect_api")


def posting(n: int) -> str:
    return json.dumps({"title": f"Data Engineer {n}", "job_url": f"https://jobs.example.com/{n}", "site": "indeed"})


def exhaust(sqs: SQSClient, queues: Queues, count: int) -> None:
    """Receive every message until SQS moves it to the DLQ, as after a long LLM outage."""
    for _ in range(MAX_RECEIVE_COUNT + 1):
        while sqs.receive_message(
            QueueUrl=queues.url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        ).get("Messages"):
            pass
    assert depth(sqs, queues.dlq_url).visible == count


@pytest.fixture
def mixed_dlq(sqs: SQSClient, queues: Queues) -> None:
    for n in range(5):
        sqs.send_message(QueueUrl=queues.url, MessageBody=posting(n))
    exhaust(sqs, queues, 5)
    sqs.send_message(QueueUrl=queues.url, MessageBody="not json")
    sqs.send_message(QueueUrl=queues.url, MessageBody=json.dumps({"title": "no url"}))
    assert asyncio.run(analyse()).dead_lettered == 2


@pytest.mark.usefixtures("mixed_dlq")
def test_the_dlq_lists_each_message_with_its_reason_title_and_receive_count(sqs: SQSClient, queues: Queues) -> None:
    letters = list_dead_letters(sqs, queues.dlq_url)
    reasons = sorted(letter.reason for letter in letters)
    assert len(letters) == 7
    assert reasons.count(NO_REASON) == 5
    assert any("not JSON" in r for r in reasons)
    assert any("job_url" in r for r in reasons)
    assert {letter.title for letter in letters} >= {f"Data Engineer {n}" for n in range(5)}
    assert all(letter.receive_count >= 1 for letter in letters)
    assert depth(sqs, queues.dlq_url).visible == 7  # listing leaves them in place


@pytest.mark.usefixtures("mixed_dlq")
def test_redrive_by_reason_moves_only_matching_messages_which_are_then_stored(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    report = redrive(sqs, queues.dlq_url, queues.url, reason="maxReceiveCount")
    assert (report.moved, report.kept, report.failed) == (5, 2, 0)
    assert depth(sqs, queues.dlq_url).visible == 2
    stored = asyncio.run(analyse())
    assert stored.stored == 5
    with reader(settings.lake_dir) as con:
        assert con.execute("SELECT count(*) FROM enriched_jobs").fetchall() == [(5,)]


@pytest.mark.usefixtures("mixed_dlq")
def test_redrive_with_a_limit_moves_at_most_that_many(sqs: SQSClient, queues: Queues) -> None:
    assert redrive(sqs, queues.dlq_url, queues.url, limit=3).moved == 3
    assert depth(sqs, queues.url).visible == 3
    assert depth(sqs, queues.dlq_url).visible == 4


@pytest.mark.usefixtures("mixed_dlq")
def test_the_redrive_flow_and_the_cli_move_everything_back(
    sqs: SQSClient, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the cli runs its flows on the Prefect API this process already has, and starts no server
    port = free_port()
    monkeypatch.setenv("JOBPING_PREFECT_PORT", str(port))
    listed = CliRunner().invoke(app, ["dlq", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "not JSON" in listed.output
    assert dlq_redrive(reason="job_url").moved == 1
    moved = CliRunner().invoke(app, ["dlq", "redrive"], env={"COLUMNS": "200"})
    assert moved.exit_code == 0, moved.output
    assert "moved 6 back" in moved.output
    assert "started a local Prefect server" not in moved.output
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert depth(sqs, queues.dlq_url).visible == 0
    assert depth(sqs, queues.url).visible == 7
