"""The fault cases, by name: each publishes, injects one kind of trouble into real processes, and drains."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scripts.fault_suite.case import ROOT, Case, holding_catalog, kill_mid_run, postings
from scripts.fault_suite.hostile import case_hostile
from storage.delta import DeltaHistory
from storage.lake import Lake
from storage.rows import PARTITION


def case_duplicates(case: Case) -> None:
    bodies = postings(100, "dup")
    case.outcome.published = 100
    case.publish(bodies + bodies)
    case.drain()
    case.outcome.notes.append("every message sent twice (200 messages, 100 postings)")


# slow answers, so that each kill lands while batches are in the middle of their work
KILL_LATENCY_MS = 1_000


KILL_AFTER_SECONDS = 5.0


def case_killed(case: Case) -> None:
    case.standin.configure(latency_ms=KILL_LATENCY_MS)
    case.publish(postings(150, "kill"))
    case.outcome.published = 150
    kill_mid_run(case, times=3, after_seconds=KILL_AFTER_SECONDS)
    case.drain()
    case.outcome.notes.append(
        f"answers take {KILL_LATENCY_MS} ms; SIGKILL {KILL_AFTER_SECONDS:g} s into each of three runs, then drained"
    )


def case_emulator_paused(case: Case) -> None:
    case.standin.configure(latency_ms=200)
    case.publish(postings(150, "pause"))
    case.outcome.published = 150
    moto_pid = int(case.env["JOBPING_FAULTS_MOTO_PID"])
    process = case.start()
    time.sleep(6)
    os.kill(moto_pid, signal.SIGSTOP)
    time.sleep(20)
    os.kill(moto_pid, signal.SIGCONT)
    case.finish(process)
    case.drain()
    case.outcome.notes.append(
        "moto frozen (SIGSTOP) for 20 s mid-drain; moto keeps messages only in memory, so not killed"
    )


def case_write_fails(case: Case) -> None:
    case.publish(postings(50, "disk"))
    case.outcome.published = 50
    # the history table exists; files where its partitions' folders should be make every append fail
    history = DeltaHistory(Lake(case.data / "lake"))
    history.ensure()
    today = datetime.now(UTC).date()
    blockers = [Path(history.uri) / f"{PARTITION}={today + timedelta(days=d)}" for d in (-1, 0, 1)]
    for blocker in blockers:
        blocker.write_text("a file where the folder should be: every write fails")
    case.finish(case.start())
    visible, in_flight, dlq = case.depth()
    if visible + in_flight != 50 or dlq:
        case.outcome.problems.append(f"after the failed write: {visible + in_flight} on the queue, {dlq} in the DLQ")
    case.outcome.notes.append(f"failed run left {visible + in_flight} of 50 on the queue, {dlq} in the DLQ")
    for blocker in blockers:
        blocker.unlink()
    case.drain()


TINY_DISK = "64k"


def case_disk_full(case: Case) -> None:
    case.publish(postings(100, "full", description="Python and SQL. " * 400))
    case.outcome.published = 100
    table = case.data / "lake" / "enriched_jobs_history"
    table.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY_DISK}", "tmpfs", str(table)],  # noqa: S607
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        case.outcome.notes.append(f"NOT RUN: mounting a {TINY_DISK} tmpfs needs root ({mounted.stderr.strip()})")
        case.outcome.problems.append("not run here: needs root to mount a tiny filesystem")
        return
    try:
        case.finish(case.start())
    finally:
        # freeing space keeps what was written: move the files off the tiny disk, then drop it
        kept = case.data / "kept"
        shutil.copytree(table, kept)
        subprocess.run(["umount", str(table)], check=False)  # noqa: S607
        shutil.copytree(kept, table, dirs_exist_ok=True)
        shutil.rmtree(kept)
    visible, in_flight, dlq = case.depth()
    case.outcome.notes.append(
        f"the table's folder was a {TINY_DISK} tmpfs (ENOSPC after a few files); the failed run left "
        f"{visible + in_flight} of 100 on the queue and {dlq} in the DLQ, then the disk was freed and drained"
    )
    case.drain()


def case_three_consumers(case: Case) -> None:
    case.standin.configure(latency_ms=200)
    case.publish(postings(300, "three"))
    case.outcome.published = 300
    processes = [case.start() for _ in range(3)]
    for process in processes:
        case.finish(process)
    case.drain()
    case.outcome.notes.append("three analyse processes started at once")


def case_reader_holds_catalog(case: Case) -> None:
    case.publish(postings(10, "first"))
    case.drain()
    case.publish(postings(100, "held"))
    case.outcome.published = 110
    (case.data / "jobping.version").unlink()  # the run will want to rewrite the views
    with holding_catalog(case.data / "jobping.duckdb"):
        case.drain()
    case.outcome.notes.append("a process held data/jobping.duckdb open read-write throughout")


def case_llm_faults(case: Case) -> None:
    case.standin.configure(rate_429=0.2, rate_500=0.2, rate_hang=0.02, rate_malformed=0.1, rate_invalid=0.1,
                           retry_after_seconds=0.1, hang_seconds=30)  # fmt: skip
    case.publish(postings(150, "llm"))
    case.outcome.published = 150
    case.drain()
    case.outcome.notes.append("429 20%, 500 20%, hang 2%, malformed 10%, invalid 10% of requests")


def case_poison(case: Case) -> None:
    corpus = json.loads((ROOT / "tests" / "cases" / "poison.json").read_text())
    corpus += [
        "[" * 5_000 + "]" * 5_000,  # nesting past the parser's recursion limit
        "\x00\x01\x02 binary \x7f",
        json.dumps({"schema_version": "1", "posting": {"title": "t", "job_url": "https://x.example/2"}}),
    ]
    # a posting is refused only without a usable title or job_url: these are stored cut or cleared
    salvageable = json.loads((ROOT / "tests" / "cases" / "salvageable.json").read_text())
    salvageable += [
        json.dumps({"title": "Engineer", "job_url": "https://x.example/1", "description": "d" * 250_000}),
        json.dumps({"title": "Engineer", "job_url": "https://x.example/3", "date_posted": "yesterday"}),
        json.dumps({"title": "Engineer", "job_url": "https://x.example/7", "is_remote": "sometimes"}),
    ]
    good = postings(20, "good") + salvageable
    case.publish(corpus + good)
    case.outcome.published = len(corpus) + len(good)
    case.drain()
    if case.outcome.dead_lettered != len(corpus):
        case.outcome.problems.append(f"{case.outcome.dead_lettered} sent to the DLQ, expected {len(corpus)}")
    case.outcome.notes.append(
        f"{len(corpus)} kinds of poison beside {len(good)} good postings ({len(salvageable)} stored cut or cleared)"
    )


def case_acceptance(case: Case) -> None:
    case.standin.configure(latency_ms=KILL_LATENCY_MS)
    case.publish(postings(5, "seed"))
    case.drain()
    bodies = postings(150, "acc")
    case.publish(bodies + bodies)
    case.outcome.published = 155
    (case.data / "jobping.version").unlink()
    with holding_catalog(case.data / "jobping.duckdb"):
        kill_mid_run(case, times=3, after_seconds=KILL_AFTER_SECONDS)
        case.drain()
    if case.outcome.in_dlq:
        case.outcome.problems.append(f"{case.outcome.in_dlq} in the DLQ, expected none")
    case.outcome.notes.append("every posting sent twice, SIGKILL three times, a reader holding the catalog")


CASES: dict[str, Callable[[Case], None]] = {
    "every message delivered twice": case_duplicates,
    "analyse killed (SIGKILL) mid-batch, three times": case_killed,
    "SQS emulator frozen for 20 s mid-drain": case_emulator_paused,
    "lake write failing (a file where a folder should be)": case_write_fails,
    "disk full (a 64 KiB filesystem)": case_disk_full,
    "three analyse processes on one queue": case_three_consumers,
    "a reader holding the DuckDB catalog read-write": case_reader_holds_catalog,
    "LLM faults at high rates": case_llm_faults,
    "a poison corpus": case_poison,
    "hostile input of every class": case_hostile,
    "acceptance: twice-delivered, killed 3x, catalog held": case_acceptance,
}
