"""What the jobping command tells a new user is true: warnings, one-line errors, honest help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from standins.servers import free_port

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    from tasks.sqs.queues import Queues

JOBPING = shutil.which("jobping", path=str(Path(sys.executable).parent)) or "jobping"
COMMAND_TIMEOUT_SECONDS = 120
SECRET_VALUE = "sk-misspelt-" + "5ecret" * 4


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBPING, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )  # fmt: skip


@pytest.fixture
def user_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user's environment with its own data dir and ports; what its commands started is stopped after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
    env |= {
        "JOBPING_DATA_DIR": str(tmp_path / "data"),
        "JOBPING_EMULATOR_PORT": str(free_port()),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": "200",
    }
    yield env
    run(env, "stack", "down")


def warnings_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("warning:")]


def test_a_misspelt_variable_in_the_environment_or_dotenv_is_one_warning_naming_the_one_meant(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"JOBPING_QUEUE_NAM={SECRET_VALUE}\n", encoding="utf-8")
    done = run(user_env | {"JOBPING_SCRAPE_SOURSE": SECRET_VALUE, "JOBPING_SAVE_SCREENSHOTS": "1"}, "queues",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert warnings_of(done) == [
        "warning: JOBPING_SCRAPE_SOURSE (set in the environment) is not a jobping setting and is ignored: "
        "did you mean JOBPING_SCRAPE_SOURCE?",
        "warning: JOBPING_QUEUE_NAM (set in .env) is not a jobping setting and is ignored: "
        "did you mean JOBPING_QUEUE_NAME?",
    ]
    assert SECRET_VALUE not in done.stdout + done.stderr
    # spelt right, nothing is said
    assert warnings_of(run(user_env | {"JOBPING_SCRAPE_SOURCE": "sample"}, "queues")) == []


def test_an_invalid_profile_is_one_error_line_naming_the_field_and_value_without_pydantic_s_text(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text('remote = "sometimes"\n', encoding="utf-8")
    done = run(user_env | {"JOBPING_PROFILE_PATH": str(profile)}, "analyse")
    assert done.returncode == 1
    assert done.stderr == f'error: {profile}: remote = "sometimes" is not one of remote_only, remote_or_hybrid, any\n'


def test_notify_dry_run_refuses_a_block_that_is_missing_or_no_notification_block_in_one_line(
    user_env: dict[str, str],
) -> None:
    missing = run(user_env | {"JOBPING_NOTIFY_BLOCK": "custom-webhook/nobody"}, "notify", "--dry-run")
    assert missing.returncode == 1
    # the first command started the local server: the line about it, then the error
    said = missing.stderr.splitlines()
    (error,) = [line for line in said if not line.startswith("started a local") and "EventsWorker" not in line]
    assert error.startswith("error: the notification block 'custom-webhook/nobody' could not be loaded: "), error

    data = Path(user_env["JOBPING_DATA_DIR"])
    api = f"http://127.0.0.1:{user_env['JOBPING_PREFECT_PORT']}/api"
    auth = (data / "prefect" / "api-auth").read_text(encoding="ascii").strip()
    with temporary_settings({PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}):
        Secret(value=SECRET_VALUE).save("not-a-notifier", overwrite=True)
        CustomWebhookNotificationBlock(name="jobping", url="http://127.0.0.1:9/hook").save("pings", overwrite=True)
    cases = {
        "secret/not-a-notifier": "error: the block 'secret/not-a-notifier' is a Secret, not a notification block",
        "no-such-type/pings": "error: the notification block 'no-such-type/pings' could not be loaded: ",
        "pings": "error: JOBPING_NOTIFY_BLOCK='pings' names no block type: ",
    }
    for block, says in cases.items():
        done = run(user_env | {"JOBPING_NOTIFY_BLOCK": block}, "notify", "--dry-run")
        assert done.returncode == 1, (block, done.stdout, done.stderr)
        # prefect's events worker may add a line of its own at exit, about the block's "loaded" event
        (error,) = [line for line in done.stderr.splitlines() if "EventsWorker" not in line]
        assert error.startswith(says), (block, done.stderr)
        assert SECRET_VALUE not in done.stdout + done.stderr
    there = run(user_env | {"JOBPING_NOTIFY_BLOCK": "custom-webhook/pings"}, "notify", "--dry-run")
    assert there.returncode == 0, there.stderr
    assert "error" not in there.stderr
    assert there.stdout.startswith("no new matches to send"), there.stdout


def depths(sqs: SQSClient, url: str) -> tuple[int, int]:
    names: list[QueueAttributeNameType] = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(found[names[0]]), int(found[names[1]])


def test_dlq_list_is_a_receive_that_raises_the_receive_count_and_leaves_the_message_visible(
    env: dict[str, str], sqs: SQSClient, queues: Queues
) -> None:
    sqs.send_message(QueueUrl=queues.dlq_url, MessageBody=json.dumps({"title": "Data Engineer", "site": "indeed"}))
    user = dict(os.environ) | {"COLUMNS": "200"}
    for listing in (1, 2):
        done = run(user, "dlq", "list")
        assert done.returncode == 0, done.stderr
        (row,) = [line for line in done.stdout.splitlines() if "Data Engineer" in line]
        # the receives column counts this listing's receive too
        assert [cell.strip() for cell in row.split("│")][2] == str(listing), row
        assert depths(sqs, queues.dlq_url) == (1, 0)
    (message,) = sqs.receive_message(
        QueueUrl=queues.dlq_url, MessageSystemAttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=0
    )["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "3"
    # a dlq of its own: however often it is listed, no count moves a message on
    assert (
        "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=queues.dlq_url, AttributeNames=["All"])["Attributes"]
    )
    shown = run(user, "dlq", "list", "--help")
    assert "SQS has no peek: listing is a receive." in " ".join(shown.stdout.split())
