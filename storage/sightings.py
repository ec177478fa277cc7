"""The sightings table: when a scrape saw a posting again unchanged, so that ``last_seen`` tells the truth.

A scrape publishes no posting the lake holds with the same content, and never writes to the lake;
it sends the job_keys it dropped as sightings messages (jobping/sightings.py), and the analyse
drain appends them here: one row per posting and scrape, three columns. A table of its own, not
rows in the history: the history holds analyses, which the stored index, the groups and the merge
into the latest table read, and a sighting has none. The views take a job's ``last_seen`` as the
newest of its analyses' and its sightings' ``scraped_at``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError

from jobping.engine.ports import Sighting
from storage.delta import APPEND_ATTEMPTS, WRITER
from storage.lake import Lake

SIGHTINGS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "job_key": pl.String,
    "scraped_at": pl.Datetime("us", "UTC"),
    "message_id": pl.String,
}
# a checkpoint every 10 commits, as the history: a reader replays at most 9 commit files (every log table's)
SIGHTINGS_CONFIGURATION: dict[str, str | None] = {"delta.checkpointInterval": "10"}


def sightings_frame(sightings: Sequence[Sighting]) -> pl.DataFrame:
    """One row per posting and sighting."""
    return pl.DataFrame(
        {
            "job_key": [key for s in sightings for key in s.job_keys],
            "scraped_at": [s.scraped_at for s in sightings for _ in s.job_keys],
            "message_id": [s.message_id for s in sightings for _ in s.job_keys],
        },
        schema=SIGHTINGS_SCHEMA,
    )


def record_sightings(lake: Lake, sightings: Sequence[Sighting]) -> None:
    """One append commit with every sighting, visible whole or not at all; the first one creates the table."""
    frame = sightings_frame(sightings)
    if frame.is_empty():
        return
    append_log(lake, lake.sightings_uri, frame)


def append_log(lake: Lake, uri: str, frame: pl.DataFrame) -> None:
    """One append commit of ``frame`` to a small log table of the lake (sightings, scrape_runs), created by the first.

    A checkpoint every 10 commits, as the history: a reader replays at most 9 commit files.
    """
    for attempt in range(1, APPEND_ATTEMPTS + 1):
        try:
            write_deltalake(
                uri, frame, mode="append", configuration=SIGHTINGS_CONFIGURATION,
                writer_properties=WRITER, storage_options=lake.write_options,
            )  # fmt: skip
        except CommitFailedError:
            # two processes creating the table at once: one loses the first commit and appends again
            if attempt == APPEND_ATTEMPTS:
                raise
        else:
            return
