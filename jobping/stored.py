"""A stored analysis: the row made from a posting and its analysis, whatever stores it.

The row's columns are jobping/columns.py's (ROW_COLUMNS), each read from where its column says;
storage/rows.py gives them their stored types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from jobping.analysis import AnalysisResult
from jobping.columns import ROW_COLUMNS, Source
from jobping.contract import Envelope
from jobping.grouping import Grouping

# one row of enriched_jobs_history by column name, in the order of ROW_COLUMNS: what to_row makes
StoredRow: TypeAlias = dict[str, object]


@dataclass(frozen=True)
class _Run:
    """What the analyse run adds to a row: when, from which message, in which job group."""

    analysed_at: datetime
    message_id: str
    grouping: Grouping


def _read(origin: object, path: str) -> object:
    for name in path.split("."):
        origin = getattr(origin, name)
    return origin


def to_row(
    envelope: Envelope, result: AnalysisResult, analysed_at: datetime, message_id: str, grouping: Grouping | None = None
) -> StoredRow:
    """The row of one analysis, every column of ROW_COLUMNS read from its source."""
    posting = envelope.posting
    if grouping is None:
        grouping = Grouping.alone(envelope.job_key, posting.company, posting.title, posting.location, posting.is_remote)
    origins: dict[Source, object] = {
        "jobspy": posting,
        "envelope": envelope,
        "analysis": result,
        "run": _Run(analysed_at, message_id, grouping),
    }
    return {column.name: _read(origins[column.source], column.read_as) for column in ROW_COLUMNS}
