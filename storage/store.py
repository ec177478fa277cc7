"""The lake as the analyse engine sees it: what is stored, and a durable write of new analyses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from deltalake.exceptions import TableNotFoundError
from pydantic import ValidationError

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.columns import ANSWER_COLUMNS
from jobping.contract import SCRAPE_PRODUCER
from jobping.engine.ports import Analysed, Sighting, StoredIndex, StoredMember, StoredVersion
from jobping.stored import to_row
from storage.catalog import refresh_catalog
from storage.damage import files_inside
from storage.delta import OURS_COLUMN, DeltaHistory, DeltaLatest
from storage.failures import transient_when_passing
from storage.lake import HISTORY_TABLE, Lake
from storage.repair import inside
from storage.rows import ROW_SCHEMA
from storage.sightings import record_sightings

logger = logging.getLogger(__name__)


def stored_versions(lake: Lake | Path | str, *, read_only: bool = False) -> StoredIndex:
    """Every (job_key, content_hash, prompt_version) in the history table whose analysis read its text.

    A row that reused another posting's analysis before reuse was limited to text that analysis read
    (it has no producer) may carry the verdict on other text: it is not proof, and its posting is
    published and placed again. With ``read_only`` the lake is not repaired (see :func:`history_rows`).
    """

    def analysed(frame: pl.LazyFrame) -> pl.LazyFrame:
        unchecked = pl.col("analysis_of").is_not_null() & pl.col("producer").is_null()
        # storage.delta.ours(): a row our scrape sent, or one written before rows kept their producer
        return frame.filter(~unchecked).select(*VERSION_COLUMNS, OURS_COLUMN).unique()

    rows = history_rows(Lake.of(lake), [*VERSION_COLUMNS, "analysis_of", "producer"], analysed, read_only=read_only)
    return StoredIndex(StoredVersion(*row) for row in rows)


VERSION_COLUMNS = ["job_key", "content_hash", "prompt_version"]


def history_rows(
    lake: Lake, columns: list[str], shape: Callable[[pl.LazyFrame], pl.LazyFrame], *, read_only: bool = False
) -> list[tuple[Any, ...]]:
    """The rows of the history table's ``columns``, as ``shape`` makes them; none while the lake holds no row.

    They are read by delta-rs's list of the snapshot's files and polars, which the analyse process
    loads anyway: DuckDB and its delta extension would add to its peak (bench/RESULTS.md, Memory).
    Only the files inside the table are read: a path of the log that leaves it is dropped first. A file
    damaged inside, or gone, shows only when read: it is repaired as the views repair it
    (storage/repair.py), and the read made again. With ``read_only`` nothing is repaired: a path that
    leaves the table is left unread, and a damaged file's error is raised.
    """
    history = DeltaHistory(lake)

    def read() -> list[tuple[Any, ...]]:
        try:
            table = history.table()
            files = files_inside(lake, HISTORY_TABLE, table) if read_only else inside(lake, HISTORY_TABLE, table)
        except TableNotFoundError:
            return []
        if not files:
            return []
        # read as delta_scan reads them: a column a file lacks (written before ROW_SCHEMA gained it) is NULL.
        # Not pl.scan_delta: its schema conversion imports pyarrow, which the analyse process otherwise never maps
        frame = pl.scan_parquet(
            files, schema={name: ROW_SCHEMA[name] for name in columns}, missing_columns="insert",
            extra_columns="ignore", hive_partitioning=False, storage_options=lake.storage_options,
        )  # fmt: skip
        return shape(frame).collect().rows()

    failures = (pl.exceptions.PolarsError, OSError)
    if read_only:
        return read()
    try:
        return read()
    except failures:
        # DuckDB only now, to find the file no reader can read
        from storage.repair import quarantining  # noqa: PLC0415

        return quarantining(lake, read, search=True, errors=failures)


MEMBER_COLUMNS = (
    "job_key", "group_key", "job_group", "description", "analysis_of", "model", "prompt_version", "description_cut",
    "producer", "limits_broken",
)  # fmt: skip


def group_keys(lake: Lake | Path | str) -> set[str]:
    """Every group key in the history table."""
    rows = history_rows(Lake.of(lake), ["group_key"], lambda frame: frame.drop_nulls().unique())
    return {row[0] for row in rows}


def group_members(lake: Lake | Path | str, keys: Sequence[str]) -> list[StoredMember]:
    """The stored postings of these group keys, each once, with its newest analysis."""
    if not keys:
        return []

    def newest(frame: pl.LazyFrame) -> pl.LazyFrame:
        # storage.delta.ORDER: ours before another producer's, the newer analysis, then the larger message id
        return (
            frame.filter(pl.col("group_key").is_in(list(keys)))
            .with_columns(OURS_COLUMN)
            .sort(["_ours", "analysed_at", "message_id"], descending=True, nulls_last=True)
            .unique("job_key", keep="first", maintain_order=True)
            .select([*MEMBER_COLUMNS, *ANSWER_COLUMNS])
        )

    read = [*MEMBER_COLUMNS, *ANSWER_COLUMNS, "analysed_at", "message_id"]
    return [_member(row) for row in history_rows(Lake.of(lake), read, newest)]


def _member(row: tuple[Any, ...]) -> StoredMember:
    job_key, key, job_group, description, analysis_of, model, prompt_version, cut, producer, broken = row[
        : len(MEMBER_COLUMNS)
    ]
    answer = dict(zip(ANSWER_COLUMNS, row[len(MEMBER_COLUMNS) :], strict=True))
    try:
        # a posting that reuses this analysis says, as this one's row does, whether it came from a description cut short
        result: AnalysisResult | None = AnalysisResult(
            analysis=JobAnalysis.model_validate(answer), model=model, prompt_version=prompt_version,
            description_cut=bool(cut), limits_broken=list(broken or []), limits_checked=True,
        )  # fmt: skip
    except ValidationError:
        # a row no current analysis would give (an older schema): it places postings, it is not reused
        result = None
    scraped = producer == SCRAPE_PRODUCER
    return StoredMember(job_key, key, job_group or job_key, description, result, analysis_of, scraped=scraped)


def open_lake(lake: Lake, *, create: bool = True) -> Lake:
    """The lake, made current: the history table created (unless ``create`` is False) or given the
    columns a newer jobping added."""
    DeltaHistory(lake).ensure(create=create)
    DeltaLatest(lake).ensure_columns()
    return lake


class LakeStore:
    """The engine's AnalysisStore: each batch one append commit to the history table.

    A write that fails for a passing reason (storage/failures.py) raises a TransientError, which
    the flow's task retries; any other failure is raised as it is, and fails the run.

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

    def group_keys(self) -> set[str]:
        return group_keys(self.lake)

    def group_members(self, keys: Sequence[str]) -> list[StoredMember]:
        return group_members(self.lake, keys)

    def write(self, analysed: Sequence[Analysed]) -> None:
        rows = [to_row(a.envelope, a.result, a.analysed_at, a.message_id, a.grouping) for a in analysed]
        with self._writing, transient_when_passing():
            self.history.append(rows)
        if analysed and not self._bound:
            self.bind_catalog()

    def record_sightings(self, sightings: Sequence[Sighting]) -> None:
        with self._writing, transient_when_passing():
            record_sightings(self.lake, sightings)

    def bind_catalog(self) -> None:
        # once only: a reader holding the catalog is not waited for, the end of the run tries again
        self._bound = True
        if self.catalog is None:
            return
        try:
            refresh_catalog(self.catalog, self.lake, in_child=True)
        except OSError as exc:
            logger.warning("the catalog's views were not bound yet: %s", exc)
