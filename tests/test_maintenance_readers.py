"""Readers beside writers and maintenance: every job shown once, and reads go on while maintenance is under way."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from storage import maintenance
from storage.delta import DeltaHistory
from storage.lake import HISTORY_TABLE, Lake
from storage.maintenance import DEFAULT_RETENTION, TableMaintenance, maintain
from storage.reader import reader
from storage.views import LATEST_VIEW
from tests.lakes import write_rows
from tests.test_maintenance import latest
from tests.test_storage import row
from tests.waiting import wait_until

# maintenances the readers must see through; each waits for a read for at most READ_DEADLINE_SECONDS
MAINTENANCES = 3
READ_DEADLINE_SECONDS = 60.0
MAINTENANCE_DEADLINE_SECONDS = 240.0


def test_readers_see_every_job_once_while_writers_and_maintenance_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers add batches, a maintainer merges and compacts them over and over, readers count.

    Each maintenance stops halfway (the history compacted, the latest table not yet) until a read
    that began after it stopped has completed: readers make progress while maintenance is under way.
    """
    lake = Lake(tmp_path)
    DeltaHistory(lake).ensure()
    stop, first_write = threading.Event(), threading.Event()
    written: list[int] = [0]
    problems: list[str] = []
    maintenances, reads = [0], [0]
    # maintenances that waited halfway (the history compacted, the latest table not) until a read completed
    read_halfway = [0]
    # the maintenance under way, while it waits for a read: an Event a reader sets when its read completes
    halfway: list[threading.Event | None] = [None]
    compact = maintenance.maintain_table

    def compact_then_wait_for_a_read(table: DeltaTable, retention: timedelta = DEFAULT_RETENTION) -> TableMaintenance:
        done = compact(table, retention)
        if not table.table_uri.rstrip("/").endswith(HISTORY_TABLE):
            return done
        read = threading.Event()
        # published before stop is asked, as the test's end sets stop before it opens what is published
        halfway[0] = read
        if not stop.is_set():
            if read.wait(timeout=READ_DEADLINE_SECONDS):
                read_halfway[0] += 1
            else:
                problems.append(f"no read completed in {READ_DEADLINE_SECONDS:.0f} s while maintenance was under way "
                                f"({reads[0]} reads in all, {written[0]} jobs written)")  # fmt: skip
        halfway[0] = None
        return done

    monkeypatch.setattr(maintenance, "maintain_table", compact_then_wait_for_a_read)

    def write() -> None:
        job = 0
        while not stop.is_set():
            write_rows(lake, [row(str(job + i), 50, analysed=datetime.now(UTC)) for i in range(5)])
            job += 5
            written[0] = job
            first_write.set()
            # every tenth batch analyses earlier jobs again
            if job % 50 == 0:
                write_rows(lake, [row(str(j), 70, analysed=datetime.now(UTC)) for j in range(0, job, 7)])

    def maintain_often() -> None:
        while not stop.is_set():
            try:
                # vacuum keeps an hour: a reader's snapshot stays readable
                maintain(lake, timedelta(hours=1))
                maintenances[0] += 1
            except Exception as exc:
                problems.append(f"maintenance: {exc!r}")

    def read() -> None:
        first_write.wait()
        while not stop.is_set():
            floor, during = written[0], halfway[0]
            try:
                with reader(lake) as con:
                    total, distinct = con.execute(
                        f"SELECT count(*), count(DISTINCT job_key) FROM {LATEST_VIEW}"
                    ).fetchall()[0]
            except Exception as exc:
                problems.append(f"reader: {exc!r}")
                continue
            reads[0] += 1
            if during is not None:
                during.set()
            if total != distinct:
                problems.append(f"a job shown twice: {total} rows for {distinct} jobs")
            if distinct < floor:
                problems.append(f"jobs missing: {distinct} shown, {floor} written before the query")

    threads = [threading.Thread(target=f) for f in (write, maintain_often, read, read)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: problems or min(maintenances[0], read_halfway[0]) >= MAINTENANCES,
                   timeout=MAINTENANCE_DEADLINE_SECONDS,
                   what=f"{MAINTENANCES} maintenances, each with a read completed halfway through it",
                   seen=lambda: f"{maintenances[0]} maintenances, {read_halfway[0]} with a read halfway")  # fmt: skip
    finally:
        stop.set()
        first_write.set()
        if (waiting := halfway[0]) is not None:
            waiting.set()
        for thread in threads:
            thread.join()

    assert problems == []
    assert len(latest(lake)) == written[0]
