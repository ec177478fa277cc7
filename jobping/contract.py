"""The message contract on the queue: one posting per message, in JobSpy's field names.

A message is either an ``Envelope`` (what the scrape flow sends) or a bare posting object
(what a plain producer sends: ``json.dumps`` of a pandas row, so missing values arrive as
``NaN``). Both parse to an ``Envelope``; anything else is a ``PoisonMessageError``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobping.columns import CONTENT_FIELDS, JOBSPY_COLUMNS, MAX_SHORT_TEXT_CHARS, MAX_URL_CHARS
from jobping.errors import describe
from jobping.posting import MAX_FUTURE_DAYS
from jobping.posting import JobPosting as JobPosting  # noqa: PLC0414 (the envelope's: its readers import it here)

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Literal[1] = 1
MAX_MESSAGE_BYTES = 262_144
# a scrape before this is a typo or an attack: a partition named +10000-01-01 breaks the lake for good
EARLIEST_SCRAPE = datetime(2000, 1, 1, tzinfo=UTC)
# who sent a posting: our scrape flow marks its envelopes so; a bare posting or another producer's envelope
# is from outside. A claim, not a proof: anyone who may send to the queue can write it (README, Job groups)
SCRAPE_PRODUCER = "jobping-scrape"
OUTSIDE_PRODUCER = "outside"
PRODUCER_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

# query parameters that only track the visitor and never identify the job
TRACKING_PARAMS = frozenset(
    {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref", "refid", "trk", "trackingid", "from"}
)


def scrape_moment(value: datetime) -> datetime:
    """A scrape's moment in UTC and in a sane range (naive is UTC): the lake's partition is its date."""
    try:
        moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"scraped_at {value.isoformat()} is out of range") from exc
    latest = datetime.now(UTC) + timedelta(days=MAX_FUTURE_DAYS)
    if not EARLIEST_SCRAPE <= moment <= latest:
        span = f"{EARLIEST_SCRAPE:%Y-%m-%d} .. {latest:%Y-%m-%d}"
        raise ValueError(f"scraped_at {moment.isoformat()} is outside {span}")
    return moment


class PoisonMessageError(ValueError):
    """A message that can never be processed: it goes to the DLQ with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SearchSpec(BaseModel):
    """The search that found a posting."""

    model_config = ConfigDict(frozen=True)

    term: str | None = Field(default=None, max_length=MAX_SHORT_TEXT_CHARS)
    location: str | None = Field(default=None, max_length=MAX_SHORT_TEXT_CHARS)


class Envelope(BaseModel):
    """What travels on the queue: a posting with its identity and provenance."""

    schema_version: Literal[1] = SCHEMA_VERSION
    job_key: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    scraped_at: datetime
    search: SearchSpec = SearchSpec()
    description_truncated: bool = False
    # derived, not trusted: whatever a producer says, it is the posting's own (see _derived)
    description_missing: bool = False
    # every posting field cut to fit a limit, the description included
    truncated_fields: list[str] = Field(default_factory=list, max_length=len(JobPosting.model_fields))
    # every optional posting field whose value could not be valid and was stored as null
    cleared_fields: list[str] = Field(default_factory=list, max_length=len(JobPosting.model_fields))
    # not part of the content hash: the same posting from two producers is one content
    producer: str = Field(default=OUTSIDE_PRODUCER, pattern=PRODUCER_PATTERN)
    posting: JobPosting

    @property
    def scraped(self) -> bool:
        """Our scrape flow says it sent this posting (a claim a producer with send rights could copy)."""
        return self.producer == SCRAPE_PRODUCER

    @model_validator(mode="after")
    def _derived(self) -> Envelope:
        # every producer's posting, our scrape's or a bare one, is marked by what it holds
        self.description_missing = self.posting.description_missing
        return self

    @field_validator("scraped_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # in UTC and in a sane range: the lake's partition is this moment's date
        return scrape_moment(value)


def normalise_url(url: str) -> str:
    """The URL with scheme and host lowercased, tracking parameters and fragment dropped."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in TRACKING_PARAMS]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(sorted(query)), ""))


def job_key(posting: JobPosting) -> str:
    """Stable identity across runs: the site and the site's own id, else the normalised URL."""
    if posting.site and posting.id:
        return f"{posting.site.lower()}:{posting.id}"
    return "url:" + hashlib.sha256(normalise_url(posting.job_url).encode()).hexdigest()[:32]


def content_hash(posting: JobPosting) -> str:
    """A hash of what the posting says, so an unchanged posting is never analysed twice."""
    content = {name: getattr(posting, name) for name in CONTENT_FIELDS}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def envelope_for(
    posting: JobPosting,
    scraped_at: datetime,
    search: SearchSpec | None = None,
    *,
    truncated: Sequence[str] = (),
    cleared: Sequence[str] = (),
    producer: str = OUTSIDE_PRODUCER,
) -> Envelope:
    return Envelope(
        job_key=job_key(posting),
        content_hash=content_hash(posting),
        scraped_at=scraped_at,
        search=search or SearchSpec(),
        description_truncated="description" in truncated,
        truncated_fields=list(truncated),
        cleared_fields=list(cleared),
        producer=producer,
        posting=posting,
    )


# a posting without these is no posting at all; any other field may be cut or cleared
REQUIRED_FIELDS = tuple(column.read_as for column in JOBSPY_COLUMNS if not column.nullable)
# a text longer than its limit is cut to it
MAX_CHARS = {column.read_as: column.max_chars for column in JOBSPY_COLUMNS if column.max_chars}


@dataclass(frozen=True)
class Salvaged:
    """A posting made valid by cutting what is too long and clearing what cannot be valid."""

    posting: JobPosting
    cut: dict[str, str] = field(default_factory=dict)
    cleared: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line per field that was changed, saying which and why."""
        return [f"{name} {why}" for name, why in self.cut.items()] + [
            f"{name} cleared: {why}" for name, why in self.cleared.items()
        ]


def salvage_posting(data: dict[str, Any]) -> Salvaged:
    """A posting from a row or a plain producer's object; only a missing or bad title or job_url refuses it.

    Text over its field's limit is cut to the limit, and an optional value that cannot be
    valid (a negative salary, an unknown interval) is cleared: a posting is never lost for
    a detail. Raises ``PoisonMessageError`` when the title or job_url is missing or invalid.
    """
    values = dict(data)
    cut: dict[str, str] = {}
    for name in JobPosting.model_fields:
        limit, value = MAX_CHARS.get(name), values.get(name)
        if limit and isinstance(value, str) and len(text := value.strip()) > limit:
            values[name] = text[:limit]
            cut[name] = f"cut from {len(text):,} to {limit:,} characters (its limit)"
    cleared: dict[str, str] = {}
    for _attempt in range(2):
        try:
            return Salvaged(JobPosting.model_validate(values), cut, cleared)
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                if name in REQUIRED_FIELDS or name not in JobPosting.model_fields or name in cleared:
                    raise PoisonMessageError(f"invalid posting: {describe(exc, show_input=False)}") from exc
                values[name] = None
                cleared[name] = error["msg"]
    raise AssertionError("unreachable: the second attempt has every bad optional field cleared")  # pragma: no cover


def parse_message(body: str, received_at: datetime) -> Envelope:
    """Parse one message body; raise ``PoisonMessageError`` with a reason when it can never be valid."""
    return envelope_from(load_message(body), received_at)


def load_message(body: str) -> dict[str, Any]:
    """One message body as a JSON object within the size limit; else ``PoisonMessageError``."""
    size = len(body.encode())
    if size > MAX_MESSAGE_BYTES:
        raise PoisonMessageError(f"message is {size} bytes, over the {MAX_MESSAGE_BYTES} byte limit")
    try:
        data = json.loads(body)
    # ValueError also covers an integer past Python's 4,300 digits, which is no JSONDecodeError
    except (ValueError, RecursionError) as exc:
        raise PoisonMessageError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PoisonMessageError(f"not a JSON object but {type(data).__name__}")
    return data


def envelope_from(data: dict[str, Any], received_at: datetime) -> Envelope:
    """A posting message's object as an envelope (see :func:`parse_message`)."""
    if "schema_version" in data or "posting" in data:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PoisonMessageError(f"unknown schema_version {version!r}, expected {SCHEMA_VERSION}")
        try:
            envelope = Envelope.model_validate(data)
        except ValidationError as exc:
            raise PoisonMessageError(f"invalid envelope: {describe(exc, show_input=False)}") from exc
        # derived, not trusted: a job_key that is not the posting's own would replace another job's row
        expected = job_key(envelope.posting)
        if envelope.job_key != expected:
            raise PoisonMessageError(
                f"job_key {envelope.job_key[:100]!r} is not the posting's own ({expected[:100]!r})"
            )
        # the hash is the producer's, taken before any cut; a posting nothing was cut from must match it
        uncut = not envelope.truncated_fields and not envelope.description_truncated
        if uncut and envelope.content_hash != content_hash(envelope.posting):
            raise PoisonMessageError("content_hash does not match the posting")
        return envelope
    salvaged = salvage_posting(data)
    for note in salvaged.notes():
        logger.warning("a bare posting's %s", note)
    return envelope_for(salvaged.posting, received_at, truncated=list(salvaged.cut), cleared=list(salvaged.cleared))


# room left in a message for its attributes and the batch request's framing
BODY_BUDGET_BYTES = MAX_MESSAGE_BYTES - 2_048
TRUNCATION_STEP_BYTES = 512


def encode(envelope: Envelope, budget: int = BODY_BUDGET_BYTES) -> str:
    """The envelope as a message body under ``budget`` bytes (see :func:`encode_cut`)."""
    return encode_cut(envelope, budget)[0]


def _longest_optional_text(posting: JobPosting) -> str | None:
    texts = {
        name: len(value.encode())
        for name in JobPosting.model_fields
        if name not in REQUIRED_FIELDS and isinstance(value := getattr(posting, name), str) and value
    }
    return max(texts, key=lambda name: texts[name]) if texts else None


def encode_cut(envelope: Envelope, budget: int = BODY_BUDGET_BYTES) -> tuple[str, dict[str, str]]:
    """The envelope as a message body under ``budget`` bytes, and what was cut to get there.

    The longest optional text is cut (the description, nearly always), then the next, each marked in
    ``truncated_fields`` (and ``description_truncated``); the content hash stays the one
    of the whole posting. Raises ``PoisonMessageError`` only if the title and URL alone
    are over the budget, which their own limits rule out.
    """
    body = envelope.model_dump_json()
    cut: dict[str, str] = {}
    while (size := len(body.encode())) > budget:
        posting = envelope.posting
        name = _longest_optional_text(posting)
        if name is None:
            raise PoisonMessageError(f"posting is {size} bytes even without its optional text")
        raw = str(getattr(posting, name)).encode()
        # json escaping can make the body grow faster than the text: the loop cuts again
        keep = max(0, len(raw) - (size - budget) - TRUNCATION_STEP_BYTES)
        text = raw[:keep].decode(errors="ignore") or None
        cut[name] = f"cut from {len(raw):,} to {keep:,} bytes to fit the {budget:,}-byte message budget"
        truncated = sorted({*envelope.truncated_fields, name})
        envelope = envelope.model_copy(
            update={
                "posting": posting.model_copy(update={name: text}),
                "truncated_fields": truncated,
                "description_truncated": "description" in truncated,
            }
        )
        body = envelope.model_dump_json()
    return body, cut
