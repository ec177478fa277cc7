"""A data file of the history deleted, and an ``add`` for a file that never existed: every run goes on.

Before, `jobping sql` failed on "No such file or directory" and `jobping analyse` failed before it
received, so the queue's messages stayed there and the autoscaler started a failing run every poll.
The lost files must be dropped from the table by a repair commit, the first analyse run must drain
the queue (a real moto server), and the next one must need no repair.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from deltalake import DeltaTable
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from flows.analyse import analyse
from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting, envelope_for
from jobping.settings import Settings
from jobping.stored import to_row
from standins.servers import moto_server
from storage.delta import DeltaHistory
from storage.lake import Lake
from storage.repair import REPAIR_RECORD
from storage.rows import PARTITION
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queues import ensure_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

JOBPING = str(Path(sys.executable).parent / "jobping")
CLI_TIMEOUT_SECONDS = 120
NEVER_WRITTEN = "scrape_date=2026-11-26/never-written.parquet"


def posting(job: str) -> JobPosting:
    return JobPosting(id=job, site="indeed", job_url=f"https://x.example/{job}", title="Data Engineer")


def stored(lake: Lake, job: str) -> list[str]:
    analysis = JobAnalysis(
        fit_score=50, verdict="maybe", seniority="mid", remote_policy="remote", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="ok",
    )  # fmt: skip
    now = datetime.now(UTC)
    history = DeltaHistory(lake)
    history.ensure()
    before = set(history.table().file_uris())
    result = AnalysisResult(analysis=analysis, model="probe", prompt_version="p1")
    history.append([to_row(envelope_for(posting(job), now), result, now, f"m-{job}")])
    return sorted(set(history.table().file_uris()) - before)


def forge(lake: Lake, path: str) -> None:
    log = Path(lake.history_uri) / "_delta_log"
    version = max(int(p.stem) for p in log.glob("*.json")) + 1
    now = int(time.time() * 1000)
    add = {"path": path, "partitionValues": {PARTITION: "2026-11-26"}, "size": 100, "modificationTime": now,
           "dataChange": True}  # fmt: skip
    (log / f"{version:020d}.json").write_text(json.dumps({"add": add}) + "\n", encoding="utf-8")


def repairs(lake: Lake) -> list[str]:
    return [item["path"] for c in DeltaTable(lake.history_uri).history() for item in c.get(REPAIR_RECORD, [])]


def send(sqs: SQSClient, queue: str, jobs: list[str]) -> None:
    for job in jobs:
        sqs.send_message(QueueUrl=queue, MessageBody=envelope_for(posting(job), datetime.now(UTC)).model_dump_json())


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [JOBPING, *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"jobping {args[0]} failed: {' '.join(done.stderr.split())[-300:]}")
    return done


def probe(work: Path) -> str:
    data = work / "data"
    lake = Lake(data / "lake")
    stored(lake, "1")
    (lost,) = stored(lake, "2")
    stored(lake, "3")
    Path(lost).unlink()
    forge(lake, NEVER_WRITTEN)
    with moto_server(work / "moto.log") as moto, prefect_test_harness(server_startup_timeout=90):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
        env |= {
            "JOBPING_DATA_DIR": str(data), "JOBPING_SQS_ENDPOINT_URL": moto,
            "JOBPING_QUEUE_NAME": f"probe-{uuid.uuid4().hex[:8]}", "JOBPING_RECEIVE_WAIT_SECONDS": "0",
            "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_LOGGING_LEVEL": "WARNING", "COLUMNS": "200",
        }  # fmt: skip
        # this probe's own process: the flow reads its settings from the environment, as a worker's run does
        for name in [n for n in os.environ if n.startswith(("JOBPING_", "OPENAI_"))]:
            del os.environ[name]
        os.environ.update({k: v for k, v in env.items() if k.startswith("JOBPING_")})
        settings = Settings()
        sqs = make_sqs_client(settings)
        queue = ensure_queues(sqs, settings.sqs).url
        send(sqs, queue, ["10", "11", "12"])
        shown = run(env, "sql", "SELECT count(*) FROM enriched_jobs_history")
        if "│ 2 " not in shown.stdout:
            raise AssertionError(f"jobping sql did not show the 2 rows left: {' '.join(shown.stdout.split())}")
        dropped = repairs(lake)
        # the analyse flow as the autoscaler's runs run it, in this process: its first run is where it used to fail
        first = asyncio.run(analyse(report_matches=False))
        send(sqs, queue, ["13"])
        second = asyncio.run(analyse(report_matches=False))
        left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    if sorted(dropped) != sorted([os.path.relpath(lost, lake.history_uri), NEVER_WRITTEN]):
        raise AssertionError(f"the repair commits dropped {dropped}, not the deleted file and the forged add")
    if repairs(lake) != dropped:
        raise AssertionError("the analyse runs made repair commits again: the first repair did not hold")
    if (first.received, first.stored, second.received, second.stored) != (3, 3, 1, 1):
        raise AssertionError(f"the analyse runs did not store what was queued: {first.line()}; {second.line()}")
    if int(left["Attributes"]["ApproximateNumberOfMessages"]) != 0:
        raise AssertionError("messages stayed on the queue")
    rows = DeltaTable(lake.history_uri).to_pyarrow_table(columns=["job_key"]).num_rows
    return (
        f"1 deleted data file and 1 add for a file never written: jobping sql showed the 2 rows left, "
        f"{len(dropped)} paths dropped by repair commits in the history's log; 2 analyse runs against moto stored "
        f"3 then 1 (queue empty, {rows} rows), no further repair"
    )
