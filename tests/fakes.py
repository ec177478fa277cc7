"""In-memory stand-ins for the engine's three protocols: a queue, a lake and an analyser.

They are for the engine's own rules, tested in milliseconds; the same rules are tested against
real processes (moto's SQS server, the OpenAI stand-in, Parquet on disk) elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting
from jobping.engine.ports import (
    Analysed,
    QueueDepth,
    ReceivedMessage,
    Sighting,
    StoredIndex,
    StoredMember,
    StoredVersion,
)
from jobping.errors import ConfigurationError, PostingRejectedError, TransientError

SENT = datetime(2026, 11, 27, tzinfo=UTC)


def posting(n: int, title: str = "Data Engineer") -> str:
    """A plain producer's body for posting ``n``."""
    return json.dumps({"title": f"{title} {n}", "job_url": f"https://jobs.example.com/{n}"})


DESCRIPTION = (
    "## About us\n\nWiener Würfel builds booking and point-of-sale systems for restaurants in Austria.\n\n"
    "## What you will do\n\n* Own our Airflow pipelines and dbt models\n* Move the warehouse to Snowflake\n"
    "* Build streaming ingestion with Kafka and Python\n* Mentor two junior data engineers\n\n"
    "## What we ask\n\n* Five years of Python and SQL\n* Experience with AWS and Terraform\n"
)


def cross_post(site: str, n: int, *, company: str = "Wiener Würfel GmbH", location: str = "Wien, Austria") -> str:
    """The same job as another board shows it: the company and city may be written another way."""
    return json.dumps(
        {
            "site": site, "id": str(n), "title": "Data Platform Engineer (m/w/d)", "company": company,
            "location": location, "job_url": f"https://{site}.example/jobs/{n}", "description": DESCRIPTION,
        }
    )  # fmt: skip


@dataclass
class FakeQueue:
    """A queue and its DLQ in memory; ``dlq_down`` makes dead-lettering raise as during an outage."""

    visible: list[ReceivedMessage] = field(default_factory=list)
    in_flight: dict[str, ReceivedMessage] = field(default_factory=dict)
    dlq: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    extended: Counter[str] = field(default_factory=Counter)
    receives: int = 0
    dlq_down: bool = False
    receive_error: Exception | None = None
    _next: int = 0

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self._next += 1
            self.visible.append(ReceivedMessage(f"m{self._next}", f"rh{self._next}", body, 0, SENT))

    def depth(self) -> QueueDepth:
        return QueueDepth("fake", len(self.visible), len(self.in_flight), 0)

    def receive(self, max_messages: int, wait_seconds: int) -> list[ReceivedMessage]:
        self.receives += 1
        if self.receive_error is not None and self.receives > 1:
            raise self.receive_error
        taken, self.visible = self.visible[:max_messages], self.visible[max_messages:]
        received = [
            ReceivedMessage(m.message_id, m.receipt_handle, m.body, m.receive_count + 1, m.sent_at) for m in taken
        ]
        self.in_flight.update((m.message_id, m) for m in received)
        return received

    def delete(self, messages: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        for message in messages:
            self.in_flight.pop(message.message_id, None)
            self.deleted.append(message.message_id)
        return []

    def dead_letter(self, poisoned: Sequence[tuple[ReceivedMessage, str]]) -> list[ReceivedMessage]:
        if self.dlq_down:
            raise TransientError("the DLQ does not answer")
        self.dlq.extend((message.body, reason) for message, reason in poisoned)
        return [message for message, _ in poisoned]

    def release(self, messages: Sequence[ReceivedMessage]) -> None:
        for message in messages:
            self.visible.append(self.in_flight.pop(message.message_id))
            self.released.append(message.message_id)

    def extend(self, messages: Sequence[ReceivedMessage], seconds: int) -> int:
        self.extended.update(m.message_id for m in messages)
        return len(messages)


@dataclass
class FakeLake:
    """Stored analyses in memory; ``write_failures`` writes raise first, as a full disk would."""

    versions: set[StoredVersion] = field(default_factory=set)
    rows: list[Analysed] = field(default_factory=list)
    write_failures: int = 0
    writes: int = 0
    # the keys of each group_members read, in order
    member_reads: list[list[str]] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    # record_sightings calls that raise first, as a full disk would
    sighting_failures: int = 0

    def stored_versions(self) -> StoredIndex:
        return StoredIndex(self.versions)

    def group_keys(self) -> set[str]:
        return {a.grouping.group_key for a in self.rows if a.grouping is not None and a.grouping.group_key}

    def group_members(self, keys: Sequence[str]) -> list[StoredMember]:
        self.member_reads.append(list(keys))
        newest = {a.envelope.job_key: a for a in self.rows if a.grouping is not None and a.grouping.group_key in keys}
        return [
            StoredMember(
                a.envelope.job_key,
                a.grouping.group_key,
                a.grouping.job_group,
                a.envelope.posting.description,
                a.result,
                a.grouping.analysis_of,
            )
            for a in newest.values()
            if a.grouping is not None and a.grouping.group_key is not None
        ]

    def write(self, analysed: Sequence[Analysed]) -> None:
        self.writes += 1
        if self.write_failures:
            self.write_failures -= 1
            raise OSError(28, "No space left on device")
        self.rows.extend(analysed)
        self.versions.update(a.version for a in analysed)

    def record_sightings(self, sightings: Sequence[Sighting]) -> None:
        if self.sighting_failures:
            self.sighting_failures -= 1
            raise OSError(28, "No space left on device")
        self.sightings.extend(sightings)


@dataclass
class FakeAnalyser:
    """Answers by a word in the title: FAIL raises a bug, REJECT a refusal, FLAKY a passing error at
    first, DOWN always a passing error, KEY a rejected key; SLOW takes ``slow_seconds``."""

    cost_usd: float = 0.01
    flaky_failures: int = 1
    slow_seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    model: str = "fake-model"
    prompt_version: str = "p1"

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        self.calls[posting.title] += 1
        if "SLOW" in posting.title:
            await asyncio.sleep(self.slow_seconds)
        if "FAIL" in posting.title:
            raise ValueError("salary 187,200,000 above the bound")
        if "REJECT" in posting.title:
            raise PostingRejectedError("the model refused: no")
        if "FLAKY" in posting.title and self.calls[posting.title] <= self.flaky_failures:
            raise TransientError("the LLM answered 503")
        if "DOWN" in posting.title:
            raise TransientError("the LLM answered 503")
        if "KEY" in posting.title:
            raise ConfigurationError("the API key was rejected")
        analysis = JobAnalysis(
            fit_score=70, verdict="maybe", seniority="mid", remote_policy="unknown", skills=[],
            salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="ok",
        )  # fmt: skip
        return AnalysisResult(
            analysis=analysis, model=self.model, prompt_version=self.prompt_version,
            prompt_tokens=100, completion_tokens=20, cost_usd=self.cost_usd,
        )  # fmt: skip


@dataclass
class MemoryAnswers:
    """Paid answers, as the answer log keeps them across a crash."""

    answers: dict[StoredVersion, AnalysisResult] = field(default_factory=dict)

    def get(self, version: StoredVersion) -> AnalysisResult | None:
        return self.answers.get(version)

    def put(self, version: StoredVersion, result: AnalysisResult) -> None:
        self.answers[version] = result
