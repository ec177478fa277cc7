"""The lake's damage, found: data files a table's log names that leave the table, are gone, or are bad.

A table's log is read from the lake, which is untrusted. Every ``add`` path is resolved inside
its own table's folder (:meth:`storage.lake.Lake.resolve`) before anything reads the file it
names. Three kinds of damage:

- a path that leaves its table (``..``, an absolute path or URI, a symlink out, the log itself);
- a data file that is gone, but only when the loss is proven (see :func:`_gone`); anything else is an
  outage (a mount, permissions, the network) and is no damage;
- a data file that is there and cannot be read.

Nothing here changes the lake: storage/repair.py drops and quarantines what is found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from jobping.text import one_line, plain
from storage.lake import DELTA_LOG, HISTORY_TABLE, LATEST_TABLE, QUARANTINE, SIGHTINGS_TABLE, Lake

logger = logging.getLogger(__name__)

# the tables a reader reads; `jobping lake repair` checks every table the lake holds
READ_TABLES = (HISTORY_TABLE, LATEST_TABLE, SIGHTINGS_TABLE)
OUTSIDE = "its path leaves the table's folder"
GONE = "the data file is gone"
# what delta-rs and polars raise when a data file of a table cannot be read (polars panics on a file shorter
# than the log says)
READ_ERRORS = (DeltaError, pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError)

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


def files_inside(lake: Lake, name: str, table: DeltaTable) -> list[str]:
    """Where the snapshot's data files inside the table are; the paths that leave it are left out, unread."""
    return [f.location for f in data_files(lake, name, table) if f.location is not None]


def tables(lake: Lake) -> list[str]:
    """The names of the lake's Delta tables."""
    logs = lake.glob(f"*/{DELTA_LOG}")
    return sorted({p.rstrip("/").rsplit("/", 2)[-2] for p in logs} - {QUARANTINE})


def open_table(lake: Lake, name: str, version: int | None = None) -> DeltaTable | None:
    try:
        return DeltaTable(lake.join(name), version=version, storage_options=lake.storage_options)
    except TableNotFoundError:
        return None


def find_damage(lake: Lake, names: Sequence[str], *, read: bool) -> list[Damage]:
    """The damage of these tables' newest snapshots: paths outside, files gone and, with ``read``, bad files.

    Raises LakeDamagedError when files are missing but their loss is not proven (an outage).
    """
    found: list[Damage] = []
    for name in names:
        table = open_table(lake, name)
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


def damage_behind(lake: Lake, error: Exception, *, search: bool) -> list[Damage]:
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
    table = open_table(lake, name)
    if table is None:
        return None
    for file in data_files(lake, name, table):
        if file.location is not None and file.location == f"{lake.resolve_root(lake.join(name))}/{relative}":
            why = unreadable(lake, file.location)
            return None if why is None else Damage(name, file.path, "unreadable", why, file.location, file.size)
    return None
