"""The lake's two Delta tables: the history every batch appends to, and the latest row per job.

Delta's log gives atomic commits from several writers (on S3 through conditional writes),
snapshot reads, compaction, checkpoints and retention, in a format every engine reads:
DuckDB, polars, pyarrow, Spark, Trino.

- :class:`DeltaHistory` holds every analysis, one append commit per analyse batch;
- :class:`DeltaLatest` holds one row per job_key, merged from the history's change feed by
  the maintenance flow. Its commits record the history version and the newest ``analysed_at``
  they hold, so that the ``enriched_jobs`` view adds only the history rows since
  (storage/views.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import CommitProperties

from jobping.contract import SCRAPE_PRODUCER
from jobping.stored import StoredRow
from storage.lake import Lake
from storage.rows import FIRST_SEEN, LAST_SEEN, PARTITION, empty_rows, to_frame

logger = logging.getLogger(__name__)

# statistics for the columns readers filter on (Delta keeps them for the first 32 columns only, by default):
# the enriched_jobs view skips the history's files analysed before the latest table's newest row
STATISTICS: dict[str, str | None] = {
    "delta.dataSkippingStatsColumns": "job_key,analysed_at,analysed_on,scraped_at,fit_score,verdict,site,date_posted"
}
# the history table also keeps a change feed, so that the latest table merges exactly the rows since;
# and a checkpoint every 10 commits: a reader replays at most 9 commit files, which keeps a scan's start short
HISTORY_CONFIGURATION: dict[str, str | None] = {
    "delta.enableChangeDataFeed": "true",
    "delta.checkpointInterval": "10",
    **STATISTICS,
}
WRITER = WriterProperties(compression="ZSTD")
# the latest table's merge commits say up to which history version, and which analysed_at, they hold
MERGED_UP_TO = "jobping.history_version"
ANALYSED_UP_TO = "jobping.analysed_up_to"


def ours(alias: str = "") -> str:
    """SQL true for a row our scrape sent, or one written before rows kept their producer."""
    return f"coalesce({alias}producer = '{SCRAPE_PRODUCER}', {alias}producer IS NULL)"


# which of two analyses of a job is the latest, here and in the views: ours before another producer's (so a
# stranger sending a posting under a scraped job's key does not replace its row), then the newer, then the
# larger message id
ORDER = f"{ours()} DESC, analysed_at DESC, message_id DESC"
# ours() as a polars column, for the sorts that pick the same row as ORDER
OURS_COLUMN = (pl.col("producer") == SCRAPE_PRODUCER).fill_null(value=True).alias("_ours")


def before(s: str, t: str) -> str:
    """SQL true when the row aliased ``s`` comes before ``t`` in ORDER (the aliases with their dots)."""
    return (
        f"({ours(s)} AND NOT {ours(t)}) OR ({ours(s)} = {ours(t)} AND ({s}analysed_at > {t}analysed_at "
        f"OR ({s}analysed_at = {t}analysed_at AND {s}message_id > {t}message_id)))"
    )


NEWER = before("s.", "t.")
# a merge keeps the earliest and the latest scrape of a job, whichever analysis wins (NULL: a row merged before)
KEEP_SEEN = {
    name: f"CASE WHEN t.{name} IS NULL OR s.{name} {sign} t.{name} THEN s.{name} ELSE t.{name} END"
    for name, sign in ((FIRST_SEEN, "<"), (LAST_SEEN, ">"))
}
# a plain append that lost a race to a schema change is written again, this many times in all
APPEND_ATTEMPTS = 3
# a merge record up to a moment this far past the clock is refused: forged, or from a clock gone wrong
CLOCK_SKEW = timedelta(hours=1)
# how many of the latest table's newest commits are searched for the last merge (maintenance adds ~4 others)
MERGE_SEARCH_DEPTH = 50


class _Table:
    def __init__(self, lake: Lake, uri: str) -> None:
        self.lake = lake
        self.uri = uri

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.uri, storage_options=self.lake.storage_options)

    def table(self, version: int | None = None) -> DeltaTable:
        return DeltaTable(self.uri, version=version, storage_options=self.lake.storage_options)

    def _columns(self) -> set[str] | None:
        """The table's column names; None when there is no table (one read of its log either way)."""
        try:
            return {field.name for field in self.table().schema().fields}
        except TableNotFoundError:
            return None

    def _add_columns(self, configuration: dict[str, str | None], *, create: bool) -> None:
        """The table's first commit (schema and settings), or the columns of ROW_SCHEMA it lacks: an empty append."""
        empty = empty_rows()
        have = self._columns()
        if (have is None and not create) or (have is not None and set(empty.columns) <= have):
            return
        if have is not None:
            logger.warning("adding the columns ROW_SCHEMA gained to %s", self.uri)
        try:
            write_deltalake(
                self.uri, empty, mode="append", partition_by=[PARTITION], configuration=configuration,
                schema_mode="merge", storage_options=self.lake.write_options,
            )  # fmt: skip
        except CommitFailedError:
            # another process made the same change first, or it failed
            if not set(empty.columns) <= (self._columns() or set()):
                raise


class DeltaHistory(_Table):
    """Every analysis ever stored, one row each, partitioned by scrape date; appended by each batch."""

    def __init__(self, lake: Lake) -> None:
        super().__init__(lake, lake.history_uri)

    def ensure(self, *, create: bool = True) -> None:
        """Create the table (unless ``create`` is False), or add the columns of ROW_SCHEMA it lacks.

        Creating it before the first append matters: two processes creating it at once may both
        commit a (same) schema, and an append racing a creation could fail on it. A column added
        to ROW_SCHEMA by a newer jobping reads as NULL in the older rows.
        """
        self._add_columns(HISTORY_CONFIGURATION, create=create)

    def append(
        self,
        rows: Sequence[StoredRow] | pl.DataFrame,
        *,
        commit: CommitProperties | None = None,
        snapshot: DeltaTable | None = None,
    ) -> None:
        """One commit with every row, visible whole or not at all, safe beside other writers.

        With a ``snapshot``, the commit is checked against what was committed since it: an app
        transaction in ``commit`` that another process committed meanwhile makes it fail.
        """
        frame = to_frame(rows if isinstance(rows, pl.DataFrame) else list(rows))
        if frame.is_empty() and commit is None:
            return
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            try:
                write_deltalake(
                    snapshot or self.uri, frame, mode="append", partition_by=[PARTITION],
                    storage_options=self.lake.write_options,
                    configuration=HISTORY_CONFIGURATION, writer_properties=WRITER, commit_properties=commit,
                    # a column added to ROW_SCHEMA later joins the table's schema; older rows read it as NULL
                    schema_mode="merge",
                )  # fmt: skip
            except CommitFailedError:
                # delta-rs retries a commit that lost a race to another append; one that lost to a change of
                # the schema (another process creating the table at the same moment) is written again here
                if snapshot is not None or attempt == APPEND_ATTEMPTS:
                    raise
            else:
                return


class DeltaSightings(_Table):
    """When a scrape saw a stored posting again unchanged; appended by analyse (storage/sightings.py)."""

    def __init__(self, lake: Lake) -> None:
        super().__init__(lake, lake.sightings_uri)


@dataclass(frozen=True)
class Merged:
    """Up to where the latest table holds the history."""

    history_version: int
    # the newest analysed_at among its rows: the enriched_jobs view adds history rows from shortly before
    analysed_up_to: datetime
    rows_merged: int = 0


def merge_record(commit: dict[str, Any]) -> Merged | None:
    """What a merge commit recorded; None (merge the whole history again) when it is not what a merge writes.

    The log is read from the lake, which is untrusted: the views splice the moment in, so it
    must parse as one, and is written back out by isoformat, never as read.
    """
    try:
        version, moment = int(str(commit[MERGED_UP_TO])), datetime.fromisoformat(str(commit[ANALYSED_UP_TO]))
    except ValueError:
        logger.warning("ignoring a latest-table commit whose merge record is not one jobping writes")
        return None
    if moment.tzinfo is None or version < 0:
        return None
    return Merged(history_version=version, analysed_up_to=moment.astimezone(UTC))


def implausible(merged: Merged, history_version: int, now: datetime) -> str | None:
    """Why a merge record read from the lake cannot be one a merge wrote; None when it can.

    A record past the history's newest version, or up to a moment after now, would hide every
    later analysis from the views and the pings (they add only the rows analysed since it).
    """
    if merged.history_version > history_version:
        return f"it merged up to history version {merged.history_version}, beyond the history's {history_version}"
    if merged.analysed_up_to > now + CLOCK_SKEW:
        return f"it holds analyses up to {merged.analysed_up_to.isoformat()}, after now"
    return None


def _checked(merged: Merged | None, history_version: int) -> Merged | None:
    """``merged``, or None (the views read the whole history, the next merge rebuilds the table) when implausible."""
    reason = None if merged is None else implausible(merged, history_version, datetime.now(UTC))
    if reason is None:
        return merged
    logger.error(
        "refusing the latest table's merge record: %s; the views read the whole history until "
        "the next maintenance makes the latest table again", reason,
    )  # fmt: skip
    return None


class DeltaLatest(_Table):
    """One row per job_key, its newest analysis: the history merged up to a version it records.

    A merge reads only the history's change feed since the version the last merge recorded,
    so it costs what was written since, not the whole history.
    """

    def __init__(self, lake: Lake) -> None:
        super().__init__(lake, lake.latest_uri)

    def merged(self, history_version: int | None = None) -> Merged | None:
        """What the last merge recorded; None before the first (or when the table is gone), and when it
        is not plausible beside the history at ``history_version`` (see :func:`implausible`)."""
        found = self.snapshot()
        if found is None or history_version is None:
            return None if found is None else found[1]
        return _checked(found[1], history_version)

    def snapshot(self) -> tuple[int, Merged | None] | None:
        """The table's version and what the last merge up to it recorded, from one read; None with no table.

        A table merged before it carried first_seen and last_seen counts as never merged: the views
        read the history meanwhile, and the next merge makes the table again, whole.
        """
        try:
            table = self.table()
        except TableNotFoundError:
            return None
        if not {FIRST_SEEN, LAST_SEEN} <= {field.name for field in table.schema().fields}:
            return table.version(), None
        return table.version(), self._merged_in(table)

    @staticmethod
    def _merged_in(table: DeltaTable) -> Merged | None:
        for limit in (MERGE_SEARCH_DEPTH, None):
            for commit in table.history(limit):
                if MERGED_UP_TO in commit and ANALYSED_UP_TO in commit:
                    return merge_record(commit)
        return None

    def _written_since(self, history: DeltaHistory, start: int, version: int) -> pl.DataFrame:
        """The rows each commit from ``start`` to ``version`` wrote: the change feed, read whole.

        A lake left unmaintained past its log's retention (a month, by Delta's default) has lost
        the commits since the last merge: then every row of the snapshot is merged again, which
        costs a full read and loses nothing.
        """
        try:
            changes = pl.DataFrame(history.table().load_cdf(starting_version=start, ending_version=version))
        except DeltaError as exc:
            logger.warning("the history's log from version %d is gone (%s): merging its whole snapshot", start, exc)
            snapshot = pl.scan_delta(self.lake.history_uri, version=version, storage_options=self.lake.storage_options)
            return to_frame(snapshot.collect())
        return to_frame(changes.filter(pl.col("_change_type") == "insert"))

    def merge(self, history: DeltaHistory) -> Merged:
        table = history.table()
        version = table.version()
        before = self.merged(version)
        start = 0 if before is None else before.history_version + 1
        if before is not None and start > version:
            return before
        if before is None:
            # the whole snapshot: the files of old commits may be compacted and vacuumed away
            snapshot = pl.scan_delta(self.lake.history_uri, version=version, storage_options=self.lake.storage_options)
            rows = to_frame(snapshot.collect())
        else:
            rows = self._written_since(history, start, version)
        seen = rows.group_by("job_key").agg(
            pl.col("scraped_at").min().alias(FIRST_SEEN), pl.col("scraped_at").max().alias(LAST_SEEN)
        )
        newest = (
            rows.with_columns(OURS_COLUMN)
            .sort(["job_key", "_ours", "analysed_at", "message_id"], descending=[False, True, True, True])
            .drop("_ours")
            .unique("job_key", keep="first", maintain_order=True)
            .join(seen, on="job_key", how="left", maintain_order="left")
        )
        up_to = max(
            [moment for moment in (before and before.analysed_up_to, newest["analysed_at"].max()) if moment],
            default=datetime(1970, 1, 1, tzinfo=UTC),
        )
        assert isinstance(up_to, datetime)
        # a row stamped in the future (a clock gone wrong, a forged file) is merged, but the record stays
        # at now: the views still add every row analysed after it, and the next read accepts the record
        up_to = min(up_to, datetime.now(UTC))
        merged = Merged(history_version=version, analysed_up_to=up_to, rows_merged=newest.height)
        commit = CommitProperties(
            custom_metadata={MERGED_UP_TO: str(version), ANALYSED_UP_TO: up_to.astimezone(UTC).isoformat()}
        )
        if before is None:
            # the first merge, or the first after the table was dropped: the whole history, as one table
            write_deltalake(
                self.uri, newest, mode="overwrite", partition_by=[PARTITION], schema_mode="overwrite",
                configuration=STATISTICS,
                storage_options=self.lake.storage_options, writer_properties=WRITER, commit_properties=commit,
            )  # fmt: skip
            return merged
        # a newer analysis replaces the row, but for the seen columns; an older one only moves them
        replace = {**{name: f"s.`{name}`" for name in newest.columns}, **KEEP_SEEN}
        (
            self.table()
            .merge(newest, predicate="t.job_key = s.job_key", source_alias="s", target_alias="t",
                   merge_schema=True, writer_properties=WRITER, commit_properties=commit)
            .when_matched_update(updates=replace, predicate=NEWER)
            .when_matched_update(updates=KEEP_SEEN)
            .when_not_matched_insert_all()
            .execute()
        )  # fmt: skip
        return merged

    def ensure_columns(self) -> None:
        """Give the table the columns of ROW_SCHEMA it lacks, so that the views bind before the next merge adds them."""
        self._add_columns(STATISTICS, create=False)

    def drop(self) -> None:
        """Delete the table (it is made from the history again by the next merge)."""
        if self.lake.exists(self.uri):
            self.lake.fs.rm(self.uri, recursive=True)
            logger.warning("dropped %s; the next maintenance makes it again from the history", self.uri)


@dataclass(frozen=True)
class LakeSnapshot:
    """One moment of the lake: the history's version, the latest table's with what its last merge recorded,
    the sightings table's (None before the first sighting) and the scrape_runs table's (None before a scrape
    recorded its runs)."""

    history_version: int
    latest_version: int | None = None
    merged: Merged | None = None
    sightings_version: int | None = None
    scrape_runs_version: int | None = None

    @classmethod
    def of(cls, lake: Lake) -> LakeSnapshot | None:
        """The tables' versions now, None with no history table; the latest table is read first, so
        the history holds every row it merged."""
        latest = DeltaLatest(lake).snapshot()
        try:
            history_version = DeltaHistory(lake).table().version()
        except TableNotFoundError:
            return None
        try:
            sightings_version: int | None = DeltaSightings(lake).table().version()
        except TableNotFoundError:
            sightings_version = None
        try:
            runs_version: int | None = _Table(lake, lake.scrape_runs_uri).table().version()
        except TableNotFoundError:
            runs_version = None
        merged = None if latest is None else _checked(latest[1], history_version)
        if latest is None or merged is None:
            return cls(history_version, sightings_version=sightings_version, scrape_runs_version=runs_version)
        return cls(history_version, latest[0], merged, sightings_version=sightings_version,
                   scrape_runs_version=runs_version)  # fmt: skip
