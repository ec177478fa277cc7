"""Postings of one site, from JobSpy's scrapers or the bundled synthetic sample.

Both reach the normaliser the same way: JobSpy's ``JobPost`` models, turned into a pandas
frame by JobSpy's own conversion (``scrape_jobs``), then into polars column by column with
the types JobSpy gives (a date stays a date).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from functools import cache
from importlib import resources
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, get_args

import pandas as pd
import polars as pl
from jobspy import column_types, scrape_jobs
from jobspy.model import JobPost, ScraperInput
from pydantic import ValidationError

from jobping.columns import JOBSPY_COLUMNS, Kind
from jobping.errors import ConfigurationError, TerminalError, TransientError, describe
from jobping.proxies import Proxies
from jobping.redaction import redact
from jobping.search import SiteName
from tasks.jobspy.search import ScrapeParameters, jobspy_options

if TYPE_CHECKING:
    import pandas as pd
    from jobspy.model import JobPost

logger = logging.getLogger(__name__)

SAMPLE_FILE = "sample/postings.json"
SEARCH_COLUMNS = ("search_term", "search_location")
JOBSPY_VERSION = "1.4.1"


@dataclass(frozen=True)
class SearchOutcome:
    """How one search of one board went: what it found, how many without a description, its error, its time."""

    term: str | None
    location: str | None
    found: int = 0
    without_description: int = 0
    error: str | None = None
    seconds: float = 0.0


class SiteFailedError(TransientError):
    """A site answered with errors and no postings (blocked, rate-limited, down); ``searches`` says how each went."""

    def __init__(self, message: str, searches: list[SearchOutcome] | None = None) -> None:
        super().__init__(message)
        self.searches = searches or []


class SampleMissingError(TerminalError):
    """The bundled sample file is not installed with the package."""


class SearchRejectedError(ConfigurationError):
    """JobSpy refused the search's arguments (an unknown country, say): no retry helps."""


class NormalisationError(TerminalError):
    """Our own code could not take a value JobSpy gave: a bug to fix, not a board outage."""

    def __init__(self, site: str, column: str, detail: str) -> None:
        super().__init__(f"{site}: jobping could not read JobSpy's column {column!r}: {detail}")
        self.site, self.column = site, column


@dataclass
class SiteResult:
    site: SiteName
    postings: pl.DataFrame
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # one per search of the run, for the scrape_runs table (storage/scrape_runs.py)
    searches: list[SearchOutcome] = field(default_factory=list)


def _without_description(frame: pl.DataFrame) -> int:
    return frame.filter(pl.col("description").is_null() | (pl.col("description").str.strip_chars() == "")).height


def _outcome(
    term: str | None, location: str | None, frame: pl.DataFrame, errors: list[str], started: float
) -> SearchOutcome:
    return SearchOutcome(
        term, location, frame.height, _without_description(frame), "; ".join(errors) or None,
        time.monotonic() - started,
    )  # fmt: skip


def _missing(value: object) -> bool:
    # pandas fills gaps with None, NaN (float columns) or NaT, depending on the column
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value[:10]) if isinstance(value, str) else None


def _as_int(value: object) -> int | None:
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    # a pandas int column with gaps becomes float64: 12.0 is the 12 JobSpy gave
    return int(float(value)) if isinstance(value, Real) and float(value).is_integer() else None


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, Real) and not isinstance(value, bool) else None


def _as_bool(value: object) -> bool | None:
    return bool(value) if type(value).__name__ in ("bool", "bool_") else None


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list):
        return ", ".join(str(item.value if isinstance(item, Enum) else item) for item in value)
    return None


PolarsType = pl.DataType | type[pl.DataType]
# a JobSpy column's polars type, and the reader of its pandas cells, by its kind (jobping/columns.py)
CELLS: dict[Kind, tuple[PolarsType, Callable[[object], object]]] = {
    "text": (pl.String, _as_text),
    "date": (pl.Date, _as_date),
    "int64": (pl.Int64, _as_int),
    "float": (pl.Float64, _as_float),
    "bool": (pl.Boolean, _as_bool),
}
# jobspy's JobPost as a DataFrame row: every column as scrape_jobs returns it (lists and
# enums joined into text by JobPost's serializer, the location as its display string)
JOBSPY_SCHEMA = {column.read_as: CELLS[column.kind][0] for column in JOBSPY_COLUMNS}
FRAME_SCHEMA = {**JOBSPY_SCHEMA, **dict.fromkeys(SEARCH_COLUMNS, pl.String)}


def _cell(value: object, kind: Kind) -> object:
    """One value of a JobSpy column as the Python value its polars column holds."""
    if _missing(value):
        return None
    dtype, read = CELLS[kind]
    converted = read(value)
    if converted is None:
        raise TypeError(f"{type(value).__name__} {str(value)[:60]!r} is not a {dtype}")
    return converted


def to_polars(jobs: pd.DataFrame, site: str, term: str | None, location: str | None) -> pl.DataFrame:
    """``scrape_jobs``' pandas frame as polars in :data:`FRAME_SCHEMA`, column by column.

    Raises ``NormalisationError`` naming the site and the column when a value has a type
    we do not expect: that is our bug, and it must not pass for a board that is down.
    """
    unknown = [str(name) for name in jobs.columns if name not in JOBSPY_SCHEMA]
    if unknown:
        logger.warning("%s: JobSpy gave columns jobping does not know, left out: %s", site, ", ".join(unknown))
    columns: list[pl.Series] = []
    for column in JOBSPY_COLUMNS:
        name, dtype = column.read_as, JOBSPY_SCHEMA[column.read_as]
        values = jobs[name].tolist() if name in jobs.columns else [None] * len(jobs)
        try:
            cells = [_cell(value, column.kind) for value in values]
            columns.append(pl.Series(name, cells, dtype=dtype, strict=True))
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as exc:
            raise NormalisationError(site, name, str(exc)) from exc
    searches = [
        pl.Series(column, [value] * len(jobs), dtype=pl.String)
        for column, value in zip(SEARCH_COLUMNS, (term, location), strict=True)
    ]
    return pl.DataFrame([*columns, *searches])


def jobspy_frame(posts: list[JobPost]) -> pd.DataFrame:
    """JobPost models as ``scrape_jobs`` turns them into its DataFrame (python-jobspy 1.4.1)."""

    frame = pd.DataFrame([post.model_dump() for post in posts], columns=list(JobPost.model_fields))
    if not posts:
        return frame.astype(column_types)
    return frame.sort_values(by=["site", "date_posted"], ascending=[True, False]).reset_index(drop=True)


def _search_arguments(
    site: SiteName, params: ScrapeParameters, term: str, location: str, proxies: Proxies
) -> dict[str, Any]:
    return {
        **jobspy_options(params, location),
        "site_name": [site],
        "search_term": term,
        "google_search_term": f"{term} jobs near {location}" if site == "google" else None,
        # JobSpy's deprecated linkedin_fetch_description is fetch_description on LinkedIn's searches alone
        "fetch_description": params.fetch_description or (site == "linkedin" and params.linkedin_fetch_description),
        "description_format": "markdown",
        "proxies": proxies.for_jobspy(),
        "ca_cert": str(proxies.ca_cert) if proxies.ca_cert else None,
        "verbose": 0,
    }


def pause_between_searches(seconds: float, sleep: Callable[[float], None] | None = None) -> None:
    """The pause before a board's next search: ``seconds``, give or take up to half of it at random.

    The boards throttle a client that asks again at once; the jitter keeps the pauses from looking scripted.
    """
    if seconds > 0:
        (sleep or time.sleep)(random.uniform(seconds / 2, seconds * 1.5))  # noqa: S311 - politeness, not secrecy


def _check_search(arguments: dict[str, Any]) -> None:
    """Refuse arguments JobSpy would refuse, before any scraper runs, as our error, not the board's."""

    given = {name: value for name, value in arguments.items() if value is not None}
    try:
        ScraperInput.model_validate(given)
    except ValidationError as exc:
        raise SearchRejectedError(f"JobSpy refused the search: {describe(exc)}") from exc


def scrape_site(
    site: SiteName, params: ScrapeParameters, proxies: Proxies | None = None, pause_seconds: float = 0
) -> SiteResult:
    """Every search of the run on one site through JobSpy, through ``proxies`` when there are any,
    ``pause_seconds`` (with jitter) apart.

    A scraper that raises or reports errors is the board's failure and is collected in
    ``errors`` (naming the proxies' hosts, never their credentials); a search JobSpy refuses,
    or a value we cannot read, raises a terminal error.
    """
    proxies = proxies or Proxies()
    secrets = proxies.secrets()
    through = f" through {proxies.shown()}" if proxies.entries else ""

    frames: list[pl.DataFrame] = []
    result = SiteResult(site=site, postings=pl.DataFrame(schema=FRAME_SCHEMA))
    searches = [(term, location) for term in params.search_terms for location in params.locations]
    for index, (term, location) in enumerate(searches):
        if index:
            pause_between_searches(pause_seconds)
        arguments = _search_arguments(site, params, term, location, proxies)
        _check_search(arguments)
        search = f"{term!r} in {location!r}{through}"
        started = time.monotonic()
        try:
            jobs = scrape_jobs(**arguments)
        except Exception as exc:  # whatever a scraper raises is that board's failure
            error = redact(f"{type(exc).__name__}: {exc}", secrets)
            result.errors.append(f"{search}: {error}")
            result.searches.append(_outcome(term, location, pl.DataFrame(schema=FRAME_SCHEMA), [error], started))
            continue
        errors = [redact(str(e), secrets) for e in jobs.attrs.get("errors", {}).values()]
        result.errors.extend(f"{search}: {e}" for e in errors)
        for found in jobs.attrs.get("warnings", {}).values():
            result.warnings.extend(redact(warning, secrets) for warning in found)
        frame = to_polars(jobs, site, term, location)
        frames.append(frame)
        result.searches.append(_outcome(term, location, frame, errors, started))
    if frames:
        result.postings = pl.concat(frames, how="vertical")
    return result


@cache
def _sample_records() -> tuple[dict[str, Any], ...]:
    try:
        text = resources.files("jobping").joinpath(SAMPLE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SampleMissingError(f"the bundled sample {SAMPLE_FILE} is missing from the jobping package") from exc
    return tuple(json.loads(text)["jobs"])


def sample_posts(site: SiteName) -> list[JobPost]:
    """The bundled synthetic postings of one site as JobSpy's own models."""

    return [JobPost.model_validate(record) for record in _sample_records() if record.get("site") == site]


def sample_site(site: SiteName, params: ScrapeParameters) -> SiteResult:
    """The bundled synthetic postings of one site, converted exactly as ``scrape_jobs`` does."""
    started = time.monotonic()
    term, location = params.search_terms[0], params.locations[0]
    frame = to_polars(jobspy_frame(sample_posts(site)), site, term, location)
    if params.remote_only:
        frame = frame.filter(pl.col("is_remote").fill_null(value=False))
    return SiteResult(site=site, postings=frame, searches=[_outcome(term, location, frame, [], started)])


def sample_sites() -> list[SiteName]:
    """The sites that appear in the bundled sample."""
    known: tuple[SiteName, ...] = get_args(SiteName)
    present = {record.get("site") for record in _sample_records()}
    return [site for site in known if site in present]


# more than this share of empty descriptions means the site is serving us something odd
EMPTY_DESCRIPTION_SHARE = 0.5


def health_flags(result: SiteResult) -> list[str]:
    """What looks wrong with a site's answer even though it did not fail."""
    frame = result.postings
    if frame.is_empty():
        return ["returned no postings"]
    empty = _without_description(frame)
    if empty / frame.height > EMPTY_DESCRIPTION_SHARE:
        return [f"{empty} of {frame.height} descriptions are empty"]
    return []


def fetch_site(
    site: SiteName, params: ScrapeParameters, source: str, proxies: Proxies | None = None, pause_seconds: float = 0
) -> SiteResult:
    """Postings of one site; raises ``SiteFailedError`` when the site gave errors and nothing else.

    Live searches go through ``proxies``, ``pause_seconds`` (with jitter) apart; the sample has no board to spare.
    """
    result = sample_site(site, params) if source == "sample" else scrape_site(site, params, proxies, pause_seconds)
    if result.errors and result.postings.is_empty():
        raise SiteFailedError(f"{site}: " + "; ".join(result.errors)[:2_000], result.searches)
    return result
