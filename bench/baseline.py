"""The original design's consumer, for comparison: one message at a time, one request each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jobping.analysis import Analyser
from jobping.contract import parse_message
from jobping.stored import to_row
from storage.delta import DeltaHistory
from storage.lake import Lake
from tasks.jobspy.source import _sample_records

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


async def one_at_a_time(sqs: SQSClient, queue_url: str, analyser: Analyser, lake: Path, limit: int) -> int:
    """Receive one, analyse it, save it, delete it; the loop of the original Lambda consumer."""
    done = 0
    history = DeltaHistory(Lake(lake))
    while done < limit:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        message = got[0]
        envelope = parse_message(message["Body"], datetime.now(UTC))
        # the sqs calls block, as they did in the lambda: one thing at a time
        result = await analyser.analyse(envelope.posting)
        history.append([to_row(envelope, result, datetime.now(UTC), message["MessageId"])])
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        done += 1
    return done


def sample_bodies(count: int) -> list[str]:
    """``count`` distinct bare postings made from the bundled sample (synthetic), each a job of its own.

    The title is numbered too: the same job posted twice would reuse its analysis (job groups),
    and a benchmark of LLM requests must make one per posting.
    """

    records = list(_sample_records())
    bodies = []
    for n in range(count):
        record = dict(records[n % len(records)])
        record["id"] = f"bench-{n}"
        record["job_url"] = f"https://bench.example/jobs/{n}"
        record["title"] = f"{record['title']} [{n}]"
        bodies.append(json.dumps(record))
    return bodies
