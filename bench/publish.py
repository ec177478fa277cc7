"""Publishing and memory, measured beside their yardsticks on the same emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import polars as pl

from jobping.contract import encode
from tasks.jobspy.normalise import normalise
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_site, sample_sites
from tasks.sqs.client import EMULATOR_CREDENTIALS
from tasks.sqs.messages import send_entries

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MEMORY_POLL_SECONDS = 0.2


def client(moto: str) -> SQSClient:
    return boto3.client(
        "sqs",
        endpoint_url=moto,
        region_name="us-east-1",
        aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
    )


def sample_envelopes(count: int) -> list[object]:
    """``count`` envelopes built the way the scrape flow builds them, from the synthetic sample."""
    params = ScrapeParameters(source="sample", sites=sample_sites())
    frame = pl.concat([sample_site(site, params).postings for site in params.sites])
    envelopes = normalise(frame, datetime.now(UTC)).envelopes
    return [envelopes[n % len(envelopes)] for n in range(count)]


def per_second(count: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def publish_rates(moto: str, count: int, single_count: int) -> dict[str, float]:
    """Messages per second: our publish path, a bare SendMessageBatch loop, one SendMessage per job."""
    sqs = client(moto)
    envelopes = sample_envelopes(count)
    bodies = [encode(e) for e in envelopes]  # type: ignore[arg-type]

    def queue() -> str:
        return sqs.create_queue(QueueName=f"pub-{uuid.uuid4().hex[:10]}")["QueueUrl"]

    def ours() -> None:
        entries = [{"Id": str(i), "MessageBody": encode(e)} for i, e in enumerate(envelopes)]  # type: ignore[arg-type]
        send_entries(sqs, url_ours, entries)  # type: ignore[arg-type]

    def bare() -> None:
        for start in range(0, count, 10):
            chunk = bodies[start : start + 10]
            sqs.send_message_batch(
                QueueUrl=url_bare, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
            )

    def single() -> None:
        for body in bodies[:single_count]:
            sqs.send_message(QueueUrl=url_single, MessageBody=body)

    url_ours, url_bare, url_single = queue(), queue(), queue()
    return {
        "ours": per_second(count, ours),
        "bare": per_second(count, bare),
        "single": per_second(single_count, single),
    }


@dataclass(frozen=True)
class PeakMemory:
    """Peak MB of a process: resident (VmHWM), and of it the anonymous pages (heap, stacks: RssAnon).

    The rest of the resident memory is mapped from files, mostly the code of the native libraries
    (DuckDB, polars, delta-rs), which processes share and the kernel can drop and read again.
    """

    resident: float
    anonymous: float


def peak_memory_mb(env: dict[str, str], command: list[str]) -> PeakMemory:
    """Peak resident memory of a command, and its anonymous part, read from /proc while it runs."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    peak = {"VmHWM": 0, "RssAnon": 0}

    def watch() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    name = line.split(":", 1)[0]
                    if name in peak:
                        peak[name] = max(peak[name], int(line.split()[1]))
            except OSError:
                return
            time.sleep(MEMORY_POLL_SECONDS)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if process.wait() != 0:
        raise RuntimeError(f"{command} exited {process.returncode}")
    watcher.join()
    return PeakMemory(resident=peak["VmHWM"] / 1024, anonymous=peak["RssAnon"] / 1024)


def jobping_analyse() -> list[str]:
    return [str(Path(sys.executable).parent / "jobping"), "analyse"]


def environment_for_child(values: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "OPENAI_"))}
    return env | values
