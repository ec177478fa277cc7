"""The maintenance flow: merge the history into the latest table, then optimize, checkpoint and vacuum.

Safe to run while analyse appends and readers query: every step is a Delta commit, and vacuum
deletes only files no snapshot younger than the retention needs. Scheduled in prefect.yaml;
`jobping compact` runs it by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from flows.retention import forget_old_runs
from flows.run_settings import run_settings
from storage.catalog import refresh_catalog
from storage.damage import READ_ERRORS
from storage.lake import Lake
from storage.maintenance import DEFAULT_RETENTION, LakeMaintenance, maintain
from storage.repair import quarantining, repair_unread

MAX_RETAIN_HOURS = 365 * 24


@flow(name="compact", flow_run_name="maintain the lake", log_prints=True)
def compact_lake(
    retain_hours: Annotated[
        float,
        Field(
            ge=0,
            le=MAX_RETAIN_HOURS,
            description="Keep the files of replaced snapshots this long, for readers holding one (Delta's vacuum).",
        ),
    ] = DEFAULT_RETENTION.total_seconds() / 3600,
) -> LakeMaintenance | None:
    """Merge new analyses into the latest table, compact small files, checkpoint, and vacuum old ones;
    then delete jobping's Prefect runs older than JOBPING_RETENTION_DAYS."""
    settings = run_settings()
    lake = Lake.from_settings(settings)
    logger = get_run_logger()
    for damage in repair_unread(lake):
        logger.warning("%s", damage.line("dropped by a repair commit:"))
    # a file that is there and cannot be read shows when optimize reads it: quarantined, then maintenance again
    done = quarantining(lake, lambda: maintain(lake, timedelta(hours=retain_hours)), search=True, errors=READ_ERRORS)
    forget_old_runs(timedelta(days=settings.stack.retention_days))
    if done is None:
        logger.info("the lake %s holds no enriched job yet: nothing to maintain", lake)
        return None
    # the views add the history since the latest table's newest row: a merge moves that point
    refresh_catalog(settings.catalog_path, lake)
    create_table_artifact(
        key="maintenance",
        table=[
            {"what": "history version merged", "value": done.merged.history_version},
            {"what": "jobs updated in the latest table", "value": done.merged.rows_merged},
            {"what": "history files compacted", "value": done.history.files_removed},
            {"what": "history files written", "value": done.history.files_added},
            {"what": "history files vacuumed", "value": done.history.files_vacuumed},
            {"what": "latest files compacted", "value": done.latest.files_removed},
            {"what": "latest files vacuumed", "value": done.latest.files_vacuumed},
        ],
        description=f"maintenance of {lake} in {done.seconds:.1f} s",
    )
    logger.info(
        "merged up to history version %d (%d jobs updated); history: %d files compacted into %d, %d vacuumed; "
        "latest: %d into %d, %d vacuumed; %.1f s",
        done.merged.history_version, done.merged.rows_merged, done.history.files_removed, done.history.files_added,
        done.history.files_vacuumed, done.latest.files_removed, done.latest.files_added, done.latest.files_vacuumed,
        done.seconds,
    )  # fmt: skip
    return done
