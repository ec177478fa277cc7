"""docs/iam-policy.json grants every SQS call the code makes, and nothing beyond SQS."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
