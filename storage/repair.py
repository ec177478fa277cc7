"""The lake's damage, found and repaired: data files a table's log names that leave the table, are gone, or are bad.

A table's log is read from the lake, which is untrusted. Every ``add`` path is resolved inside
its own table's folder (:meth:`storage.lake.Lake.resolve`) before anything reads, moves or
deletes the file it names. Three kinds of damage, each repaired so that the run goes on:

- a path that leaves its table (``..``, an absolute path or URI, a symlink out, the log itself):
  dropped from the table by a repair commit; the file it names is never touched;
- a data file that is gone: dropped by a repair commit, but only when the loss is proven (see
  :func:`_gone`); anything else is an outage (a mount, permissions, the network) and drops nothing;
- a data file that is there and cannot be read: moved to ``quarantine/``, then dropped.

A repair commit is a Delta commit of ``remove`` actions whose commitInfo says, under ``jobping.repair``,
which path went and why; each is logged too. The latest table is made from the history: damage
there drops the whole table, which the next maintenance makes again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from jobping.text import one_line, plain
from storage.delta import DeltaLatest, LakeSnapshot
from storage.lake import DELTA_LOG, HISTORY_TABLE, LATEST_TABLE, QUARANTINE, SIGHTINGS_TABLE, Lake

T = TypeVar("T")

logger = logging.getLogger(__name__)

# damaged files one open of the lake repairs before it gives up and asks for a person (`jobping lake repair`)
MAX_QUARANTINED_PER_OPEN = 20
# what a repair commit's commitInfo holds: a list of {"path", "why"}
REPAIR_RECORD = "jobping.repair"
# the tables a reader reads; `jobping lake repair` checks every table the lake holds
READ_TABLES = (HISTORY_TABLE, LATEST_TABLE, SIGHTINGS_TABLE)
# a log that names files outside its table again after each repair is a writer at work: stop and say so
GUARD_ATTEMPTS = 3
# a repair commit that finds its version taken reads the log again and tries the next one, this often
COMMIT_ATTEMPTS = 10
OUTSIDE = "its path leaves the table's folder"
GONE = "the data file is gone"

Kind = Literal["outside", "gone", "unreadable"]


class LakeDamagedError(RuntimeError):
    """The lake has more damaged files than one open repairs, or looks unreachable rather than damaged."""


@dataclass(frozen=True)
class Damage:
    """A data file a table's log names, that no reader should read."""

    table: str
    # the add action's path, as the log spells it (a remove names it so)
    path: str
    kind: Kind
    why: str
    # where the file is inside the table; None when the path leaves it
    location: str | None = None
    size: int | None = None

    def line(self, action: str) -> str:
        # the path comes from the log: shown with its control characters blanked
        return f"{action} {plain(self.path)} in {self.table}: {one_line(self.why)}"


@dataclass(frozen=True)
class DataFile:
    path: str
    size: int | None
    location: str | None


def data_files(lake: Lake, name: str, table: DeltaTable) -> list[DataFile]:
    """The data files of ``table``'s snapshot, each with where it resolves inside the table (None: outside)."""
    actions = table.get_add_actions(flatten=False)
    paths, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
    uri = lake.join(name)
    return [DataFile(str(p), s, lake.resolve(uri, str(p))) for p, s in zip(paths, sizes, strict=True)]


def inside(lake: Lake, name: str, table: DeltaTable) -> list[str]:
    """The snapshot's data files inside the table, for a reader; paths that leave it are dropped first."""
    files = data_files(lake, name, table)
    outside = [Damage(name, f.path, "outside", OUTSIDE) for f in files if f.location is None]
    if outside:
        repair(lake, outside)
    return [f.location for f in files if f.location is not None]


def tables(lake: Lake) -> list[str]:
    """The names of the lake's Delta tables."""
    logs = lake.glob(f"*/{DELTA_LOG}")
    return sorted({p.rstrip("/").rsplit("/", 2)[-2] for p in logs} - {QUARANTINE})


def _open(lake: Lake, name: str, version: int | None = None) -> DeltaTable | None:
    try:
        return DeltaTable(lake.join(name), version=version, storage_options=lake.storage_options)
    except TableNotFoundError:
        return None


def guarded_snapshot(lake: Lake) -> LakeSnapshot | None:
    """The lake's snapshot, once no table of it names a file outside the table (those are dropped first)."""
    for _attempt in range(GUARD_ATTEMPTS):
        snapshot = LakeSnapshot.of(lake)
        if snapshot is None:
            return None
        pinned = {
            HISTORY_TABLE: snapshot.history_version, LATEST_TABLE: snapshot.latest_version,
            SIGHTINGS_TABLE: snapshot.sightings_version,
        }  # fmt: skip
        found = [
            Damage(name, f.path, "outside", OUTSIDE)
            for name, version in pinned.items()
            if version is not None and (table := _open(lake, name, version)) is not None
            for f in data_files(lake, name, table)
            if f.location is None
        ]
        if not found:
            return snapshot
        repair(lake, found)
    raise LakeDamagedError(f"the logs of {lake} name files outside their tables again after each repair: see the logs")


def find_damage(lake: Lake, names: Sequence[str], *, read: bool) -> list[Damage]:
    """The damage of these tables' newest snapshots: paths outside, files gone and, with ``read``, bad files.

    Raises LakeDamagedError when files are missing but their loss is not proven (an outage).
    """
    found: list[Damage] = []
    for name in names:
        table = _open(lake, name)
        if table is None:
            continue
        files = data_files(lake, name, table)
        found += [Damage(name, f.path, "outside", OUTSIDE) for f in files if f.location is None]
        present = [f for f in files if f.location is not None]
        gone = _gone(lake, name, present)
        found += [Damage(name, f.path, "gone", GONE, f.location, f.size) for f in gone]
        if read:
            for f in present:
                if f in gone or f.location is None:
                    continue
                why = unreadable(lake, f.location)
                if why is not None:
                    found.append(Damage(name, f.path, "unreadable", why, f.location, f.size))
    return found


def _gone(lake: Lake, name: str, files: list[DataFile]) -> list[DataFile]:
    """The files that are proven gone: not found, while the table's folder, its log and another of its files are.

    An outage does not look like that: a mount that is gone takes the folder and the log with it,
    permissions and a failing disk answer with another error than "not found", and a lake that is
    only partly reachable answers "not found" for every file. So a file is dropped only on "not found"
    for it, with the table's folder and log listed and at least one other data file of it found
    (the latest table, made from the history, needs no other file); else LakeDamagedError, and nothing goes.
    """
    uri = lake.join(name)
    outage = "an outage, nothing dropped"
    try:
        listed = {p.rstrip("/").rsplit("/", 1)[-1] for p in lake.fs.ls(uri, detail=False)}
        # on S3 one listing of the table answers for every file, and only the unlisted ones are asked about
        everything = {f"s3://{p}" for p in lake.fs.find(uri)} if lake.remote else None
    except OSError as exc:
        raise LakeDamagedError(f"the table {uri} cannot be listed ({one_line(exc)}): {outage}") from exc
    if DELTA_LOG not in listed:
        raise LakeDamagedError(f"the table {uri} lists no {DELTA_LOG}: {outage}")
    gone = []
    for file in files:
        if file.location is None or (everything is not None and file.location in everything):
            continue
        try:
            lake.fs.info(file.location)
        except FileNotFoundError:
            gone.append(file)
        except OSError as exc:
            raise LakeDamagedError(f"{file.location} cannot be reached ({one_line(exc)}): {outage}") from exc
    if gone and len(gone) == len(files) and name != LATEST_TABLE:
        raise LakeDamagedError(
            f"every data file of {uri} is missing ({len(gone)}) while its log is there: "
            "an outage or an emptied folder, nothing dropped"
        )
    return gone


def unreadable(lake: Lake, path: str) -> str | None:
    """Why the lake file ``path`` cannot be read, or None when it can (or cannot be reached now)."""
    # DuckDB only here: an analyse process loads it only to prove a file bad (storage.store)
    import duckdb  # noqa: PLC0415

    with lake.connect() as probe:
        try:
            # every column of every row: a count alone reads only the footer
            probe.execute("SELECT max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM read_parquet(?)", [path]).fetchall()
        except (duckdb.IOException, duckdb.HTTPException):
            return None  # could not be reached (network, permissions, gone): not proof that the file is bad
        except duckdb.Error as exc:
            return one_line(exc, 1_000)
    return None


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
        table = _open(lake, name)
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
            found = _damage_behind(lake, exc, search=search)
            if not found:
                raise
            if len(found) > budget:
                raise LakeDamagedError(
                    f"{len(found)} damaged files in {lake}, more than one open repairs ({budget}): nothing more was "
                    "changed; check the lake's disk or mount, then `jobping lake repair` drops them"
                ) from exc
            budget -= len(found)
            repair(lake, found)


def _damage_behind(lake: Lake, error: Exception, *, search: bool) -> list[Damage]:
    named = _named_file(lake, error)
    if named is not None:
        return [named]
    import duckdb  # noqa: PLC0415 - see unreadable

    reach = isinstance(error, duckdb.IOException | duckdb.HTTPException | OSError)
    if not (search or reach):
        return []
    return find_damage(lake, READ_TABLES, read=search)


# DuckDB names the file in single quotes when opening it, in double quotes when reading its pages
UNREADABLE_FILE = re.compile(r"""file ['"]([^'"]+\.parquet)['"]""", re.IGNORECASE)


def _named_file(lake: Lake, error: Exception) -> Damage | None:
    """The data file ``error`` names, when it is inside one of the lake's tables and really cannot be read."""
    found = UNREADABLE_FILE.search(str(error))
    located = None if found is None else lake.locate(found.group(1))
    if located is None:
        return None
    name, relative = located
    table = _open(lake, name)
    if table is None:
        return None
    for file in data_files(lake, name, table):
        if file.location is not None and file.location == f"{lake.resolve_root(lake.join(name))}/{relative}":
            why = unreadable(lake, file.location)
            return None if why is None else Damage(name, file.path, "unreadable", why, file.location, file.size)
    return None


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
    counted = sum(len(data_files(lake, n, t)) for n in names if (t := _open(lake, n)) is not None)
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
