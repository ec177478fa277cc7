"""A lake of Parquet batch folders and compactions, converted into the Delta history table.

The rows are read through today's views (every row of ``enriched_jobs_history``), written as
a Delta table beside the old folders, counted again, and only then swapped in: the old
folders move to ``migrated/<stamp>/``, nothing is deleted. A crash before the swap leaves
the old lake as it was (the half-written table is made again); a crash during the swap is
finished by the next call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from storage.catalog import HISTORY_VIEW, LakeEmptyError, reader
from storage.compaction import COMPACTED
from storage.delta import DeltaHistory
from storage.lake import ROW_SCHEMA, TABLE, Lake

logger = logging.getLogger(__name__)

MIGRATED = "migrated"
MIGRATING = f".migrating-{TABLE}"


class MigrationError(RuntimeError):
    """The Delta table did not get every row of the Parquet lake; the old lake is left as it was."""


@dataclass(frozen=True)
class Migration:
    rows: int
    job_keys: int
    # where the Parquet folders went
    moved_to: str


def is_delta(lake: Lake) -> bool:
    return lake.exists(lake.join(TABLE, "_delta_log"))


def migrate(lake: Lake, storage_options: dict[str, str] | None = None) -> Migration | None:
    """Convert the lake into the Delta history table; None when it is Delta already or empty."""
    staged = lake.join(MIGRATING)
    if is_delta(lake):
        return None
    if not lake.exists(lake.join(TABLE)) and lake.exists(lake.join(MIGRATING, "_delta_log")):
        # a swap that a crash cut short: the old folders are moved already
        lake.fs.mv(staged, lake.join(TABLE), recursive=True)
        return None
    try:
        con = reader(lake)
    except LakeEmptyError:
        return None
    with con:
        columns = ", ".join(f'"{name}"' for name in ROW_SCHEMA)
        rows = pl.from_arrow(con.execute(f"SELECT {columns} FROM {HISTORY_VIEW}").fetch_arrow_table())  # noqa: S608
    assert isinstance(rows, pl.DataFrame)
    # counted from the rows read, the same way the Delta table is counted below: the lake is read once
    expected = (rows.height, rows["job_key"].n_unique())
    if lake.exists(staged):
        lake.fs.rm(staged, recursive=True)
    DeltaHistory(staged, storage_options).append_frame(rows)
    got = (
        pl.scan_delta(staged, storage_options=storage_options)
        .select(pl.len(), pl.col("job_key").n_unique())
        .collect()
        .row(0)
    )
    if tuple(got) != tuple(expected):
        raise MigrationError(f"the Delta table holds {got} (rows, job_keys), the Parquet lake {expected}")
    moved_to = lake.join(MIGRATED, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    lake.fs.makedirs(moved_to, exist_ok=True)
    for folder in (TABLE, COMPACTED):
        if lake.exists(lake.join(folder)):
            lake.fs.mv(lake.join(folder), f"{moved_to}/{folder}", recursive=True)
    lake.fs.mv(staged, lake.join(TABLE), recursive=True)
    logger.warning(
        "converted the lake %s to Delta: %d rows of %d jobs; the Parquet folders are in %s",
        lake, expected[0], expected[1], moved_to,
    )  # fmt: skip
    return Migration(rows=int(expected[0]), job_keys=int(expected[1]), moved_to=moved_to)
