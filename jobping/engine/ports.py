"""What the analyse engine needs from the world, as three small protocols and the values they pass.

The engine knows messages, stored versions and analysers; the SQS queue, the Delta lake and
the OpenAI client are implementations of these, built by the flow (or by a test, in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from jobping.analysis import Analyser, AnalysisResult
from jobping.contract import Envelope
from jobping.grouping import Grouping

__all__ = [
    "Analysed",
    "Analyser",
    "AnalysisStore",
    "AnswerStore",
    "ClaimEntry",
    "ClaimRecord",
    "Grouping",
    "Queue",
    "QueueDepth",
    "ReceivedMessage",
    "Sighting",
    "StoredIndex",
    "StoredMember",
    "StoredVersion",
    "UnreadableClaim",
]


@dataclass(frozen=True)
class ReceivedMessage:
    """One received message, in our terms rather than a client's dict."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: datetime
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    delayed: int

    @property
    def idle(self) -> bool:
        """Nothing visible, in flight or delayed."""
        return self.visible + self.in_flight + self.delayed == 0


@dataclass(frozen=True)
class StoredVersion:
    """One analysis of one posting's content by one prompt: what makes a second analysis unnecessary.

    ``scraped``: in a row our scrape sent. A scraped posting is stored only when a row of ours holds
    it (a stranger who sent its content first, with their own link, does not make it stored); any
    row holds another producer's posting.
    """

    job_key: str
    content_hash: str
    prompt_version: str
    scraped: bool = False

    def held(self) -> tuple[StoredVersion, ...]:
        """The versions a row of this one makes stored: a row of ours holds anyone's posting of it."""
        return (self, replace(self, scraped=False)) if self.scraped else (self,)


class StoredIndex:
    """The analyses already stored.

    A plain object rather than a set, so that Prefect does not walk every element when the
    index is passed to a task.
    """

    def __init__(self, versions: Iterable[StoredVersion] = ()) -> None:
        self._versions: set[StoredVersion] = set()
        self.add_all(versions)

    def __contains__(self, version: object) -> bool:
        return version in self._versions

    def __iter__(self) -> Iterator[StoredVersion]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def add_all(self, versions: Iterable[StoredVersion]) -> None:
        self._versions.update(held for version in versions for held in version.held())


@dataclass(frozen=True)
class StoredMember:
    """A stored posting of a group key, as the engine needs it to place new ones beside it."""

    job_key: str
    group_key: str
    job_group: str
    description: str | None
    # its newest analysis (None when it cannot be read back), and whose it reused (None: its own)
    result: AnalysisResult | None
    analysis_of: str | None
    # our scrape flow sent it (contract.SCRAPE_PRODUCER): only such a member lends its analysis to a scraped posting
    scraped: bool = False


@dataclass(frozen=True)
class Analysed:
    """A posting with its analysis and its group, ready to be stored."""

    envelope: Envelope
    result: AnalysisResult
    analysed_at: datetime
    message_id: str
    grouping: Grouping | None = None

    @property
    def version(self) -> StoredVersion:
        return StoredVersion(
            self.envelope.job_key, self.envelope.content_hash, self.result.prompt_version, self.envelope.scraped
        )


@dataclass(frozen=True)
class Sighting:
    """Postings a scrape saw again unchanged (one sightings message), ready to be recorded: no analysis."""

    job_keys: tuple[str, ...]
    scraped_at: datetime
    message_id: str


# sqs hands out, sends and deletes at most ten messages per call
MAX_BATCH_ENTRIES = 10


class Queue(Protocol):
    """A queue with a dead-letter queue beside it (SQS, or an in-memory fake)."""

    def depth(self) -> QueueDepth: ...

    def receive(self, max_messages: int, wait_seconds: int) -> list[ReceivedMessage]:
        """Up to ``max_messages``, invisible to others until deleted, released or timed out."""
        ...

    def delete(self, messages: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        """Delete; returns the messages that could not be deleted (they will come again)."""
        ...

    def dead_letter(self, poisoned: Sequence[tuple[ReceivedMessage, str]]) -> list[ReceivedMessage]:
        """Copy each message to the DLQ with its reason; returns those that got there."""
        ...

    def release(self, messages: Sequence[ReceivedMessage]) -> None:
        """Make messages visible again at once."""
        ...

    def extend(self, messages: Sequence[ReceivedMessage], seconds: int) -> int:
        """Keep messages invisible for ``seconds`` more; returns how many were extended."""
        ...


class AnalysisStore(Protocol):
    """Where analyses are stored durably."""

    def stored_versions(self) -> StoredIndex: ...

    def group_keys(self) -> set[str]:
        """Every group key a stored posting has."""
        ...

    def group_members(self, keys: Sequence[str]) -> list[StoredMember]:
        """The stored postings of these group keys, each with its newest analysis."""
        ...

    def write(self, analysed: Sequence[Analysed]) -> None:
        """Store all of ``analysed`` durably, or raise with nothing half-visible."""
        ...

    def record_sightings(self, sightings: Sequence[Sighting]) -> None:
        """Record durably that these postings were seen at these moments, or raise with nothing half-visible."""
        ...


class AnswerStore(Protocol):
    """Paid answers kept across a crash, so that one is never paid twice."""

    def get(self, version: StoredVersion) -> AnalysisResult | None: ...

    def put(self, version: StoredVersion, result: AnalysisResult) -> None: ...


# an owner names a process (host, pid and a random part), never more
MAX_OWNER_CHARS = 200


class ClaimEntry(BaseModel):
    """One generation of a posting's claim, as every consumer reads it: who holds it, until when, how far it got.

    ``claimed``: the holder is working on it; ``answered``: it paid for ``answer``, not stored yet;
    ``stored``: its row is durable since ``stored_at``. A claim whose ``expires_at`` has passed is
    anyone's to take over, with its answer; so is one whose ``message_id`` came back to another
    consumer (its holder no longer keeps that message invisible).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str = Field(min_length=1, max_length=MAX_OWNER_CHARS)
    # the queue's id of the message the holder is working on
    message_id: str | None = Field(default=None, max_length=MAX_OWNER_CHARS)
    state: Literal["claimed", "answered", "stored"]
    expires_at: AwareDatetime
    stored_at: AwareDatetime | None = None
    answer: AnalysisResult | None = None


@dataclass(frozen=True)
class UnreadableClaim:
    """A claim file that is not a claim (cut short, forged, too large): taken over like an expired one."""

    reason: str


class ClaimRecord(Protocol):
    """The claims every consumer shares, in generations per stored version (the lake's ``claims/``, or memory).

    A generation is created once, by whoever is first; only its creator replaces it afterwards. A
    claim that ran out is taken over by creating the next generation, so two consumers never both
    take one over.
    """

    def read(self, version: StoredVersion, generation: int) -> ClaimEntry | UnreadableClaim | None:
        """The entry of this generation; None when it does not exist."""
        ...

    def create(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> bool:
        """Write ``entry`` whole if this generation does not exist yet; False when another was first."""
        ...

    def replace(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> None:
        """Overwrite a generation this consumer created, whole."""
        ...

    def prune(self, older_than: datetime) -> int:
        """Delete the claims of every version whose generations are all older than ``older_than``; how many files."""
        ...
