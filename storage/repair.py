"""The lake's damage, repaired so that the run goes on (what is damage: storage/damage.py).

- a path that leaves its table is dropped from the table by a repair commit; the file it names is
  never touched;
- a data file that is gone (its loss proven) is dropped by a repair commit;
- a data file that is there and cannot be read is moved to ``quarantine/``, then dropped.

A repair commit is a Delta commit of ``remove`` actions whose commitInfo says, under ``jobping.repair``,
which path went and why; each is logged too. The latest table is made from the history: damage
there drops the whole table, which the next maintenance makes again.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from deltalake import DeltaTable

from jobping.text import plain
from storage.damage import (
    OUTSIDE,
    Damage,
    LakeDamagedError,
    damage_behind,
    data_files,
    find_damage,
    open_table,
    tables,
)
from storage.delta import DeltaLatest, LakeSnapshot
from storage.lake import DELTA_LOG, HISTORY_TABLE, LATEST_TABLE, SCRAPE_RUNS_TABLE, SIGHTINGS_TABLE, Lake

# LakeDamagedError: what a repair raises too; `from storage.repair import LakeDamagedError` keeps working
__all__ = [
    "MAX_QUARANTINED_PER_OPEN",
    "REPAIR_RECORD",
    "LakeDamagedError",
    "LakeRepair",
    "guarded_snapshot",
    "inside",
    "quarantining",
    "repair",
    "repair_lake",
    "repair_unread",
]

T = TypeVar("T")

logger = logging.getLogger(__name__)

# damaged files one open of the lake repairs before it gives up and asks for a person (`jobping lake repair`)
MAX_QUARANTINED_PER_OPEN = 20
# what a repair commit's commitInfo holds: a list of {"path", "why"}
REPAIR_RECORD = "jobping.repair"
# a log that names files outside its table again after each repair is a writer at work: stop and say so
GUARD_ATTEMPTS = 3
# a repair commit that finds its version taken reads the log again and tries the next one, this often
COMMIT_ATTEMPTS = 10


def inside(lake: Lake, name: str, table: DeltaTable) -> list[str]:
    """The snapshot's data files inside the table, for a reader; paths that leave it are dropped first."""
    files = data_files(lake, name, table)
    outside = [Damage(name, f.path, "outside", OUTSIDE) for f in files if f.location is None]
    if outside:
        repair(lake, outside)
    return [f.location for f in files if f.location is not None]


def guarded_snapshot(lake: Lake) -> LakeSnapshot | None:
    """The lake's snapshot, once no table of it names a file outside the table (those are dropped first)."""
    for _attempt in range(GUARD_ATTEMPTS):
        snapshot = LakeSnapshot.of(lake)
        if snapshot is None:
            return None
        pinned = {
            HISTORY_TABLE: snapshot.history_version, LATEST_TABLE: snapshot.latest_version,
            SIGHTINGS_TABLE: snapshot.sightings_version, SCRAPE_RUNS_TABLE: snapshot.scrape_runs_version,
        }  # fmt: skip
        found = [
            Damage(name, f.path, "outside", OUTSIDE)
            for name, version in pinned.items()
            if version is not None and (table := open_table(lake, name, version)) is not None
            for f in data_files(lake, name, table)
            if f.location is None
        ]
        if not found:
            return snapshot
        repair(lake, found)
    raise LakeDamagedError(f"the logs of {lake} name files outside their tables again after each repair: see the logs")


def repair(lake: Lake, damage: Sequence[Damage]) -> None:
    """Quarantine the bad files that are there, and drop every damaged path from its table by one repair commit."""
    for item in damage:
        if item.kind == "unreadable" and item.location is not None:
            lake.quarantine(item.location, item.why)
    for name in sorted({item.table for item in damage}):
        mine = [item for item in damage if item.table == name]
        if name == LATEST_TABLE:
            DeltaLatest(lake).drop()
            continue
        _remove(lake, name, mine)


def _remove(lake: Lake, name: str, damage: list[Damage]) -> None:
    """One commit of ``remove`` actions for the damaged paths, naming each as the log spelled its add.

    Written here, not by delta-rs: its removes re-encode the path they are given, so an add a forger
    spelled in a way no writer would (``%2E%2E``) could never be removed, and every open would stop on it.
    The commit is created only if its version is free (a link on a local lake, a conditional put on S3),
    as delta-rs's own commits are; a version taken by another writer is read, and the next one tried.
    """
    for _attempt in range(COMMIT_ATTEMPTS):
        table = open_table(lake, name)
        if table is None:
            return
        still = {f.path for f in data_files(lake, name, table)}
        # another reader may have repaired them first
        damage = [item for item in damage if item.path in still]
        if not damage:
            return
        if _commit(lake, name, table.version() + 1, _removal(damage)):
            for item in damage:
                logger.warning("repair commit on %s: dropped %s (%s)", lake.join(name), plain(item.path), item.why)
            return
    raise LakeDamagedError(f"the repair of {lake.join(name)} lost {COMMIT_ATTEMPTS} races to other writers")


def _removal(damage: list[Damage]) -> bytes:
    now = int(time.time() * 1000)
    info = {
        "timestamp": now, "operation": "FSCK", "operationParameters": {}, "isBlindAppend": False,
        "clientVersion": "jobping", REPAIR_RECORD: [{"path": item.path, "why": item.why} for item in damage],
    }  # fmt: skip
    # no partitionValues (extendedFileMetadata false): the change feed then reads no file that is gone
    removes = [
        {"remove": {"path": item.path, "dataChange": True, "deletionTimestamp": now, "extendedFileMetadata": False}}
        for item in damage
    ]
    return "".join(json.dumps(action) + "\n" for action in [{"commitInfo": info}, *removes]).encode("utf-8")


def _commit(lake: Lake, name: str, version: int, data: bytes) -> bool:
    """Create the table's commit ``version`` with ``data``; False when another writer has it already."""
    target = f"{lake.join(name, DELTA_LOG)}/{version:020d}.json"
    if lake.remote:
        try:
            lake.fs.pipe_file(target, data, mode="create")
        except FileExistsError:
            return False
        except OSError:
            if lake.fs.exists(target):
                return False
            raise
        return True
    temp = f"{lake.join(name, DELTA_LOG)}/.{version:020d}.{uuid.uuid4().hex}.json.tmp"
    with open(temp, "wb") as out:
        out.write(data)
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    return True


def quarantining(
    lake: Lake,
    work: Callable[[], T],
    *,
    search: bool = False,
    errors: tuple[type[Exception], ...] | None = None,
) -> T:
    """Run ``work``; when it fails on damaged lake files, repair them and run it again.

    The reader's probe finds a damaged footer when it opens; a damaged page inside a file shows
    only when a query reads it, so whatever reads the lake's rows runs under this too. A file the
    error names is read to prove it bad; an error of reach (a file not found, an IO error) has the
    tables' files checked for ones gone; with ``search``, for work whose only failure can be the
    data, every file is read too. One call repairs MAX_QUARANTINED_PER_OPEN files at most.
    """
    import duckdb  # noqa: PLC0415 - see unreadable

    caught = errors or (duckdb.Error,)
    budget = MAX_QUARANTINED_PER_OPEN
    while True:
        try:
            return work()
        except caught as exc:
            found = damage_behind(lake, exc, search=search)
            if not found:
                raise
            if len(found) > budget:
                raise LakeDamagedError(
                    f"{len(found)} damaged files in {lake}, more than one open repairs ({budget}): nothing more was "
                    "changed; check the lake's disk or mount, then `jobping lake repair` drops them"
                ) from exc
            budget -= len(found)
            repair(lake, found)


@dataclass(frozen=True)
class LakeRepair:
    """What `jobping lake repair` found and did."""

    tables: int
    files: int
    damage: list[Damage]
    dry_run: bool

    def lines(self) -> list[str]:
        """One line per file dropped or quarantined (or that would be, in a dry run)."""
        lines = []
        for item in self.damage:
            if item.kind == "unreadable":
                verb = "would quarantine and drop" if self.dry_run else "quarantined and dropped"
            else:
                verb = "would drop" if self.dry_run else "dropped"
            lines.append(item.line(verb))
        return lines

    def summary(self) -> str:
        if not self.damage:
            return f"the lake is clean: {self.files} data files of {self.tables} tables checked"
        done = "would be repaired (dry run: nothing changed)" if self.dry_run else "repaired by repair commits"
        return f"{len(self.damage)} of {self.files} data files of {self.tables} tables {done}"


def repair_lake(lake: Lake, *, dry_run: bool = False) -> LakeRepair:
    """Check every table of the lake, reading every data file, and repair what is damaged (unless ``dry_run``).

    No cap on how many files: a person asked. The outage rule holds all the same.
    """
    names = tables(lake)
    if HISTORY_TABLE not in names:
        raise LakeDamagedError(f"no lake at {lake}: it holds no {HISTORY_TABLE} table to check")
    counted = sum(len(data_files(lake, n, t)) for n in names if (t := open_table(lake, n)) is not None)
    found = find_damage(lake, names, read=True)
    if found and not dry_run:
        repair(lake, found)
    return LakeRepair(tables=len(names), files=counted, damage=found, dry_run=dry_run)


def repair_unread(lake: Lake) -> list[Damage]:
    """Repair, before any file is read, what the logs alone show: paths outside their tables and files gone.

    Capped as one open is (MAX_QUARANTINED_PER_OPEN); a maintenance reads every file, the damage inside
    one shows then (see :func:`quarantining`).
    """
    found = find_damage(lake, tables(lake), read=False)
    if len(found) > MAX_QUARANTINED_PER_OPEN:
        raise LakeDamagedError(
            f"{len(found)} damaged files in {lake}, more than one open repairs ({MAX_QUARANTINED_PER_OPEN}): nothing "
            "was changed; check the lake's disk or mount, then `jobping lake repair` drops them"
        )
    repair(lake, found)
    return found
