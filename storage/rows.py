"""The enriched tables' columns: their types, in order, and the rows as the tables store them."""

from __future__ import annotations

import polars as pl

from jobping.columns import LAKE_COLUMNS, ROW_COLUMNS, SCRAPE_DATE, Kind
from jobping.stored import StoredRow

# the column the tables are partitioned by
PARTITION = SCRAPE_DATE

PolarsType = pl.DataType | type[pl.DataType]
# the stored type of each kind of column (jobping/columns.py)
POLARS_TYPES: dict[Kind, PolarsType] = {
    "text": pl.String,
    "texts": pl.List(pl.String),
    "bool": pl.Boolean,
    "int16": pl.Int16,
    "int32": pl.Int32,
    "int64": pl.Int64,
    "float": pl.Float64,
    "date": pl.Date,
    "timestamp": pl.Datetime("us", "UTC"),
}
# the columns of a stored row, in order; the lake's dates follow them (LAKE_COLUMNS)
ROW_SCHEMA: dict[str, PolarsType] = {column.name: POLARS_TYPES[column.kind] for column in ROW_COLUMNS}


# what the latest table holds beyond the history's columns, carried by every merge: when the posting was first
# and last scraped over all its analyses, so that a re-analysis (a new prompt, a new scraped_at) keeps first_seen
FIRST_SEEN = "first_seen"
LAST_SEEN = "last_seen"


def empty_rows() -> pl.DataFrame:
    """No rows, with the tables' columns and types: what a table is created or widened with."""
    return to_frame(pl.DataFrame(schema=ROW_SCHEMA))


def to_frame(rows: list[StoredRow] | pl.DataFrame) -> pl.DataFrame:
    """The rows as the tables store them: the columns of ROW_SCHEMA in order, then the dates made from them."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=ROW_SCHEMA)
    frame = frame.select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)  # type: ignore[arg-type]
    return frame.with_columns(pl.col(column.read_as).dt.date().alias(column.name) for column in LAKE_COLUMNS)
