"""The queue's second message: postings a scrape saw again unchanged, so that ``last_seen`` moves.

The scrape publishes only what the lake does not hold with this content and prompt (no second
analysis, no second bill), and never writes to the lake itself. What it drops as already stored
it still reports, as sightings: one message carries the scrape's moment and many job_keys,
``{"kind": "seen", "schema_version": 1, "scraped_at": ..., "job_keys": [...]}``, under the
queue's byte budget. The analyse drain records them in the lake without an analysis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from jobping.columns import MAX_URL_CHARS
from jobping.contract import (
    BODY_BUDGET_BYTES,
    Envelope,
    PoisonMessageError,
    envelope_from,
    load_message,
    scrape_moment,
)
from jobping.errors import describe

SIGHTINGS_KIND: Literal["seen"] = "seen"
SIGHTINGS_SCHEMA_VERSION: Literal[1] = 1
# job_keys one message may carry; with keys of a usual length (20 to 60 bytes) the byte budget binds first
MAX_KEYS_PER_MESSAGE = 20_000

JobKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS)]


class Sightings(BaseModel):
    """Postings one scrape saw, already stored with the same content: only their keys and the moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["seen"]
    schema_version: Literal[1]
    scraped_at: datetime
    job_keys: list[JobKey] = Field(min_length=1, max_length=MAX_KEYS_PER_MESSAGE)

    @field_validator("scraped_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # the same range as a posting's: a sighting from the future would keep a job fresh for ever
        return scrape_moment(value)


def parse_body(body: str, received_at: datetime) -> Envelope | Sightings:
    """Either message on the queue; ``PoisonMessageError`` with a reason when it can never be valid."""
    data = load_message(body)
    if data.get("kind") != SIGHTINGS_KIND:
        return envelope_from(data, received_at)
    version = data.get("schema_version")
    if version != SIGHTINGS_SCHEMA_VERSION:
        raise PoisonMessageError(f"unknown sightings schema_version {version!r}, expected {SIGHTINGS_SCHEMA_VERSION}")
    try:
        return Sightings.model_validate(data)
    except ValidationError as exc:
        raise PoisonMessageError(f"invalid sightings: {describe(exc, show_input=False)}") from exc


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_sightings(job_keys: Sequence[str], scraped_at: datetime, budget: int = BODY_BUDGET_BYTES) -> list[str]:
    """Message bodies carrying every key once, each under ``budget`` bytes and MAX_KEYS_PER_MESSAGE keys."""
    moment = scraped_at.astimezone(UTC).isoformat()
    head = _json({"kind": SIGHTINGS_KIND, "schema_version": SIGHTINGS_SCHEMA_VERSION, "scraped_at": moment})
    opening = head[:-1] + ',"job_keys":['
    bodies: list[str] = []
    keys: list[str] = []
    size = len(opening.encode()) + len(b"]}")
    for key in dict.fromkeys(job_keys):
        # a comma before every key but the first
        cost = len(_json(key).encode()) + (1 if keys else 0)
        if keys and (size + cost > budget or len(keys) == MAX_KEYS_PER_MESSAGE):
            bodies.append(opening + ",".join(_json(k) for k in keys) + "]}")
            keys, size = [], len(opening.encode()) + len(b"]}")
            cost -= 1
        keys.append(key)
        size += cost
    if keys:
        bodies.append(opening + ",".join(_json(k) for k in keys) + "]}")
    return bodies
