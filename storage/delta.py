"""The enriched rows as a Delta Lake table: appends, maintenance, and DuckDB's delta extension offline.

Delta's log gives what the hand-made manifests gave (atomic commits from several writers,
snapshot reads, compaction, retention), in a format every engine reads: DuckDB, polars,
pyarrow, Spark, Trino. This module holds the primitives; the lake moves onto them in steps
(issue 14).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.transaction import CommitProperties

from jobping.errors import ConfigurationError
from storage.lake import PARTITION, ROW_SCHEMA, StoredRow, with_partition

EXTENSION_PACKAGE = "duckdb_extension_delta"
# readers holding an older snapshot keep its files this long; Delta's own default, too
DEFAULT_RETENTION = timedelta(days=7)
# what optimize aims each rewritten file at
TARGET_FILE_BYTES = 128 * 1024 * 1024
# the history table keeps a change feed, so that the latest table merges exactly the rows since
HISTORY_CONFIGURATION: dict[str, str | None] = {"delta.enableChangeDataFeed": "true"}
# the latest table's commits say up to which history version they merged
MERGED_UP_TO = "jobping.history_version"
# which of two analyses of a job is the latest: as the views choose
NEWER = "s.analysed_at > t.analysed_at OR (s.analysed_at = t.analysed_at AND s.message_id > t.message_id)"


def delta_extension() -> Path:
    """The delta extension for the running DuckDB, from the duckdb-extension-delta package (no download)."""
    version = f"v{duckdb.__version__}"
    try:
        found = resources.files(EXTENSION_PACKAGE).joinpath("extensions", version, "delta.duckdb_extension")
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the {EXTENSION_PACKAGE} package is not installed: `make install` installs it"
        ) from exc
    path = Path(str(found))
    if not path.is_file():
        raise ConfigurationError(
            f"{EXTENSION_PACKAGE} holds no delta extension for DuckDB {version}: "
            "install the duckdb and duckdb-extension-delta releases requirements.lock pins"
        )
    return path


def load_delta(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``delta_scan`` available on ``con``, before its external access is switched off."""
    # LOAD takes no parameter; the path is our own package's, quoted all the same
    con.execute(f"LOAD '{_quoted(delta_extension())}'")


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def s3_options(endpoint_url: str | None, region: str) -> dict[str, str]:
    """delta-rs's options for a lake on S3 (or an S3-compatible store); keys come from the environment.

    Commits use S3's conditional writes (If-None-Match), which delta-rs uses by default: two
    writers never overwrite each other's commit, with no lock table. A store without them
    needs delta-rs's DynamoDB locking provider instead (docs/SCALING.md).
    """
    options = {"AWS_REGION": region}
    if endpoint_url:
        options["AWS_ENDPOINT_URL"] = endpoint_url
        if endpoint_url.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


@dataclass(frozen=True)
class Maintenance:
    """What one round of optimize, checkpoint and vacuum did."""

    version: int
    files_added: int
    files_removed: int
    files_vacuumed: int


class DeltaHistory:
    """Every analysis ever stored, one row each, partitioned by scrape date; appended by each batch."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options)

    def table(self) -> DeltaTable:
        return DeltaTable(self.uri, storage_options=self.storage_options)

    def append(self, rows: Sequence[StoredRow]) -> None:
        """One commit with every row, visible whole or not at all; safe beside other writers."""
        if rows:
            self.append_frame(pl.DataFrame(rows, schema=ROW_SCHEMA))

    def append_frame(self, frame: pl.DataFrame) -> None:
        """``frame`` (the columns of ROW_SCHEMA) as one commit."""
        frame = with_partition(frame.select(list(ROW_SCHEMA)).cast(ROW_SCHEMA))  # type: ignore[arg-type]
        write_deltalake(
            self.uri, frame, mode="append", partition_by=[PARTITION], storage_options=self.storage_options,
            configuration=HISTORY_CONFIGURATION,
        )  # fmt: skip

    def maintain(self, retention: timedelta = DEFAULT_RETENTION) -> Maintenance:
        """Compact small files, write a checkpoint, and delete files no snapshot within ``retention`` needs."""
        table = self.table()
        metrics = table.optimize.compact(target_size=TARGET_FILE_BYTES)
        table.create_checkpoint()
        hours = max(0, int(retention.total_seconds() // 3600))
        vacuumed = table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
        return Maintenance(
            version=table.version(),
            files_added=int(metrics.get("numFilesAdded", 0)),
            files_removed=int(metrics.get("numFilesRemoved", 0)),
            files_vacuumed=len(vacuumed),
        )


@dataclass(frozen=True)
class Merged:
    """What one merge of the history into the latest table did."""

    history_version: int
    rows_merged: int


class DeltaLatest:
    """One row per job_key, its newest analysis: the history merged up to a version it records.

    A merge reads only the history's change feed since the version the last merge recorded,
    so it costs what was written since, not the whole history.
    """

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def merged_up_to(self) -> int | None:
        """The history version the latest table holds everything up to; None before the first merge."""
        if not DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options):
            return None
        for commit in DeltaTable(self.uri, storage_options=self.storage_options).history():
            if MERGED_UP_TO in commit:
                return int(commit[MERGED_UP_TO])
        return None

    def merge(self, history: DeltaHistory) -> Merged:
        table = history.table()
        version = table.version()
        since = self.merged_up_to()
        start = 0 if since is None else since + 1
        if start > version:
            return Merged(history_version=version, rows_merged=0)
        # an arrow stream of the rows each commit wrote, read whole: it is what was written since
        changes = pl.DataFrame(pa.table(table.load_cdf(starting_version=start, ending_version=version)))
        rows = changes.filter(pl.col("_change_type") == "insert").select([*ROW_SCHEMA, PARTITION])
        # the newest analysis of each job among the new rows, as the views choose it
        newest = rows.sort(["job_key", "analysed_at", "message_id"], descending=[False, True, True]).unique(
            "job_key", keep="first", maintain_order=True
        )
        commit = CommitProperties(custom_metadata={MERGED_UP_TO: str(version)})
        if since is None and not DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options):
            write_deltalake(
                self.uri, newest, mode="error", partition_by=[PARTITION], storage_options=self.storage_options,
                commit_properties=commit,
            )  # fmt: skip
        else:
            latest = DeltaTable(self.uri, storage_options=self.storage_options)
            (
                latest.merge(newest, predicate="t.job_key = s.job_key", source_alias="s", target_alias="t",
                             commit_properties=commit)
                .when_matched_update_all(predicate=NEWER)
                .when_not_matched_insert_all()
                .execute()
            )  # fmt: skip
        return Merged(history_version=version, rows_merged=newest.height)
