"""One fault case's world: its own data dir and queue on the shared servers, its runs of analyse, its audit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jobping.settings import Settings
from standins.servers import StandIn
from storage.delta import DeltaHistory
from storage.lake import DELTA, Lake, extension_path
from storage.reader import reader
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries
from tasks.sqs.queues import depth, ensure_queues

ROOT = Path(__file__).resolve().parents[2]


JOBPING = str(Path(sys.executable).parent / "jobping")


RUN_TIMEOUT_SECONDS = 300.0


DRAIN_SECONDS = 180.0


# long enough that what a killed run held is not received again by the next killed run,
# which would spend its receive counts and send it to the dlq after three crashes
VISIBILITY_SECONDS = 20


COUNTS = re.compile(
    r"received (\d+) = stored (\d+) \+ skipped (\d+) \+ (?:seen (\d+) \+ )?DLQ (\d+) \+ left for retry (\d+)",
    re.MULTILINE,
)


@dataclass
class Outcome:
    case: str
    published: int = 0
    runs: int = 0
    killed: int = 0
    received: int = 0
    stored: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    left: int = 0
    balanced_runs: int = 0
    rows: int = 0
    distinct: int = 0
    in_dlq: int = 0
    on_queue: int = 0
    llm_answers: int = 0
    llm_requests: int = 0
    view_rows: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.problems


class Case:
    """One fault scenario: its own data dir and queue, sharing the servers."""

    def __init__(self, name: str, base: Path, moto: str, standin: StandIn, api: str, **env: str) -> None:
        self.outcome = Outcome(name)
        # what every finished run printed, stdout and stderr
        self.outputs: list[str] = []
        self.data = base / uuid.uuid4().hex[:8]
        self.standin = standin
        self.moto = moto
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "OPENAI_"))}
        self.env |= {
            "JOBPING_DATA_DIR": str(self.data),
            "JOBPING_SQS_ENDPOINT_URL": moto,
            "JOBPING_QUEUE_NAME": f"faults-{self.data.name}",
            "JOBPING_RECEIVE_WAIT_SECONDS": "1",
            "JOBPING_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
            "OPENAI_BASE_URL": standin.url + "/v1",
            "OPENAI_API_KEY": "sk-faults",
            "JOBPING_LLM_TIMEOUT_SECONDS": "3",
            "PREFECT_API_URL": api,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "COLUMNS": "200",
            **env,
        }

    def settings(self) -> Settings:
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("JOBPING_", "OPENAI_"))})
        try:
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def sqs(self) -> tuple[object, object]:
        settings = self.settings()
        sqs = make_sqs_client(settings)
        return sqs, ensure_queues(sqs, settings.sqs)

    def publish(self, bodies: list[str]) -> None:
        sqs, queues = self.sqs()
        report = send_entries(sqs, queues.url, [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])  # type: ignore[arg-type, attr-defined]
        if report.failed:
            raise RuntimeError(f"could not publish {len(report.failed)} messages")

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [JOBPING, "analyse"], env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip

    def finish(self, process: subprocess.Popen[str]) -> bool:
        out, err = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        self.outcome.runs += 1
        self.outputs += [out, err]
        found = COUNTS.search(out)
        if process.returncode != 0 or found is None:
            self.outcome.notes.append(f"run exited {process.returncode}: {(err or out).strip().splitlines()[-1:]}")
            return False
        received, stored, skipped, seen, dlq, left = (int(n or 0) for n in found.groups())
        o = self.outcome
        o.received += received
        o.stored += stored
        # a sightings message is finished like a skipped one: no analysis, deleted once recorded
        o.skipped += skipped + seen
        o.dead_lettered += dlq
        o.left += left
        if received == stored + skipped + seen + dlq + left:
            o.balanced_runs += 1
        else:
            o.problems.append(f"a run's counts do not add up: {found.group(0)}")
        return True

    def kill(self, process: subprocess.Popen[str]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        self.outcome.runs += 1
        self.outcome.killed += 1

    def depth(self) -> tuple[int, int, int]:
        sqs, queues = self.sqs()
        main, dlq = depth(sqs, queues.url), depth(sqs, queues.dlq_url)  # type: ignore[arg-type, attr-defined]
        return main.visible, main.in_flight, dlq.visible + dlq.in_flight

    def drain(self) -> None:
        """Run analyse until the queue is empty, waiting out what is still in flight."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            visible, in_flight, _ = self.depth()
            if visible + in_flight == 0:
                return
            if visible == 0:
                time.sleep(2)
                continue
            self.finish(self.start())
        self.outcome.notes.append(f"the queue was not empty after {DRAIN_SECONDS:.0f} s")

    def audit(self) -> Outcome:
        o = self.outcome
        visible, in_flight, o.in_dlq = self.depth()
        o.on_queue = visible + in_flight
        lake = self.data / "lake"
        if DeltaHistory(Lake(lake)).exists():
            with reader(lake) as con:
                o.rows, o.distinct = con.execute(
                    "SELECT count(*), count(DISTINCT job_key) FROM enriched_jobs_history"
                ).fetchall()[0]
                o.view_rows = con.execute("SELECT count(*) FROM enriched_jobs").fetchall()[0][0]
        stats = self.standin.stats()
        o.llm_answers = int(stats.get("ok", 0))
        o.llm_requests = int(stats.get("requests", 0))
        if o.distinct + o.in_dlq + o.on_queue != o.published:
            o.problems.append(
                f"lost or invented: published {o.published} != "
                f"stored {o.distinct} + DLQ {o.in_dlq} + queued {o.on_queue}"
            )
        if o.view_rows != o.distinct:
            o.problems.append(f"enriched_jobs shows {o.view_rows} rows for {o.distinct} job_keys")
        if o.rows != o.distinct:
            # every consumer claims a posting in the lake before paying for it, so even one message handed
            # to two consumers at once is stored once
            o.problems.append(f"{o.rows - o.distinct} postings stored twice")
        return o


def postings(count: int, tag: str, description: str = "We use Python, SQL and Airflow.") -> list[str]:
    return [
        json.dumps({"title": f"Data Engineer {n}", "company": "Faults GmbH", "site": "indeed", "id": f"{tag}-{n}",
                    "job_url": f"https://jobs.example.com/{tag}/{n}", "description": description})
        for n in range(count)
    ]  # fmt: skip


@contextmanager
def holding_catalog(catalog: Path) -> Iterator[None]:
    """Another process with the DuckDB catalog open read-write for the whole block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            con = duckdb.connect({str(catalog)!r})
            con.execute("LOAD '{extension_path(DELTA)}'")  # as a DuckDB shell user does (the README)
            con.execute("SELECT count(*) FROM enriched_jobs").fetchall()
            print("holding", flush=True)
            time.sleep(3600)
        """)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "holding":
            raise RuntimeError("the catalog holder did not start")
        yield
    finally:
        holder.kill()
        holder.wait()


def kill_mid_run(case: Case, times: int, after_seconds: float) -> None:
    for _ in range(times):
        process = case.start()
        time.sleep(after_seconds)
        case.kill(process)
