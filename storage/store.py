"""The lake as the analyse engine sees it: what is stored, and a durable write of new analyses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import duckdb

from jobping.engine.ports import Analysed, StoredIndex, StoredVersion
from storage.catalog import HISTORY_VIEW, LakeEmptyError, quarantining, reader, refresh_catalog
from storage.compaction import current_manifest
from storage.lake import Lake, to_row, write_rows

logger = logging.getLogger(__name__)


def has_files(lake: Lake | Path | str) -> bool:
    lake = Lake.of(lake)
    return bool(lake.batch_files()) or current_manifest(lake) is not None


def stored_versions(lake: Lake | Path | str) -> StoredIndex:
    """Every (job_key, content_hash, prompt_version) already in the lake, compacted or not."""
    lake = Lake.of(lake)

    def read() -> StoredIndex:
        try:
            con = reader(lake)
        except LakeEmptyError:
            return StoredIndex()
        with con:
            query = f"SELECT DISTINCT job_key, content_hash, prompt_version FROM {HISTORY_VIEW}"  # noqa: S608
            return StoredIndex(StoredVersion(*row) for row in con.execute(query).fetchall())

    # a file damaged inside (not at its footer) shows only here: it must not block every analyse
    return quarantining(lake, read, search=True)


class LakeStore:
    """The engine's Lake: batches written as Parquet files, and the catalog's views bound early.

    DuckDB binds a view by reading the schema of every file it covers, so a first run that bound
    them at its end would hold memory in proportion to the files it wrote (one per batch). Bound
    once the first batch is stored, the views read later files by themselves and the refresh at
    the end of the run is a no-op.
    """

    def __init__(self, lake: Lake, catalog: Path | None = None) -> None:
        self.lake = lake
        self.catalog = catalog
        self._bound = catalog is None

    def stored_versions(self) -> StoredIndex:
        return stored_versions(self.lake)

    def write(self, analysed: Sequence[Analysed]) -> None:
        write_rows(self.lake, [to_row(a.envelope, a.result, a.analysed_at, a.message_id) for a in analysed])
        if analysed and not self._bound:
            self.bind_catalog()

    def bind_catalog(self) -> None:
        # once only: a reader holding the catalog is not waited for, the end of the run tries again
        self._bound = True
        if self.catalog is None:
            return
        try:
            refresh_catalog(self.catalog, self.lake)
        except (duckdb.Error, OSError) as exc:
            logger.warning("the catalog's views were not bound yet: %s", exc)
