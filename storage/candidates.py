"""Postings of the user's own lake to label: `jobping eval --from-lake` writes them as a labelled set.

Read with delta-rs and polars, as the pings read the lake. Each posting's newest analysis is
what was said of it; half the candidates are ones that fit (they were or would be pinged), half
ones that do not, best first within each, so that the user labels both the pings and the misses.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from jobping.columns import JOBSPY_COLUMNS
from storage.delta import OURS_COLUMN
from storage.lake import Lake
from storage.pings import fits_column
from storage.store import history_rows

# what the export shows of the stored analysis beside the posting: a hint for the labeller, never a label
STORED_COLUMNS = ["verdict", "fit_score", "limits_broken", "summary", "model", "prompt_version", "analysed_at"]
POSTING_COLUMNS = [column.name for column in JOBSPY_COLUMNS]
READ_COLUMNS = ["job_key", "message_id", "producer", *POSTING_COLUMNS, *STORED_COLUMNS]
FITS_COLUMN = "fits"
# recent: analysed within this long of the lake's newest analysis, so that an old lake still has candidates
RECENT = timedelta(days=30)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def candidates(lake: Lake, min_score: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` recent postings of the lake as unlabelled lines of a labelled set (jobping/labelled.py).

    Recent: the newest analysis is within ``RECENT`` of the lake's newest. Half fit at ``min_score`` and half
    do not (fewer of one kind: more of the other), each half best first; the label is left empty and the
    stored analysis rides along under ``stored``.
    """

    def newest(frame: pl.LazyFrame) -> pl.LazyFrame:
        order = [OURS_COLUMN, pl.col("analysed_at"), pl.col("message_id")]
        latest = frame.group_by("job_key").agg(pl.all().sort_by(order, descending=True, nulls_last=True).first())
        recent = latest.filter(pl.col("analysed_at") >= pl.col("analysed_at").max() - RECENT)
        return recent.with_columns(fits_column(min_score).alias(FITS_COLUMN)).sort(
            ["fit_score", "analysed_at", "job_key"], descending=[True, True, False]
        )

    rows = [
        dict(zip([*READ_COLUMNS, FITS_COLUMN], row, strict=True)) for row in history_rows(lake, READ_COLUMNS, newest)
    ]
    fitting = [row for row in rows if row[FITS_COLUMN]]
    others = [row for row in rows if not row[FITS_COLUMN]]
    half = (limit + 1) // 2
    take_fitting = min(len(fitting), max(half, limit - len(others)))
    chosen = fitting[:take_fitting] + others[: limit - take_fitting]
    return [_line(row) for row in chosen]


def _line(row: dict[str, Any]) -> dict[str, Any]:
    posting = {column.read_as: _plain(row[column.name]) for column in JOBSPY_COLUMNS if row[column.name] is not None}
    return {
        "id": row["job_key"],
        "posting": posting,
        "label": {"verdict": None, "ping": None, "score": None, "limits_broken": [], "note": ""},
        "stored": {name: _plain(row[name]) for name in STORED_COLUMNS} | {FITS_COLUMN: row[FITS_COLUMN]},
    }


def as_jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n" for line in lines)
