"""Compaction: merge the batch files into one file per partition, the latest row per job_key.

Layout, under the lake:

    enriched_jobs/scrape_date=D/<stamp>-<id>.parquet       batches, as analyse writes them
    enriched_jobs_compacted/<generation>/latest/scrape_date=D/*.parquet
    enriched_jobs_compacted/<generation>/superseded/scrape_date=D/*.parquet
    enriched_jobs_compacted/manifest-<generation>.json     which files make up a generation

A generation holds every row of every batch named up to its watermark: each job_key once in
``latest`` (the row the ``enriched_jobs`` view showed) and every older row in ``superseded``,
so the history keeps everything. The views read the newest manifest's files plus the batches
named after its watermark, and let a batch row win over a compacted one; that is exactly what
the compaction would have chosen, so a reader sees the same jobs before and after.

Safe while others run:
- writers: a batch is merged only when its name is older than the watermark, which trails the
  clock by a margin, so a batch still being written is left for the next run;
- readers: nothing is rewritten in place. A new generation is a new folder and a new manifest;
  the files an older manifest names are deleted only once that manifest is older than the
  retention, and never while the catalog file still points at it;
- other compactions: one at a time, by a lock file on a local lake and by the deployment's
  concurrency limit of 1 on S3.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import duckdb
import polars as pl

from jobping.errors import TransientError
from storage.lake import PARTITION, ROW_SCHEMA, STAMP_WIDTH, TABLE, Lake, stamp, with_every_column

logger = logging.getLogger(__name__)
# what stamp() writes: the only watermark a manifest may carry
STAMP_PATTERN = re.compile(r"\d{8}T\d{12}Z")

COMPACTED = f"{TABLE}_compacted"
MANIFEST_PREFIX = "manifest-"
MANIFEST_VERSION = 1
# a partition's superseded rows are merged into one file once they span this many
SUPERSEDED_FILES_LIMIT = 8
# an empty batch file that keeps the batches' glob matching once every batch is compacted
PLACEHOLDER_DATE = "1970-01-01"
PLACEHOLDER_NAME = "00000000T000000000000Z-placeholder.parquet"
ORDER = "analysed_at DESC, scraped_at DESC"


class CompactionBusyError(TransientError):
    """Another compaction holds the lake's lock; this run does nothing and the next one merges."""


@dataclass(frozen=True)
class Manifest:
    """One generation of the compacted lake."""

    generation: int
    watermark: str
    created_at: datetime
    latest: tuple[str, ...]
    superseded: tuple[str, ...]
    rows_latest: int = 0
    rows_superseded: int = 0

    @property
    def files(self) -> frozenset[str]:
        return frozenset(self.latest) | frozenset(self.superseded)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": MANIFEST_VERSION,
                "generation": self.generation,
                "watermark": self.watermark,
                "created_at": self.created_at.isoformat(),
                "latest": list(self.latest),
                "superseded": list(self.superseded),
                "rows_latest": self.rows_latest,
                "rows_superseded": self.rows_superseded,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, lake: Lake | None = None) -> Manifest:
        """A manifest read from the lake, which is untrusted input: raises ValueError unless it is well formed.

        Its watermark and paths end up in view SQL, so the watermark must be a stamp we write and
        every path a Parquet file of this lake's compacted folder.
        """
        data = json.loads(text)
        version = data.get("version") if isinstance(data, dict) else None
        if version != MANIFEST_VERSION:
            raise ValueError(f"manifest version {version!r} is not {MANIFEST_VERSION}")
        watermark = str(data["watermark"])
        if not STAMP_PATTERN.fullmatch(watermark):
            raise ValueError(f"manifest watermark {watermark[:40]!r} is not a stamp")
        files = [data["latest"], data["superseded"]]
        if not all(isinstance(group, list) and all(isinstance(p, str) for p in group) for group in files):
            raise ValueError("manifest file lists are not lists of paths")
        if lake is not None:
            root = lake.join(COMPACTED) + "/"
            stray = [p for group in files for p in group if not _inside(p, root)]
            if stray:
                raise ValueError(f"manifest names a file outside {root}: {stray[0][:200]!r}")
        return cls(
            generation=int(data["generation"]),
            watermark=watermark,
            created_at=datetime.fromisoformat(data["created_at"]),
            latest=tuple(data["latest"]),
            superseded=tuple(data["superseded"]),
            rows_latest=int(data.get("rows_latest", 0)),
            rows_superseded=int(data.get("rows_superseded", 0)),
        )


def _inside(path: str, root: str) -> bool:
    parts = PurePosixPath(path).parts
    return path.startswith(root) and path.endswith(".parquet") and ".." not in parts


@dataclass
class CompactionReport:
    generation: int | None = None
    batches_merged: int = 0
    rows_merged: int = 0
    partitions_rewritten: int = 0
    rows_latest: int = 0
    rows_superseded: int = 0
    files_deleted: int = 0
    batches_left: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def manifest_path(lake: Lake, generation: int) -> str:
    return lake.join(COMPACTED, f"{MANIFEST_PREFIX}{generation:08d}.json")


def manifests(lake: Lake) -> list[Manifest]:
    """Every manifest still in the lake, oldest first."""
    found = [m for path in lake.glob(f"{COMPACTED}/{MANIFEST_PREFIX}*.json") if (m := _read_manifest(lake, path))]
    return sorted(found, key=lambda m: m.generation)


def _read_manifest(lake: Lake, path: str) -> Manifest | None:
    """The manifest at ``path``; None when a cleanup deleted it meanwhile or it is not one we wrote."""
    try:
        return Manifest.from_json(lake.read_bytes(path).decode("utf-8"), lake)
    except FileNotFoundError:
        return None  # deleted by a cleanup between the listing and the read
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        logger.warning("ignoring %s, which is not a manifest jobping wrote: %s", path, exc)
        return None


def current_manifest(lake: Lake) -> Manifest | None:
    paths = lake.glob(f"{COMPACTED}/{MANIFEST_PREFIX}*.json")
    return next((m for path in reversed(paths) if (m := _read_manifest(lake, path))), None)


def batch_name(path: str) -> str:
    return PurePosixPath(path).name


def stamp_of(path: str) -> str:
    """The UTC stamp a batch file is named by, comparable with a manifest's watermark."""
    return batch_name(path)[:STAMP_WIDTH]


def is_placeholder(path: str) -> bool:
    return batch_name(path) == PLACEHOLDER_NAME


@contextmanager
def compaction_lock(lake: Lake) -> Iterator[None]:
    """One compaction at a time on a local lake (flock); on S3 the deployment's concurrency limit."""
    if lake.remote:
        yield
        return
    folder = Path(lake.join(COMPACTED))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CompactionBusyError(f"another compaction is running on {lake}") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quote(paths: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def read_files(paths: list[str] | tuple[str, ...], *, filename: bool = False) -> str:
    """A read_parquet over explicit files, with the scrape_date partition read from their paths."""
    extra = ", filename = true" if filename else ""
    return with_every_column(
        f"read_parquet({_quote(paths)}, hive_partitioning = true, union_by_name = true, "
        f"hive_types = {{'{PARTITION}': DATE}}{extra})"
    )


def _partition_of(path: str) -> str:
    for part in PurePosixPath(path).parts:
        if part.startswith(f"{PARTITION}="):
            return part.split("=", 1)[1]
    raise ValueError(f"{path} is not inside a {PARTITION}= folder")


def compact(
    lake: Lake | Path | str,
    *,
    margin: timedelta = timedelta(minutes=10),
    retain: timedelta = timedelta(hours=1),
    keep_generation: int | None = None,
    now: datetime | None = None,
) -> CompactionReport:
    """Merge the batches named before ``now - margin`` into a new generation, then clean up.

    ``retain`` is how long the files of a replaced generation, and the merged batches, stay
    for readers that opened the lake before; ``keep_generation`` is kept however old (the one
    the catalog file's views name).
    """
    lake = Lake.of(lake)
    started = time.perf_counter()
    report = CompactionReport()
    with compaction_lock(lake):
        now = now or datetime.now(UTC)
        previous = current_manifest(lake)
        watermark = stamp(now - margin)
        floor = previous.watermark if previous else ""
        listed = lake.batch_files()
        batches = [p for p in listed if not is_placeholder(p) and floor < stamp_of(p) <= watermark]
        report.batches_left = sum(1 for p in listed if stamp_of(p) > watermark)
        if batches:
            manifest = _merge(lake, previous, batches, watermark=watermark, now=now, report=report)
            report.generation = manifest.generation
            report.rows_latest, report.rows_superseded = manifest.rows_latest, manifest.rows_superseded
        elif previous:
            report.generation = previous.generation
            report.rows_latest, report.rows_superseded = previous.rows_latest, previous.rows_superseded
        report.files_deleted = cleanup(lake, retain=retain, keep_generation=keep_generation, now=now)
    report.seconds = time.perf_counter() - started
    return report


def _merge(
    lake: Lake,
    previous: Manifest | None,
    batches: list[str],
    *,
    watermark: str,
    now: datetime,
    report: CompactionReport,
) -> Manifest:
    generation = (previous.generation + 1) if previous else 1
    base_latest = list(previous.latest) if previous else []
    base_superseded = list(previous.superseded) if previous else []
    columns = list(ROW_SCHEMA)
    select = ", ".join(f'"{c}"' for c in columns)
    with lake.connect() as con, tempfile.TemporaryDirectory(prefix="jobping-compact-") as tmp:
        con.execute(f"CREATE TEMP VIEW batch AS SELECT {select}, {PARTITION} FROM {read_files(batches)}")
        keys = "SELECT DISTINCT job_key FROM batch"
        # the partitions to rewrite: those the batches write to, and those holding a row they replace
        touched = {str(d) for (d,) in con.execute(f"SELECT DISTINCT {PARTITION} FROM batch").fetchall()}
        if base_latest:
            replaced = con.execute(
                f"SELECT DISTINCT {PARTITION} FROM {read_files(base_latest)} WHERE job_key IN ({keys})"
            ).fetchall()
            touched |= {str(d) for (d,) in replaced}
        old_latest = [p for p in base_latest if _partition_of(p) in touched]
        # a compacted row loses to any batch row of its job_key; batch rows compete by time
        candidates = f"SELECT {select}, {PARTITION}, 1 AS from_batch FROM batch"
        if old_latest:
            compacted = read_files(old_latest)
            candidates += f" UNION ALL BY NAME SELECT {select}, {PARTITION}, 0 AS from_batch FROM {compacted}"
        con.execute(
            f"CREATE TEMP TABLE ranked AS SELECT *, row_number() OVER "
            f"(PARTITION BY job_key ORDER BY from_batch DESC, {ORDER}) AS rank FROM ({candidates})"
        )
        per_partition = Counter(_partition_of(p) for p in base_superseded)
        merged_superseded = [
            p
            for p in base_superseded
            if _partition_of(p) in touched and per_partition[_partition_of(p)] >= SUPERSEDED_FILES_LIMIT
        ]
        losers = f"SELECT {select}, {PARTITION} FROM ranked WHERE rank > 1"
        if merged_superseded:
            losers += f" UNION ALL BY NAME SELECT {select}, {PARTITION} FROM {read_files(merged_superseded)}"
        folder = lake.join(COMPACTED, f"{generation:08d}")
        winners = f"SELECT {select}, {PARTITION} FROM ranked WHERE rank = 1"
        new_latest, latest_rows = _write_partitions(lake, con, winners, Path(tmp) / "latest", folder + "/latest")
        new_superseded, superseded_rows = _write_partitions(
            lake, con, losers, Path(tmp) / "superseded", folder + "/superseded"
        )
        report.rows_merged = _count(con, "SELECT * FROM ranked WHERE from_batch = 1")
        # the rows of the files this generation replaces, so that no other file is read to count
        replaced_latest = _count(con, "SELECT * FROM ranked WHERE from_batch = 0")
        replaced_superseded = _count(con, f"SELECT 1 FROM {read_files(merged_superseded)}") if merged_superseded else 0
    report.batches_merged = len(batches)
    report.partitions_rewritten = len(touched)
    latest = sorted([p for p in base_latest if p not in old_latest] + new_latest)
    superseded = sorted([p for p in base_superseded if p not in merged_superseded] + new_superseded)
    manifest = Manifest(
        generation=generation,
        watermark=watermark,
        created_at=now,
        latest=tuple(latest),
        superseded=tuple(superseded),
        rows_latest=(previous.rows_latest if previous else 0) - replaced_latest + latest_rows,
        rows_superseded=(previous.rows_superseded if previous else 0) - replaced_superseded + superseded_rows,
    )
    _ensure_placeholder(lake)
    # publishing the manifest is the commit: until then no reader looks at the new files
    lake.write_bytes(manifest_path(lake, generation), manifest.to_json().encode("utf-8"))
    logger.info(
        "compaction generation %d: %d batch files merged, %d partitions", generation, len(batches), len(touched)
    )
    return manifest


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0])


def _write_partitions(
    lake: Lake, con: duckdb.DuckDBPyConnection, query: str, local: Path, target: str
) -> tuple[list[str], int]:
    """COPY a query partitioned by scrape_date to a local folder, move each file into the lake; its rows."""
    count = _count(con, query)
    if count == 0:
        return [], 0
    local.mkdir(parents=True)
    con.execute(
        f"COPY ({query} ORDER BY {PARTITION}, job_key) TO '{local.as_posix()}' "
        f"(FORMAT parquet, PARTITION_BY ({PARTITION}), COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    )
    written = []
    for file in sorted(local.rglob("*.parquet")):
        path = f"{target}/{file.relative_to(local).as_posix()}"
        lake.upload(file, path)
        written.append(path)
    return written, count


def _ensure_placeholder(lake: Lake) -> None:
    """Keep the batches' glob matching a file after every batch has been compacted away."""
    path = lake.join(TABLE, f"{PARTITION}={PLACEHOLDER_DATE}", PLACEHOLDER_NAME)
    if lake.exists(path):
        return

    buffer = io.BytesIO()
    pl.DataFrame(schema=ROW_SCHEMA).write_parquet(buffer, compression="zstd")
    lake.write_bytes(path, buffer.getvalue())


def cleanup(lake: Lake, *, retain: timedelta, keep_generation: int | None = None, now: datetime | None = None) -> int:
    """Delete what no reader can still need: old manifests, their files, merged batches, leftovers."""
    now = now or datetime.now(UTC)
    every = manifests(lake)
    if not every:
        return 0

    def needed(index: int) -> bool:
        # a manifest serves readers until its successor has been published for ``retain``
        if index == len(every) - 1 or every[index].generation == keep_generation:
            return True
        return now - every[index + 1].created_at < retain

    kept = [m for i, m in enumerate(every) if needed(i)]
    kept_files: frozenset[str] = frozenset().union(*(m.files for m in kept))
    floor = min(m.watermark for m in kept)
    if every[0].generation == 1 and now - every[0].created_at < retain:
        floor = ""  # readers that opened before the first compaction read every batch
    doomed: list[str] = []
    # batches merged by every manifest a reader may still use
    doomed += [p for p in lake.batch_files() if not is_placeholder(p) and stamp_of(p) <= floor]
    # compacted files no kept manifest names: replaced ones, and those of a run that crashed
    # before its manifest (only once they are older than the retention, in case a run is writing)
    for path in lake.glob(f"{COMPACTED}/*/*/{PARTITION}=*/*.parquet"):
        if path in kept_files:
            continue
        if any(f"/{m.generation:08d}/" in path for m in every if m not in kept) or now - lake.modified(path) >= retain:
            doomed.append(path)
    doomed += [manifest_path(lake, m.generation) for m in every if m not in kept]
    deleted = lake.delete(doomed)
    if deleted:
        logger.info("compaction cleanup: %d files deleted", deleted)
    return deleted
