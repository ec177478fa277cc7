"""Alerts on the real stack: a failed run and new dead letters reach a webhook receiver process.

`jobping stack up` with JOBPING_NOTIFY_WEBHOOK_URL set (a URL carrying a token, as Slack's do)
creates the Prefect automations; a run made to fail by an invalid profile, and messages put in
the DLQ, each bring one alert to the receiver within a minute, and the token is written nowhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import SyncPrefectClient
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from app.alerts import ALERT_AUTOMATION, RUN_AUTOMATION, WEBHOOK_BLOCK, ensure_alerts
from jobping.settings import NotifySettings, Settings
from jobping.text import one_line
from standins.servers import free_port, received, webhook_receiver
from tasks.notify.alerts import emit_alert
from tasks.sqs.client import EMULATOR_CREDENTIALS
from tests.waiting import wait_until

# a test's deadline, its share of the module's stack up included: measured up to 168 s a test and 207 s
# to start the stack, on a machine 40 to 70 processes deep for its 2 cores
TEST_TIMEOUT_SECONDS = 900

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]

JOBPING = str(Path(sys.executable).parent / "jobping")
EXAMPLE_PROFILE = Path(__file__).parent.parent / "jobping" / "profile.example.toml"
TOKEN = "XoXSECRETtoken"
# the promise: an alert within a minute of what went wrong
ALERT_DEADLINE_SECONDS = 60.0
# a deployment run: the worker polls every 2 s, then starts a process
RUN_DEADLINE_SECONDS = 240.0
STACK_UP_SECONDS = 300
POLL_SECONDS = 0.5


@dataclass
class Stack:
    env: dict[str, str]
    data: Path
    receiver: str
    up_output: str

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['JOBPING_PREFECT_PORT']}/api"

    @property
    def auth(self) -> str:
        return (self.data / "prefect" / "api-auth").read_text(encoding="ascii").strip()

    def pid(self, part: str) -> int:
        return int(json.loads((self.data / "run" / "stack.json").read_text(encoding="utf-8"))["pids"][part])

    def client(self) -> Any:
        return SyncPrefectClient(self.api, auth_string=self.auth)

    def alerts(self) -> list[dict[str, Any]]:
        bodies = [json.loads(record["body"]) for record in received(self.receiver)]
        return [body for body in bodies if body.get("kind") == "alert"]

    def wait_for_alert(self, wanted: Callable[[dict[str, Any]], bool], since: float) -> dict[str, Any]:
        """The first alert ``wanted`` accepts, waited for until a minute after ``since`` (monotonic)."""
        found = wait_until(
            lambda: [alert for alert in self.alerts() if wanted(alert)],
            timeout=max(0.0, since + ALERT_DEADLINE_SECONDS - time.monotonic()),
            what=f"such an alert within {ALERT_DEADLINE_SECONDS:.0f} s of its cause",
            interval=POLL_SECONDS,
            seen=self.alerts,
        )
        # a figure for the report, not a check: the deadline above is the promise
        print(f"alert {found[0]['alert']!r} {time.monotonic() - since:.1f} s after its cause")
        return found[0]

    def jobping(self, *args: str, **changed: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([JOBPING, *args], env=self.env | changed, capture_output=True, text=True,
                              timeout=STACK_UP_SECONDS, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        self.up_output += done.stdout + done.stderr
        return done


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("alerts")
    data = root / "data"
    profile = root / "profile.toml"
    shutil.copyfile(EXAMPLE_PROFILE, profile)
    port = free_port()
    # the receiver keeps what it gets outside the data dir: its paths hold the token on purpose
    with webhook_receiver(tmp_path_factory.mktemp("receiver") / "received.jsonl", port) as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
        env |= {
            "JOBPING_DATA_DIR": str(data),
            "JOBPING_PREFECT_PORT": str(free_port()),
            "JOBPING_EMULATOR_PORT": str(free_port()),
            "JOBPING_SCRAPE_SOURCE": "sample",
            "JOBPING_PROFILE_PATH": str(profile),
            "JOBPING_RECEIVE_WAIT_SECONDS": "1",
            "JOBPING_WORKER_QUERY_SECONDS": "2",
            "JOBPING_SCALE_POLL_SECONDS": "2",
            "JOBPING_NOTIFY_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook/T0001/{TOKEN}?key=abc",
        }
        started = Stack(env, data, receiver, "")
        try:
            up = started.jobping("stack", "up")
            assert "alerts (failed runs, a DLQ that fills) go to the webhook" in up.stdout, up.stdout
            yield started
        finally:
            down = subprocess.run([JOBPING, "stack", "down"], env=env, capture_output=True, text=True,
                                  timeout=120, check=False)  # fmt: skip
            assert down.returncode == 0, down.stderr


def test_a_failed_run_of_a_deployment_brings_one_alert_with_its_name_reason_and_link(stack: Stack) -> None:
    profile = Path(stack.env["JOBPING_PROFILE_PATH"])
    good = profile.read_text(encoding="utf-8")
    profile.write_text("this is = not [toml\n", encoding="utf-8")
    try:
        with temporary_settings({PREFECT_API_URL: stack.api, PREFECT_API_AUTH_STRING: stack.auth}):
            created = run_deployment("analyse/analyse", timeout=0)
        with stack.client() as client:

            def final() -> Any:
                found = client.read_flow_run(created.id)
                return found if found.state and found.state.is_final() else None

            run = wait_until(final, timeout=RUN_DEADLINE_SECONDS, what="the analyse run to end", interval=POLL_SECONDS,
                             seen=lambda: client.read_flow_run(created.id).state)  # fmt: skip
        ended = time.monotonic()
    finally:
        profile.write_text(good, encoding="utf-8")
    assert run.state.is_failed(), run.state
    assert "not valid TOML" in (run.state.message or "")

    alert = stack.wait_for_alert(lambda a: a["run"] == run.name, ended)
    print(f"the run alert was seen {(datetime.now(UTC) - run.state.timestamp).total_seconds():.1f} s after the failure")
    ui = stack.api.removesuffix("/api")
    assert alert["state"] == "Failed"
    assert alert["reason"] == one_line(run.state.message)
    assert alert["url"] == f"{ui}/runs/flow-run/{run.id}"
    assert alert["title"] == f"jobping: analyse run failed: {run.name}"
    assert alert["details"]["deployment"] == "analyse"

    # a test alert sent after it arrives after it: by then a second alert of the run would have too
    sent = time.monotonic()
    stack.jobping("notify", "--test-alert")
    stack.wait_for_alert(lambda a: a["alert"] == "test", sent)
    assert [a["run"] for a in stack.alerts()].count(run.name) == 1
    # the alerts went to the URL the user set, token and all
    paths = {record["path"] for record in received(stack.receiver)}
    assert paths == {f"/hook/T0001/{TOKEN}"}


def dlq_alerts(stack: Stack) -> list[dict[str, Any]]:
    return [alert for alert in stack.alerts() if alert["alert"] == "dlq"]


def test_dead_letters_bring_one_alert_and_none_again_after_a_restart(stack: Stack) -> None:
    stack.jobping("queues", "ensure")
    endpoint = f"http://127.0.0.1:{stack.env['JOBPING_EMULATOR_PORT']}"
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **EMULATOR_CREDENTIALS)
    dlq = next(url for url in sqs.list_queues()["QueueUrls"] if url.endswith("-dlq"))
    name = dlq.rsplit("/", 1)[-1]

    sent = time.monotonic()
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=f'{{"dead": {i}}}')
    first = stack.wait_for_alert(lambda a: a["alert"] == "dlq", sent)
    assert first["details"] == {"queue": name, "new": 3, "total": 3}
    assert "jobping dlq list" in first["hint"]
    assert name in first["title"]

    # `stack up` with another poll period restarts the autoscaler, and puts the automations again
    before = stack.pid("autoscaler")
    stack.jobping("stack", "up", JOBPING_SCALE_POLL_SECONDS="3")
    assert stack.pid("autoscaler") != before
    with stack.client() as client:
        assert len(client.read_automations_by_name(RUN_AUTOMATION)) == 1
        assert len(client.read_automations_by_name(ALERT_AUTOMATION)) == 1
    sent = time.monotonic()
    sqs.send_message(QueueUrl=dlq, MessageBody='{"dead": 3}')
    second = stack.wait_for_alert(lambda a: a["alert"] == "dlq" and a["details"]["total"] == 4, sent)
    assert second["details"] == {"queue": name, "new": 1, "total": 4}
    assert [a["details"]["new"] for a in dlq_alerts(stack)] == [3, 1]


def test_a_notification_block_gets_a_plain_subject_and_body_and_no_channel_removes_the_automations(
    stack: Stack,
) -> None:
    with temporary_settings({PREFECT_API_URL: stack.api, PREFECT_API_AUTH_STRING: stack.auth}):
        port = stack.receiver.rsplit(":", 1)[-1]
        CustomWebhookNotificationBlock(
            name="alerts", url=f"http://127.0.0.1:{port}/block", allow_private_urls=True,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
        ).save("alerts-test", overwrite=True)  # fmt: skip
        try:
            ensure_alerts(Settings(notify=NotifySettings(block="custom-webhook/alerts-test")))
            emit_alert("test", "jobping: through a block", "one line", hint="a hint")
            through = wait_until(
                lambda: [r for r in received(stack.receiver) if r["path"] == "/block"],
                timeout=ALERT_DEADLINE_SECONDS, what="an alert through the block", interval=POLL_SECONDS,
            )  # fmt: skip
            body = json.loads(through[0]["body"])
            assert body["subject"] == "jobping: through a block"
            assert body["body"].splitlines()[:2] == ["one line", "a hint"]

            ensure_alerts(Settings(notify=NotifySettings()))
            with stack.client() as client:
                assert client.read_automations_by_name(RUN_AUTOMATION) == []
                assert client.read_automations_by_name(ALERT_AUTOMATION) == []
                with pytest.raises(ObjectNotFound):
                    client.read_block_document_by_name(WEBHOOK_BLOCK, "webhook")
        finally:
            # back to the webhook the stack was started with
            stack.jobping("stack", "up")
    with stack.client() as client:
        assert len(client.read_automations_by_name(ALERT_AUTOMATION)) == 1


def test_the_webhook_s_token_is_in_no_file_under_the_data_dir_and_in_no_output(stack: Stack) -> None:
    assert TOKEN not in stack.up_output
    holding = [path for path in stack.data.rglob("*") if path.is_file() and TOKEN.encode() in path.read_bytes()]
    assert holding == []
    # checked after the alerts above went out, so whatever logs them had logged
    assert stack.alerts(), "no alert was sent, so nothing could have leaked"
