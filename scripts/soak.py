"""The unwatched night, compressed: ninety nights of the local stack in minutes, with faults along the way.

A real stack (`jobping stack up`: the emulator, the Prefect server, a worker, the autoscaler)
runs in a temporary data dir. Each night scrapes a window of the bundled sample (synthetic
postings; the window moves so that every posting is met, and most are met again), drains the
queue and sends the night's digest; every few nights the maintenance runs, with its retention
compressed as the nights are (`JOBPING_RETENTION_DAYS` of a few nights' seconds, the lake's
vacuum likewise). Along the way the emulator is killed after a scrape published (its messages
die with it: the next scrape must publish them again) and a consumer is killed mid-batch. At
the end every posting met is stored, or the soak fails; per night, the sizes of the Prefect
database, the stack's logs and the lake are written to docs/RELIABILITY.md's soak section.

The flows run in this process against the stack's server, as `jobping scrape` and `jobping
analyse` do, so that a night costs seconds, not the half minute a worker's fresh process for
every run would; the worker and the autoscaler are up beside them, as on a real night.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standins.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "RELIABILITY.md"
SOAK_HEADING = "## Soak: ninety unwatched nights, compressed"
JOBPING = str(Path(sys.executable).parent / "jobping")
NIGHTS = 90
WINDOW = 40
STEP = 17
MAINTAIN_EVERY_NIGHTS = 5
# the compressed retention: runs and replaced lake files older than this many nights go
RETENTION_NIGHTS = 10
# the faults' nights, as shares of the soak: nights 30 and 70, and 50, of ninety
EMULATOR_KILLED_AT = (1 / 3, 7 / 9)
CONSUMER_KILLED_AT = (5 / 9,)
VISIBILITY_SECONDS = 10
EVENT_RETENTION_SECONDS = 10
VACUUM_LOOP_SECONDS = 5
LOG_RETENTION_KEY = "delta.logRetentionDuration"
# small, so that the logs rotate within the soak and their bound shows
LOG_MAX_BYTES = 8 * 1024
LOG_BACKUPS = 3
# postings edited on a fault night (their content changes, so the scrape publishes them again)
EDITED_ON_FAULT_NIGHTS = 10
STACK_TIMEOUT_SECONDS = 300
DRAIN_SECONDS = 120.0
# a size whose median over the last nights is within this much of its median up to halfway has levelled off
LEVEL_OFF_RATIO = 1.25
# two maintenance cycles: the windows the medians are taken over
LEVEL_WINDOW_NIGHTS = 2 * MAINTAIN_EVERY_NIGHTS
# a log rotates between lines: one line may pass the limit
LOG_LINE_SLACK_BYTES = 4_096
SHOWN_EVERY_NIGHTS = 10


@dataclass
class Night:
    number: int
    seconds: float
    published: int
    stored_jobs: int
    prefect_db_bytes: int
    prefect_runs: int
    log_bytes: int
    log_files: int
    log_parts: int
    lake_bytes: int
    events: list[str] = field(default_factory=list)


def folder_bytes(path: Path, pattern: str = "**/*") -> tuple[int, int]:
    files = [p for p in path.glob(pattern) if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


@contextmanager
def stack(data: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
    env |= {
        "JOBPING_DATA_DIR": str(data),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "JOBPING_EMULATOR_PORT": str(free_port()),
        "JOBPING_SCRAPE_SOURCE": "sample",
        "JOBPING_RECEIVE_WAIT_SECONDS": "1",
        "JOBPING_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
        "JOBPING_WORKER_QUERY_SECONDS": "5",
        "JOBPING_SCALE_POLL_SECONDS": "2",
        # the nights drain in this process: the autoscaler looks, and is never asked for a run
        "JOBPING_SCALE_ACTIVATION_MESSAGES": "1000000",
        "JOBPING_LOG_MAX_BYTES": str(LOG_MAX_BYTES),
        "JOBPING_LOG_BACKUPS": str(LOG_BACKUPS),
        # prefect keeps events a week and vacuums them hourly; compressed as the nights are
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": f"PT{EVENT_RETENTION_SECONDS}S",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": str(VACUUM_LOOP_SECONDS),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    try:
        up = subprocess.run([JOBPING, "stack", "up"], env=env, capture_output=True, text=True,
                            timeout=STACK_TIMEOUT_SECONDS, check=False)  # fmt: skip
        if up.returncode != 0:
            raise RuntimeError(f"jobping stack up failed: {up.stdout[-2000:]} {up.stderr[-2000:]}")
        yield env
    finally:
        subprocess.run([JOBPING, "stack", "down"], env=env, capture_output=True, timeout=120, check=False)


def use(env: dict[str, str], data: Path) -> None:
    """This process's flows run on the stack's server, with the stack's settings, as the CLI's do."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("JOBPING_")})
    auth = (data / "prefect" / "api-auth").read_text(encoding="ascii").strip()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{env['JOBPING_PREFECT_PORT']}/api"
    os.environ["PREFECT_API_AUTH_STRING"] = auth


def edited(pool: tuple[dict[str, Any], ...], positions: list[int], night: int) -> tuple[dict[str, Any], ...]:
    """The pool with the postings at ``positions`` updated by their board on ``night``."""
    changed = list(pool)
    for i in positions:
        changed[i] = {**pool[i], "description": f"{pool[i].get('description') or ''}\n\nUpdated on night {night}."}
    return tuple(changed)


def compress_log_retention(lake: Path, seconds: float) -> None:
    """Delta keeps its log's commits 30 days: here, ``seconds``, set on every table that keeps them longer."""
    from deltalake import DeltaTable  # noqa: PLC0415

    wanted = f"interval {max(1, round(seconds))} seconds"
    for folder in sorted(p.parent for p in lake.glob("*/_delta_log")):
        table = DeltaTable(str(folder))
        if table.metadata().configuration.get(LOG_RETENTION_KEY) != wanted:
            table.alter.set_table_properties({LOG_RETENTION_KEY: wanted})


def fault_nights(shares: tuple[float, ...], nights: int) -> list[int]:
    return [max(1, round(share * nights)) for share in shares]


def window(night: int, size: int) -> list[int]:
    """The positions in the pool of the postings scraped on ``night``."""
    start = (night * STEP) % size
    return [(start + i) % size for i in range(WINDOW)]


def run_soak(nights: int, keep: Path | None = None) -> tuple[list[Night], list[str], dict[str, int]]:  # noqa: PLR0915 - one story, told in order
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.settings import (  # noqa: PLC0415
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    from flows.analyse import analyse  # noqa: PLC0415
    from flows.compact import compact_lake  # noqa: PLC0415
    from flows.scrape import scrape  # noqa: PLC0415
    from jobping.settings import Settings  # noqa: PLC0415
    from storage.reader import LakeEmptyError, reader  # noqa: PLC0415
    from tasks.jobspy import source  # noqa: PLC0415
    from tasks.jobspy.search import ScrapeParameters  # noqa: PLC0415
    from tasks.sqs import emulator  # noqa: PLC0415
    from tasks.sqs.client import make_sqs_client  # noqa: PLC0415
    from tasks.sqs.queues import depth, locate_queues  # noqa: PLC0415

    pool = source._sample_records()
    sites = source.sample_sites()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="jobping-soak-") as tmp:
        data = (keep or Path(tmp)) / "data"
        with stack(data) as env:
            use(env, data)
            settings = Settings()
            api = {
                PREFECT_API_URL: os.environ["PREFECT_API_URL"],
                PREFECT_API_AUTH_STRING: os.environ["PREFECT_API_AUTH_STRING"],
                # a sync flow's heartbeat thread costs a second at its end
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
            }
            history: list[Night] = []
            met: set[int] = set()
            emulator_nights, consumer_nights = (
                fault_nights(EMULATOR_KILLED_AT, nights),
                fault_nights(CONSUMER_KILLED_AT, nights),
            )

            def stored_jobs() -> int:
                try:
                    con = reader(settings.lake_dir)
                except LakeEmptyError:
                    return 0
                with con:
                    return int(con.execute("SELECT count(*) FROM enriched_jobs").fetchall()[0][0])

            def queued() -> int:
                sqs = make_sqs_client(settings)
                main = depth(sqs, locate_queues(sqs, settings.sqs).url)
                return main.visible + main.in_flight

            def drain() -> None:
                deadline = time.monotonic() + DRAIN_SECONDS
                while queued():
                    if time.monotonic() > deadline:
                        problems.append(f"the queue did not drain in {DRAIN_SECONDS:.0f} s")
                        return
                    asyncio.run(analyse())

            with temporary_settings(api):
                # when each night began: a retention of ten nights keeps what the last ten nights wrote, however
                # fast each night ran (ten times a typical night's seconds kept more as the nights sped up)
                night_starts: list[float] = []
                for number in range(1, nights + 1):
                    started = time.monotonic()
                    night_starts.append(started)
                    events: list[str] = []
                    tonight = window(number, len(pool))
                    met.update(tonight)
                    if number in emulator_nights or number in consumer_nights:
                        # a board updates some postings: they are published again, into the fault
                        pool = edited(pool, tonight[:EDITED_ON_FAULT_NIGHTS], number)
                    source._sample_records = lambda ps=tonight, at=pool: tuple(at[i] for i in ps)  # type: ignore[assignment]
                    report = scrape(ScrapeParameters(source="sample", sites=sites))
                    if number in emulator_nights:
                        pid = emulator.status(settings).pid
                        if pid is not None:
                            os.killpg(pid, signal.SIGKILL)
                            events.append(f"emulator killed after {report.published} were published")
                    if number in consumer_nights and report.published:
                        consumer = subprocess.Popen([JOBPING, "analyse"], env=os.environ.copy(),
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                    start_new_session=True)  # fmt: skip
                        sqs = make_sqs_client(settings)
                        url = locate_queues(sqs, settings.sqs).url
                        deadline = time.monotonic() + 60
                        while depth(sqs, url).in_flight == 0 and time.monotonic() < deadline:
                            time.sleep(0.1)
                        os.killpg(consumer.pid, signal.SIGKILL)
                        consumer.wait()
                        events.append("a consumer killed holding a batch")
                    drain()
                    if number % MAINTAIN_EVERY_NIGHTS == 0:
                        # the retentions, of runs, replaced files and the log's commits: the last ten nights
                        retention = time.monotonic() - night_starts[max(0, number - RETENTION_NIGHTS)]
                        compress_log_retention(settings.lake_dir, retention)
                        os.environ["JOBPING_RETENTION_DAYS"] = f"{retention / 86_400:.9f}"
                        compact_lake(retain_hours=retention / 3_600)
                    with get_client(sync_client=True) as client:
                        runs = client.count_flow_runs()
                    db_bytes, _ = folder_bytes(data / "prefect", "prefect.db*")
                    log_bytes, log_files = folder_bytes(data / "run", "*.log*")
                    log_parts = len(list((data / "run").glob("*.log")))
                    lake_bytes, _ = folder_bytes(data / "lake")
                    # which of the lake's tables and folders the bytes are in, for a lake that does not level off
                    parts = {
                        p.name: folder_bytes(p)[0] // 1024 for p in sorted((data / "lake").glob("*")) if p.is_dir()
                    }
                    seconds = time.monotonic() - started
                    history.append(Night(number, seconds, report.published, stored_jobs(), db_bytes, runs,
                                         log_bytes, log_files, log_parts, lake_bytes, events))  # fmt: skip
                    print(f"night {number}: {report.published} published, {history[-1].stored_jobs} jobs, "
                          f"db {db_bytes // 1024} KiB, {runs} runs, logs {log_bytes // 1024} KiB, "
                          f"lake {lake_bytes // 1024} KiB {parts}, {seconds:.1f} s", *events, flush=True)  # fmt: skip

                # every posting met on some night is stored: a scrape of them all finds none to publish
                source._sample_records = lambda at=pool: tuple(at[i] for i in sorted(met))  # type: ignore[assignment]
                # what the last faults lost and no night met again since, the next scrape publishes
                final = scrape(ScrapeParameters(source="sample", sites=sites))
                drain()
                check = scrape(ScrapeParameters(source="sample", sites=sites))
                totals = {"met": len(met), "pool": len(pool), "republished": final.published,
                          "lost": check.published, "already_stored": check.already_stored}  # fmt: skip
    return history, problems, totals


def level_windows(history: list[Night]) -> tuple[list[Night], list[Night]]:
    """The nights up to halfway and the last nights, LEVEL_WINDOW_NIGHTS of each (fewer in a short soak)."""
    half = len(history) // 2 + 1
    width = min(LEVEL_WINDOW_NIGHTS, half)
    return history[half - width : half], history[-width:]


def levelled(history: list[Night], attribute: str) -> tuple[bool, int, int]:
    """Whether a size has stopped growing: its median over the last nights within LEVEL_OFF_RATIO of its
    median over the nights up to halfway. Medians of whole maintenance cycles, not single nights: where a
    night falls in the cycle (just before a vacuum, or just after a compaction that keeps the files it
    replaced for the retention) moves a single night's size by a fifth, and with the machine's speed."""
    before, last = level_windows(history)
    half = int(statistics.median(getattr(n, attribute) for n in before))
    end = int(statistics.median(getattr(n, attribute) for n in last))
    return end <= max(half, 1) * LEVEL_OFF_RATIO, half, end


def logs_bounded(history: list[Night]) -> tuple[bool, int, int]:
    """Whether the logs stayed within what rotation allows: (backups + 1) files of the limit, per part."""
    bound = max(n.log_parts for n in history) * (LOG_BACKUPS + 1) * (LOG_MAX_BYTES + LOG_LINE_SLACK_BYTES)
    largest = max(n.log_bytes for n in history)
    return largest <= bound, largest, bound


def write_report(history: list[Night], problems: list[str], totals: dict[str, int], seconds: float) -> bool:
    names = ("prefect_db_bytes", "prefect_runs", "lake_bytes")
    checks = {name: levelled(history, name) for name in names}
    before, last = level_windows(history)
    logs_ok, largest, bound = logs_bounded(history)
    holds = not problems and totals["lost"] == 0 and logs_ok and all(ok for ok, _, _ in checks.values())
    shown = [n for n in history if n.number == 1 or n.number % SHOWN_EVERY_NIGHTS == 0 or n.events]
    lines = [
        SOAK_HEADING,
        "",
        f"Generated by `make soak` (scripts/soak.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s; "
        "do not edit by hand.",
        "",
        f"{len(history)} nights of a real local stack (`jobping stack up`), each scraping a window of {WINDOW} "
        f"postings of the bundled sample (synthetic, {totals['pool']} postings: every one is met by night "
        f"{-(-totals['pool'] // STEP)}, most again and again), draining the queue and pinging; the maintenance every "
        f"{MAINTAIN_EVERY_NIGHTS} nights, with the retention of Prefect runs and of the lake's replaced files "
        f"compressed to {RETENTION_NIGHTS} nights; the stack's logs rotate at {LOG_MAX_BYTES // 1024} KiB. "
        f"The emulator was killed on nights {', '.join(map(str, fault_nights(EMULATOR_KILLED_AT, len(history))))} "
        "after the scrape published (its messages died with it), a consumer on night(s) "
        f"{', '.join(map(str, fault_nights(CONSUMER_KILLED_AT, len(history))))} while it held a batch.",
        "",
        f"**Postings lost: {totals['lost']}**: after the last night, a scrape of every posting met published "
        f"{totals['republished']} that no night had met again since the last fault, the queue was drained, and a "
        f"second scrape found {totals['already_stored']} stored and {totals['lost']} not. "
        + ("**The soak holds.**" if holds else "**THE SOAK FAILS:** " + "; ".join(problems or ["see below"])),
        "",
        f"| size | median of nights {before[0].number}-{before[-1].number} | median of nights "
        f"{last[0].number}-{last[-1].number} | levelled off |",
        "|---|---|---|---|",
        *[f"| {name} | {half:,} | {last:,} | {'yes' if ok else 'NO'} |" for name, (ok, half, last) in checks.items()],
        "",
        f"The stack's logs: at most {largest:,} bytes on any night, against the {bound:,} that rotation allows "
        f"({LOG_BACKUPS} older files of {LOG_MAX_BYTES:,} bytes beside each part's current one): "
        f"{'bounded' if logs_ok else 'NOT BOUNDED'}.",
        "",
        "| night | seconds | published | jobs stored | Prefect DB (KiB) | Prefect runs | logs (KiB, files) "
        "| lake (KiB) "
        "| what happened |",
        "|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {n.number} | {n.seconds:.1f} | {n.published} | {n.stored_jobs} | {n.prefect_db_bytes // 1024:,} "
            f"| {n.prefect_runs} | {n.log_bytes // 1024:,} ({n.log_files}) | {n.lake_bytes // 1024:,} "
            f"| {'; '.join(n.events)} |"
            for n in shown
        ],
        "",
    ]
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    kept = text.split(SOAK_HEADING, 1)[0].rstrip()
    REPORT.write_text((kept + "\n\n" if kept else "") + "\n".join(lines), encoding="utf-8")
    return holds


def main() -> int:
    # before prefect is imported: the nights' flows log only what goes wrong
    os.environ["PREFECT_LOGGING_LEVEL"] = "ERROR"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nights", type=int, default=NIGHTS, help="how many nights to run (default 90)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    started = time.monotonic()
    history, problems, totals = run_soak(args.nights, args.keep)
    holds = write_report(history, problems, totals, time.monotonic() - started)
    print(f"soak {'holds' if holds else 'FAILS'}: {totals}; {problems}")
    return 0 if holds else 1


if __name__ == "__main__":
    raise SystemExit(main())
