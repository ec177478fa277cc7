"""The README's table of stored columns, made from jobping/columns.py: `python -m scripts.columns_table` rewrites it.

tests/test_readme.py fails while the README's table is not the one this makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jobping.columns import COLUMNS, Column, Kind

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- columns: made by `python -m scripts.columns_table` from jobping/columns.py -->"
END = "<!-- end of columns -->"
TYPES: dict[Kind, str] = {
    "text": "text",
    "texts": "list of text",
    "bool": "boolean",
    "int16": "integer",
    "int32": "integer",
    "int64": "integer",
    "float": "double",
    "date": "date",
    "timestamp": "timestamp (UTC)",
}


def _origin(column: Column) -> str:
    if column.source == "jobspy":
        return f"JobSpy `{column.read_as}`"
    if column.source == "lake":
        return f"the date of `{column.read_as}`"
    return {"envelope": "the envelope", "analysis": "the analysis", "run": "the analyse run"}[column.source]


def _type(column: Column) -> str:
    shown = TYPES[column.kind]
    if column.max_chars:
        shown += f", at most {column.max_chars:,} characters"
    if column.choices:
        shown += ": " + ", ".join(column.choices)
    if column.bounds:
        shown += ", {:,g} to {:,g}".format(*column.bounds)
    return shown if column.nullable else f"{shown}, always set"


def table() -> str:
    """The table, between its markers."""
    rows = [f"| `{c.name}` | {_type(c)} | {_origin(c)} | {c.note} |" for c in COLUMNS]
    return "\n".join([BEGIN, "| column | type | from | note |", "| --- | --- | --- | --- |", *rows, END])


def main() -> None:
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit(f"{README} has no {BEGIN} ... {END} to replace")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    README.write_text(before + table() + after, encoding="utf-8")


if __name__ == "__main__":
    main()
