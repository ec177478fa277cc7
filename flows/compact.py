"""The compaction flow: merge the lake's batch files so that the views stay fast.

Safe to run while analyse writes and readers query (see storage/compaction.py); scheduled in
prefect.yaml, and `jobping compact` runs it by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from jobping.settings import Settings
from storage.catalog import catalog_generation, refresh_catalog
from storage.compaction import CompactionReport, compact
from storage.lake import Lake

MAX_MINUTES = 7 * 24 * 60


@flow(name="compact", flow_run_name="compact the lake", log_prints=True)
def compact_lake(
    margin_minutes: Annotated[
        float,
        Field(ge=0, le=MAX_MINUTES, description="Leave batch files younger than this for the next run."),
    ] = 10.0,
    retain_minutes: Annotated[
        float,
        Field(
            ge=0,
            le=MAX_MINUTES,
            description="Keep replaced files this long for readers that opened the lake before.",
        ),
    ] = 60.0,
) -> CompactionReport:
    """Merge the batch files into one file per partition, the latest row per job_key first."""
    settings = Settings()
    lake = Lake.from_settings(settings)
    report = compact(
        lake,
        margin=timedelta(minutes=margin_minutes),
        retain=timedelta(minutes=retain_minutes),
        keep_generation=catalog_generation(settings.catalog_path),
    )
    # the catalog file's views name the generation; a held catalog keeps its old one, which stays
    refresh_catalog(settings.catalog_path, lake)
    create_table_artifact(
        key="compaction",
        table=[
            {"what": "generation", "value": report.generation or 0},
            {"what": "batch files merged", "value": report.batches_merged},
            {"what": "rows merged", "value": report.rows_merged},
            {"what": "partitions rewritten", "value": report.partitions_rewritten},
            {"what": "jobs (latest rows)", "value": report.rows_latest},
            {"what": "older rows kept in history", "value": report.rows_superseded},
            {"what": "files deleted", "value": report.files_deleted},
            {"what": "batch files left for the next run", "value": report.batches_left},
        ],
        description=f"compaction of {lake} in {report.seconds:.1f} s",
    )
    get_run_logger().info(
        "generation %s: merged %d batch files (%d rows), %d jobs, %d older rows, %d files deleted in %.1f s",
        report.generation, report.batches_merged, report.rows_merged, report.rows_latest,
        report.rows_superseded, report.files_deleted, report.seconds,
    )  # fmt: skip
    return report
