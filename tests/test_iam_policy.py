"""docs/iam-policy.json grants every SQS call the code makes, and nothing beyond SQS."""

from __future__ import annotations

import asyncio
import json
import json as jsonlib
import re
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from app.cli.sqs import dlq_list
from flows.analyse import analyse
from flows.dlq import dlq_redrive
from flows.scrape import scrape
from jobping.settings import Settings
from tasks.jobspy.search import ScrapeParameters
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queues import ensure_queues, find_queues

ROOT = Path(__file__).parent.parent
POLICY = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
# boto3 method names the code calls on an sqs client, mapped to their IAM actions
CALL = re.compile(r"sqs\.(\w+)\(")
BATCH_SUFFIX = "_batch"


def iam_action(method: str) -> str:
    base = method.removesuffix(BATCH_SUFFIX)
    return "sqs:" + "".join(part.capitalize() for part in base.split("_"))


def granted() -> set[str]:
    return {
        action
        for role in ("producer", "consumer", "admin")
        for statement in POLICY[role]["Statement"]
        for action in statement["Action"]
    }


def test_every_sqs_call_in_the_code_is_granted_by_some_role() -> None:
    called = {
        iam_action(method)
        for folder in ("tasks", "flows", "jobping", "storage")
        for path in (ROOT / folder).rglob("*.py")
        for method in CALL.findall(path.read_text())
    }
    assert called, "found no sqs calls: the pattern is wrong"
    assert called <= granted(), sorted(called - granted())


def test_no_role_has_wildcards_or_anything_but_sqs() -> None:
    for action in granted():
        assert action.startswith("sqs:")
        assert "*" not in action


def role_actions(role: str) -> set[str]:
    return {action for statement in POLICY[role]["Statement"] for action in statement["Action"]}


class CallRecorder:
    """Every SQS operation boto3's default session sends, as its IAM action."""

    def __init__(self) -> None:
        self.actions: set[str] = set()

    def __call__(self, model: object, **_: object) -> None:
        name = str(getattr(model, "name", "?"))
        self.actions.add("sqs:" + name.removesuffix("Batch"))


@pytest.mark.usefixtures("prefect_api")
def test_each_documented_role_can_make_every_call_of_its_commands(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None

    def calls_of(work: Callable[[], object]) -> set[str]:
        recorder = CallRecorder()
        session.events.register("before-call.sqs", recorder)
        try:
            work()
        finally:
            session.events.unregister("before-call.sqs", recorder)
        return recorder.actions

    current = Settings()
    admin = calls_of(lambda: ensure_queues(make_sqs_client(current), current.sqs))
    producer = calls_of(lambda: scrape(ScrapeParameters(source="sample", sites=["google"])))
    sqs = make_sqs_client(current)
    queues = find_queues(sqs, current.sqs)
    assert queues is not None
    sqs.send_message(QueueUrl=queues.url, MessageBody=jsonlib.dumps(["poison"]))
    consumer = calls_of(lambda: asyncio.run(analyse()))
    consumer |= calls_of(lambda: dlq_list(limit=100))  # the command, as a user runs it
    consumer |= calls_of(lambda: dlq_redrive(reason="not a JSON object"))
    for role, made in (("admin", admin), ("producer", producer), ("consumer", consumer)):
        assert made, f"recorded no call for {role}: the recorder is wrong"
        assert made <= role_actions(role), f"{role} lacks {sorted(made - role_actions(role))}"
