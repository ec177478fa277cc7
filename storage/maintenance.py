"""The lake's maintenance: the history merged into the latest table, then every table compacted,
checkpointed and vacuumed; each step is a Delta commit (the tables: storage/delta.py).

Run by the compact flow, on its schedule or by `jobping compact`, while analyse appends and readers query.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from deltalake import DeltaTable

from storage.damage import open_table
from storage.delta import WRITER, DeltaHistory, DeltaLatest, DeltaSightings, Merged
from storage.lake import SCRAPE_RUNS_TABLE, Lake

logger = logging.getLogger(__name__)

# readers holding an older snapshot keep its files this long; Delta's own default, too
DEFAULT_RETENTION = timedelta(days=7)
# what optimize aims each rewritten file at
TARGET_FILE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class TableMaintenance:
    """What one round of optimize, checkpoint and vacuum did to a table."""

    version: int
    files_added: int
    files_removed: int
    files_vacuumed: int


def maintain_table(table: DeltaTable, retention: timedelta = DEFAULT_RETENTION) -> TableMaintenance:
    """Compact small files, write a checkpoint (forgetting expired commits), and delete files no snapshot
    within ``retention`` needs."""
    metrics = table.optimize.compact(target_size=TARGET_FILE_BYTES, writer_properties=WRITER)
    table.create_checkpoint()
    # the log's commits older than delta.logRetentionDuration (Delta's 30 days) and before this
    # checkpoint go: without it the log grows by every maintenance's commits forever
    table.cleanup_metadata()
    hours = max(0, int(retention.total_seconds() // 3600))
    vacuumed = table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
    return TableMaintenance(
        version=table.version(),
        files_added=int(metrics.get("numFilesAdded", 0)),
        files_removed=int(metrics.get("numFilesRemoved", 0)),
        files_vacuumed=len(vacuumed),
    )


@dataclass(frozen=True)
class LakeMaintenance:
    """What one maintenance of the lake did."""

    merged: Merged
    history: TableMaintenance
    latest: TableMaintenance
    seconds: float


def maintain(lake: Lake, retention: timedelta = DEFAULT_RETENTION) -> LakeMaintenance | None:
    """Merge the history into the latest table, then optimize, checkpoint and vacuum both; None on an empty lake.

    The merge comes first: vacuum may delete the files of commits it has not read yet only
    once they are older than ``retention``, and by then every maintenance has merged them.
    """
    started = time.perf_counter()
    scrape_runs = open_table(lake, SCRAPE_RUNS_TABLE)
    if scrape_runs is not None:
        # each scrape appended a small file of its boards' runs, before any analysis perhaps
        maintain_table(scrape_runs, retention)
    history, latest = DeltaHistory(lake), DeltaLatest(lake)
    if not history.exists():
        return None
    # columns a newer ROW_SCHEMA added, which the merge reads
    history.ensure(create=False)
    latest.ensure_columns()
    merged = latest.merge(history)
    sightings = DeltaSightings(lake)
    if sightings.exists():
        # each analyse batch with sightings appended a small file: compacted like the others
        maintain_table(sightings.table(), retention)
    done = LakeMaintenance(
        merged=merged,
        history=maintain_table(history.table(), retention),
        latest=maintain_table(latest.table(), retention),
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "maintenance of %s: %d rows merged into the latest table (history version %d); "
        "history %d files compacted into %d, %d vacuumed; latest %d into %d, %d vacuumed; %.1f s",
        lake, merged.rows_merged, merged.history_version, done.history.files_removed, done.history.files_added,
        done.history.files_vacuumed, done.latest.files_removed, done.latest.files_added, done.latest.files_vacuumed,
        done.seconds,
    )  # fmt: skip
    return done
