"""A posting in JobSpy's own field names, its fields and their checks made from jobping/columns.py."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator, model_validator

from jobping.columns import JOBSPY_COLUMNS, Column, Interval, Kind

# dates outside these are typos or attacks
EARLIEST_POSTED = date(1990, 1, 1)
MAX_FUTURE_DAYS = 2


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# a posting field's type, by its column's kind (jobping/columns.py)
POSTING_TYPES: dict[Kind, type] = {"text": str, "bool": bool, "int64": int, "float": float, "date": date}
DATE_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if column.kind == "date")
JOINED_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if column.joined)
CHOICE_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if column.choices)
LINK_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if column.link)


class PostingFields(BaseModel):
    """A posting in JobSpy's own field names (``jobspy.model.JobPost`` as a DataFrame row).

    Its fields are made from jobping/columns.py (``JobPosting`` below); mypy knows those the code reads
    by attribute, and the rest of JobSpy's JobPost is read by name (:meth:`text`).
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    # for mypy only: at run time every field, these too, is made from its column (tests/test_columns.py holds
    # the two equal), so that a field no code reads by attribute is named in the declaration alone
    if TYPE_CHECKING:
        id: str | None = None
        site: str | None = None
        job_url: str
        title: str
        company: str | None = None
        location: str | None = None
        date_posted: date | None = None
        job_type: str | None = None
        job_level: str | None = None
        is_remote: bool | None = None
        interval: Interval | None = None
        min_amount: float | None = None
        max_amount: float | None = None
        currency: str | None = None
        description: str | None = None
        skills: str | None = None

    @property
    def description_missing(self) -> bool:
        """The posting says nothing beyond its fields: no description, or a blank one (LinkedIn's, when
        JobSpy does not fetch them). A blank one is stripped to empty by ``str_strip_whitespace``."""
        return not self.description

    def text(self, name: str) -> str | None:
        """The text of the field ``name``: how code reads a field mypy knows no attribute of."""
        value = getattr(self, name)
        return value if isinstance(value, str) else None

    @model_validator(mode="before")
    @classmethod
    def _missing_values(cls, data: Any) -> Any:
        # pandas rows carry NaN for missing values, and json.dumps writes them as NaN
        if isinstance(data, dict):
            return {key: None if _absent(value) else value for key, value in data.items()}
        return data

    @field_validator("id", mode="before", check_fields=False)
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else str(value)
        return value

    @field_validator(*DATE_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        # pandas timestamps serialise as '2026-11-20 00:00:00' or '2026-11-20T00:00:00'
        if isinstance(value, str) and len(value) > 10 and value[10] in " T":
            return value[:10]
        if isinstance(value, datetime):
            return value.date()
        return value

    @field_validator(*DATE_FIELDS, check_fields=False)
    @classmethod
    def _plausible_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        latest = datetime.now(UTC).date() + timedelta(days=MAX_FUTURE_DAYS)
        if value is not None and not EARLIEST_POSTED <= value <= latest:
            raise ValueError(f"{info.field_name} {value.isoformat()} is outside {EARLIEST_POSTED} .. {latest}")
        return value

    @field_validator(*JOINED_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _joined(cls, value: Any) -> Any:
        # jobspy's row joins lists with ', '; a producer may send the list itself
        if isinstance(value, list):
            return ", ".join(str(item) for item in value) or None
        return value

    @field_validator(*CHOICE_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() or None if isinstance(value, str) else value

    @field_validator(*LINK_FIELDS, check_fields=False)
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        # a javascript: or data: link from a posting must never reach a page or a terminal as a link
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError(f"{info.field_name} must be an http(s) URL")
        if value is not None:
            _parses(value)
        return value


def _posting_field(column: Column) -> tuple[Any, Any]:
    """A JobPosting field's type and checks, from its column."""
    kind: Any = cast(Any, Literal)[column.choices] if column.choices else POSTING_TYPES[column.kind]
    low, high = column.bounds or (None, None)
    if not column.nullable:
        return kind, Field(min_length=1, max_length=column.max_chars, ge=low, le=high)
    return kind | None, Field(default=None, max_length=column.max_chars, ge=low, le=high)


# mypy sees the typed fields above; the model validates every field of the declaration
if TYPE_CHECKING:
    JobPosting = PostingFields
else:
    JobPosting = create_model(
        "JobPosting", __base__=PostingFields, __module__=__name__, __doc__=PostingFields.__doc__,
        **{column.read_as: _posting_field(column) for column in JOBSPY_COLUMNS},
    )  # fmt: skip


def _parses(url: str) -> None:
    """Refuse a URL no reader can take apart (``https://[``: urlsplit's "Invalid IPv6 URL")."""
    try:
        urlsplit(url.strip()).port  # noqa: B018 (the port is checked only when asked for)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
