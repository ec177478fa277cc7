"""A lake written by jobping before Delta (Parquet batch folders and compactions), converted into the history table.

The old layout, read here and nowhere else:

    enriched_jobs/scrape_date=D/<stamp>-<id>.parquet      batches, named by the moment they were written
    enriched_jobs_compacted/manifest-<generation>.json    the newest names every compacted file and a
    enriched_jobs_compacted/<generation>/...              watermark: batches named up to it are merged

Every row it held (the compacted files of the newest manifest, and the batches after its
watermark) is appended to the history table in one commit that carries a Delta app
transaction: a second process converting at the same moment fails to commit, and a run
after a crash sees that the conversion is done (the commit is checked against the snapshot
in which none was found). Only then do the old folders move to
``migrated/<stamp>/``; nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

import polars as pl
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import CommitProperties, Transaction

from storage.delta import DeltaHistory
from storage.lake import Lake, sql_literal
from storage.rows import PARTITION, ROW_SCHEMA

logger = logging.getLogger(__name__)

LEGACY_BATCHES = "enriched_jobs"
LEGACY_COMPACTED = "enriched_jobs_compacted"
MIGRATED = "migrated"
# the Delta app transaction that marks the conversion done
MIGRATION_APP_ID = "jobping-parquet-lake"
COMMIT_ATTEMPTS = 5
STAMP_WIDTH = len("20260101T000000000000Z")
STAMP_PATTERN = re.compile(r"\d{8}T\d{12}Z")
PLACEHOLDER = "00000000T000000000000Z-placeholder.parquet"
DUCKDB_TYPES: dict[pl.DataType | type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Datetime("us", "UTC"): "TIMESTAMP WITH TIME ZONE",
    pl.List(pl.String): "VARCHAR[]",
}


class MigrationError(RuntimeError):
    """The old lake could not be converted; it is left as it was."""


@dataclass(frozen=True)
class Migration:
    rows: int
    job_keys: int
    # where the Parquet folders went
    moved_to: str


def has_legacy_lake(lake: Lake) -> bool:
    return lake.exists(lake.join(LEGACY_BATCHES)) or lake.exists(lake.join(LEGACY_COMPACTED))


def migrate(lake: Lake) -> Migration | None:
    """Convert an old Parquet lake into the history table; None when there is none to convert.

    Safe to call at the start of every run: without old folders it costs two existence checks.
    """
    if not has_legacy_lake(lake):
        return None
    history = DeltaHistory(lake)
    history.ensure()
    rows: pl.DataFrame | None = None
    committed = False
    for _attempt in range(COMMIT_ATTEMPTS):
        # the snapshot the conversion is checked against: one another process commits after it fails ours
        snapshot = history.table()
        if snapshot.transaction_version(MIGRATION_APP_ID) is not None:
            break
        if rows is None:
            files = legacy_files(lake)
            try:
                rows = _read(lake, files)
            except MigrationError:
                if history.table().transaction_version(MIGRATION_APP_ID) is not None:
                    break  # another process converted it and moved the files away while they were read
                raise
        commit = CommitProperties(
            app_transactions=[Transaction(app_id=MIGRATION_APP_ID, version=1)],
            custom_metadata={"jobping.migrated_rows": str(rows.height), "jobping.migrated_files": str(len(files))},
        )
        try:
            history.append(rows, commit=commit, snapshot=snapshot)
        except CommitFailedError as exc:
            # another conversion won, or another process created the table at the same moment: look again
            logger.info("the conversion's commit lost a race (%s); looking again", exc)
            continue
        committed = True
        break
    else:
        raise MigrationError(f"the converted rows could not be committed in {COMMIT_ATTEMPTS} attempts")
    if not committed or rows is None:
        # converted by another process, or by a run that crashed before it moved the folders
        rows = pl.DataFrame(schema=ROW_SCHEMA)
    moved_to = lake.join(MIGRATED, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    for folder in (LEGACY_BATCHES, LEGACY_COMPACTED):
        try:
            if lake.exists(lake.join(folder)):
                lake.fs.makedirs(moved_to, exist_ok=True)
                lake.fs.mv(lake.join(folder), f"{moved_to}/{folder}", recursive=True)
        except FileNotFoundError:
            continue  # moved by the process that converted it, at the same moment
    keys = rows["job_key"].n_unique() if rows.height else 0
    logger.warning(
        "converted the lake %s to Delta: %d rows of %d jobs; the Parquet folders are in %s",
        lake, rows.height, keys, moved_to,
    )  # fmt: skip
    return Migration(rows=rows.height, job_keys=keys, moved_to=moved_to)


def legacy_files(lake: Lake) -> list[str]:
    """The Parquet files holding every row of the old lake, each row once."""
    watermark, compacted = _newest_manifest(lake) or ("", [])
    batches = [
        path
        for path in lake.glob(f"{LEGACY_BATCHES}/{PARTITION}=*/*.parquet")
        if PurePosixPath(path).name != PLACEHOLDER and PurePosixPath(path).name[:STAMP_WIDTH] > watermark
    ]
    return sorted(compacted) + batches


def _newest_manifest(lake: Lake) -> tuple[str, list[str]] | None:
    """The watermark and files of the newest manifest the old compaction wrote, checked: the lake is untrusted."""
    root = lake.join(LEGACY_COMPACTED) + "/"
    for path in reversed(lake.glob(f"{LEGACY_COMPACTED}/manifest-*.json")):
        try:
            data = json.loads(lake.fs.cat_file(path))
            watermark, latest, superseded = data["watermark"], data["latest"], data["superseded"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            logger.warning("ignoring %s, which is not a manifest jobping wrote: %s", path, exc)
            continue
        named = [*latest, *superseded] if isinstance(latest, list) and isinstance(superseded, list) else []
        files = [found for p in named if (found := _rebased(p, root))]
        if not isinstance(watermark, str) or not STAMP_PATTERN.fullmatch(watermark) or len(files) != len(named):
            logger.warning("ignoring %s, which names files outside %s or no watermark", path, root)
            continue
        return watermark, files
    return None


def _rebased(path: object, root: str) -> str | None:
    """The compacted file a manifest names, under this lake's compacted folder wherever the lake was then.

    Manifests hold absolute paths; a lake moved since (another data folder, a restored backup)
    still converts. None for anything but a Parquet file inside the compacted folder.
    """
    if not isinstance(path, str) or f"/{LEGACY_COMPACTED}/" not in path or not path.endswith(".parquet"):
        return None
    relative = path.rsplit(f"/{LEGACY_COMPACTED}/", 1)[1]
    if ".." in PurePosixPath(relative).parts or "'" in relative:
        return None
    return root + relative


def _read(lake: Lake, files: list[str]) -> pl.DataFrame:
    """Every row of ``files``, with the columns of ROW_SCHEMA (NULL where a file predates one)."""
    if not files:
        return pl.DataFrame(schema=ROW_SCHEMA)
    typed = ", ".join(f'CAST(NULL AS {DUCKDB_TYPES[dtype]}) AS "{name}"' for name, dtype in ROW_SCHEMA.items())
    columns = ", ".join(f'"{name}"' for name in ROW_SCHEMA)
    listed = "[" + ", ".join(sql_literal(p) for p in files) + "]"
    query = (
        f"SELECT {columns} FROM (SELECT {typed} WHERE false UNION ALL BY NAME "  # noqa: S608 - our own paths, quoted
        f"SELECT * FROM read_parquet({listed}, union_by_name = true, hive_partitioning = false))"
    )
    # DuckDB and the views only for an old lake: open_lake runs at every analyse, which never loads DuckDB
    import duckdb  # noqa: PLC0415

    from storage.catalog import unreadable  # noqa: PLC0415

    with lake.connect() as con:
        try:
            frame = pl.from_arrow(con.execute(query).fetch_arrow_table())
        except duckdb.Error as exc:
            damaged = [(path, why) for path in files if (why := unreadable(lake, path))]
            if not damaged:
                raise MigrationError(f"the old lake could not be read: {exc}") from exc
            for path, why in damaged:
                lake.quarantine(path, why)
            return _read(lake, [p for p in files if p not in dict(damaged)])
    assert isinstance(frame, pl.DataFrame)
    return frame
