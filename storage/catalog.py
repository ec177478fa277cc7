"""The DuckDB catalog file: views over the lake's Delta tables, rewritten when stale, never while anyone reads it.

The file holds only views (their SQL is in storage/views.py), so it changes only when their
definition does: when the maintenance flow has merged the history into the latest table. The
sidecar file beside it holds the stamp its views were written for; a run refreshes the file when
the lake's stamp differs. If a reader holds the file, the run logs a warning and goes on, since
the views it already has read new commits by themselves. ``jobping sql`` never opens the file:
it defines the same views in memory (storage/reader.py).

The views read the tables with ``delta_scan``, from DuckDB's delta extension: a DuckDB shell
loads it before querying them (the README says how). The file is written in DuckDB's 1.4 storage
format (STORAGE_VERSION), not in the newest one the duckdb package writes, so that older shells
open it too. A DuckDB file keeps the format it was created in, so a refresh writes a new file and
renames it over the old one.

Writing the file takes DuckDB and its delta extension, memory an analyse process otherwise never
maps (bench/RESULTS.md, Memory): that process refreshes ``in_child``, comparing the stamp itself
(through delta-rs, which it loads anyway) and leaving the writing to a short child process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from storage.delta import LakeSnapshot, Merged
from storage.lake import Lake

if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

# the views' definition; a catalog stamped with another is rebuilt ("8": scrape_runs and board_health)
CATALOG_VERSION = "8"
# the oldest DuckDB that opens the catalog file: 1.4 (the README says so; tests/test_duckdb_shell.py runs the 1.5 shell)
STORAGE_VERSION = "v1.4.0"
# a DuckDB database file says so at this offset of its first block
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
# a refresh writes a small file of views; one that takes longer is stuck on the filesystem
CHILD_TIMEOUT_SECONDS = 300


def catalog_stamp(lake: Lake, merged: Merged | None, *, sightings: bool = False, scrape_runs: bool = False) -> str:
    """What the catalog's views depend on: their definition, the last merge, whether sightings and scrape runs
    exist, the lake."""
    seen = " sightings" if sightings else ""
    runs = " scrape_runs" if scrape_runs else ""
    return f"{CATALOG_VERSION} {merged.analysed_up_to.isoformat() if merged else '-'}{seen}{runs} {lake.url}"


def sidecar(catalog: Path) -> Path:
    """The file beside the catalog holding the stamp its views were written for."""
    return catalog.with_suffix(".version")


def refresh_catalog(catalog: Path, lake: Lake | Path | str, *, in_child: bool = False) -> bool:
    """Create, update or rebuild the catalog's views when needed; False when there is nothing to view yet or the
    file could not be written. The run goes on either way.

    A reader holding the file is no error (its views read new files by themselves); a file that
    cannot be read (truncated, overwritten) is rebuilt. With ``in_child`` this process loads no
    DuckDB: it trusts a DuckDB file whose sidecar holds the current stamp, and otherwise has a child
    process refresh the file, logging the child's warnings here.
    """
    lake = Lake.of(lake)
    snapshot = LakeSnapshot.of(lake)
    if snapshot is None:
        return False
    stamp = catalog_stamp(
        lake, snapshot.merged, sightings=snapshot.sightings_version is not None,
        scrape_runs=snapshot.scrape_runs_version is not None,
    )  # fmt: skip
    if in_child:
        return _current(catalog, stamp) or _refresh_in_child(catalog, lake)
    return _refresh(catalog, lake, snapshot, stamp)


def _current(catalog: Path, stamp: str) -> bool:
    try:
        with catalog.open("rb") as file:
            head = file.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
        return head[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC and sidecar(catalog).read_text(encoding="utf-8") == stamp
    except OSError:
        return False


def _refresh(catalog: Path, lake: Lake, snapshot: LakeSnapshot, stamp: str) -> bool:
    # DuckDB only here: refresh_catalog(in_child=True) is imported by an analyse process, which never maps it
    import duckdb  # noqa: PLC0415

    from storage.views import view_statements  # noqa: PLC0415 - it imports DuckDB

    if catalog.exists():
        damage = _damage(catalog)
        if damage is not None:
            logger.warning("the catalog %s is damaged (%s): rebuilding it", catalog, damage)
            sidecar(catalog).unlink(missing_ok=True)
            catalog.unlink()
        elif sidecar(catalog).exists() and sidecar(catalog).read_text(encoding="utf-8") == stamp:
            return True
    catalog.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _held(catalog):
            statements = view_statements(
                lake, snapshot.merged, snapshot.sightings_version, snapshot.scrape_runs_version
            )
            _write_replacing(catalog, lake, statements)
    except duckdb.Error as exc:
        if _locked(exc):
            logger.warning("the catalog %s is held by another process, its views were not refreshed", catalog)
        else:
            logger.warning("the catalog %s could not be written (%s); the lake itself is intact", catalog, exc)
        return False
    except OSError as exc:
        logger.warning("the catalog %s could not be written (%s); the lake itself is intact", catalog, exc.strerror)
        return False
    sidecar(catalog).write_text(stamp, encoding="utf-8")
    return True


@contextmanager
def _held(catalog: Path) -> Iterator[None]:
    """The existing catalog file held open read-write, so a reader holding it raises IOException.

    It stays held until the new file has replaced it: no reader opens the old file meanwhile.
    """
    import duckdb  # noqa: PLC0415 - see _refresh

    if not catalog.exists():
        yield
        return
    with duckdb.connect(str(catalog)):
        yield


def _write_replacing(catalog: Path, lake: Lake, statements: list[str]) -> None:
    """Write the views into a new file in STORAGE_VERSION beside ``catalog``, then rename it over ``catalog``."""
    temp = catalog.with_name(f".{catalog.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # closing the connection checkpoints: the views are in the file and no WAL is left
        with lake.connect(str(temp), config={"storage_compatibility_version": STORAGE_VERSION}) as con:
            for statement in statements:
                con.execute(statement)
        os.replace(temp, catalog)
    finally:
        temp.unlink(missing_ok=True)
        temp.with_name(temp.name + ".wal").unlink(missing_ok=True)


def _locked(exc: duckdb.Error) -> bool:
    # "Could not set lock on file ...": another process holds the file read-write
    return "lock" in str(exc).lower()


def _damage(catalog: Path) -> str | None:
    """Why the catalog file cannot be read, or None when it can (or another process holds it)."""
    import duckdb  # noqa: PLC0415 - see _refresh

    try:
        with duckdb.connect(str(catalog), read_only=True) as con:
            con.execute("SELECT count(*) FROM duckdb_views()").fetchall()
    except (duckdb.IOException, duckdb.SerializationException) as exc:
        return None if _locked(exc) else str(exc)
    except duckdb.ConnectionException:
        return None  # open in this process already (another flow refreshing it): not damage
    return None


def _refresh_in_child(catalog: Path, lake: Lake) -> bool:
    # the child runs the code this process runs, whatever the working directory holds
    root = str(Path(__file__).resolve().parent.parent)
    script = "import sys; sys.path.insert(0, sys.argv[1]); import storage.catalog as c; c.child_main(sys.argv[2:])"
    arguments = [root, str(catalog), lake.url, lake.region, lake.s3_endpoint_url or ""]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, paths as arguments
            [sys.executable, "-c", script, *arguments],
            capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("the catalog %s could not be refreshed (%s); the lake itself is intact", catalog, exc)
        return False
    lines = done.stderr.splitlines()
    if done.returncode != 0:
        why = lines[-1] if lines else f"exit {done.returncode}"
        logger.warning("the catalog %s could not be refreshed (%s); the lake itself is intact", catalog, why)
        return False
    for line in lines:
        logger.warning("%s", line)
    return done.stdout.strip() == "1"


def child_main(argv: list[str]) -> None:
    """The child process of ``refresh_catalog(in_child=True)``: ``CATALOG LAKE REGION ENDPOINT``; prints 1 when
    the catalog is current, else 0."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    catalog, location, region, endpoint = argv
    refreshed = refresh_catalog(Path(catalog), Lake(location, s3_endpoint_url=endpoint or None, region=region))
    print("1" if refreshed else "0")
