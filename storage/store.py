"""The lake as the analyse engine sees it: what is stored, and a durable write of new analyses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import duckdb

from jobping.engine.ports import Analysed, StoredIndex, StoredVersion
from jobping.stored import to_row
from storage.catalog import HISTORY_VIEW, LakeEmptyError, quarantining, reader, refresh_catalog
from storage.delta import DeltaHistory, DeltaLatest
from storage.lake import Lake
from storage.migrate import migrate

logger = logging.getLogger(__name__)


def has_rows(lake: Lake | Path | str) -> bool:
    return DeltaHistory(Lake.of(lake)).exists()


def stored_versions(lake: Lake | Path | str) -> StoredIndex:
    """Every (job_key, content_hash, prompt_version) in the history table."""
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


def open_lake(lake: Lake, *, create: bool = True) -> Lake:
    """The lake, made current: an old Parquet lake converted, the history table created (unless
    ``create`` is False) or given the columns a newer jobping added."""
    migrate(lake)
    DeltaHistory(lake).ensure(create=create)
    DeltaLatest(lake).ensure_columns()
    return lake


class LakeStore:
    """The engine's Lake: each batch one append commit to the history table.

    The catalog file is written once the first batch is stored, when the lake was empty before:
    its views read later commits by themselves, so the refresh at the end of the run is a no-op
    unless a maintenance ran meanwhile.
    """

    def __init__(self, lake: Lake, catalog: Path | None = None) -> None:
        self.lake = lake
        self.history = DeltaHistory(lake)
        self.catalog = catalog
        self._bound = catalog is None
        # batches settle in threads; their commits would only race for the next version
        self._writing = threading.Lock()

    def stored_versions(self) -> StoredIndex:
        return stored_versions(self.lake)

    def write(self, analysed: Sequence[Analysed]) -> None:
        rows = [to_row(a.envelope, a.result, a.analysed_at, a.message_id) for a in analysed]
        with self._writing:
            self.history.append(rows)
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
