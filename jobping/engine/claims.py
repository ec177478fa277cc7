"""Claims every consumer shares, taken before a posting costs anything: a posting delivered twice, to any
number of consumers on any number of machines, is analysed once and stored once.

Each stored version has a chain of claim generations in a shared record (the lake's ``claims/``). The
consumer that creates a generation holds the claim for a lease (the queue's visibility timeout),
renews it while it works, writes into it the answer it paid for, and finally that the row is stored.
Another consumer that meets a live claim leaves its message on the queue until the claim is stored or
runs out, even when that message is the holder's own come back: a holder whose heartbeat is late looks
just like one that was killed until its lease runs out, and taking a live holder's claim over would pay
for the posting twice. One that meets a claim that ran out creates the next generation, which only one
consumer can, and reuses the answer already paid for.

Whatever comes from the record is judged before it is believed: a lease longer than a lease, a
``stored`` in the future, or a ``stored`` from before this drain read the lake that the lake does not
hold (a forged claim, a lost row) is taken over like a claim that ran out.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jobping.analysis import AnalysisResult
from jobping.engine.ports import MAX_OWNER_CHARS, ClaimEntry, ClaimRecord, StoredVersion, UnreadableClaim

logger = logging.getLogger(__name__)

# clocks of consumers on other machines may differ by this much
CLOCK_SKEW_SECONDS = 60
# generations walked before a version is analysed with no claim at all (never blocked by a broken record)
MAX_GENERATIONS = 32
# tries at one generation that exists by name but cannot be read yet (S3's conditional write in progress)
CREATE_ATTEMPTS = 3
# a stored claim matters to drains that read the lake before its row was written; no drain runs for days
KEEP_SECONDS = 2 * 86_400


@dataclass(frozen=True)
class Held:
    """This consumer holds the claim: analyse, or store ``answer``, paid for by a consumer whose claim ran out."""

    answer: AnalysisResult | None = None


@dataclass(frozen=True)
class HeldElsewhere:
    """Another consumer holds a live claim: come back once it is stored or has run out."""

    retry_after_seconds: int


@dataclass(frozen=True)
class StoredElsewhere:
    """Another consumer stored this version after this drain read what the lake held."""


ClaimOutcome = Held | HeldElsewhere | StoredElsewhere


def new_owner() -> str:
    """A name for this consumer that no other consumer, here or on another machine, shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"[-MAX_OWNER_CHARS:]


def _now() -> datetime:
    return datetime.now(UTC)


class SharedClaims:
    """One drain's side of the shared claims: what it claims, holds, renews, stores and lets go.

    ``known_since`` is the moment just before the drain read what the lake holds. Thread-safe: batches
    settle in threads, and the heartbeat renews from another.
    """

    def __init__(
        self,
        record: ClaimRecord,
        *,
        lease_seconds: float,
        known_since: datetime,
        owner: str | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.record = record
        self.owner = owner or new_owner()
        self.lease = timedelta(seconds=lease_seconds)
        self.known_since = known_since
        self.clock = clock
        self._held: dict[StoredVersion, tuple[int, ClaimEntry]] = {}
        # a renewal written after "stored" would make a stored claim look live again: one writer at a time
        self._writing = threading.Lock()

    @property
    def held(self) -> int:
        return len(self._held)

    def claim(self, version: StoredVersion, message_id: str | None = None) -> ClaimOutcome:
        """Take the claim on ``version`` for the message ``message_id`` (kept in the record, to tell which
        message holds it), or say who has it; raises what the record raises."""
        answer: AnalysisResult | None = None
        generation, attempts = 0, 0
        while generation < MAX_GENERATIONS:
            now = self.clock()
            entry = self.record.read(version, generation)
            if entry is None:
                mine = ClaimEntry(
                    owner=self.owner, message_id=message_id, state="answered" if answer else "claimed",
                    expires_at=now + self.lease, answer=answer,
                )  # fmt: skip
                if self.record.create(version, generation, mine):
                    with self._writing:
                        self._held[version] = (generation, mine)
                    return Held(answer)
                attempts += 1
                if attempts < CREATE_ATTEMPTS:
                    # another consumer was first: read what it wrote
                    continue
                entry = UnreadableClaim("exists but cannot be read")
            attempts = 0
            judged = self._judge(version, generation, entry, now)
            if judged is not None:
                return judged
            if isinstance(entry, ClaimEntry) and entry.answer is not None:
                answer = entry.answer
            generation += 1
        logger.warning(
            "%s has %d claim generations that ran out or cannot be read: analysed with no claim",
            version.job_key[:200], MAX_GENERATIONS,
        )  # fmt: skip
        return Held(answer)

    def _judge(
        self,
        version: StoredVersion,
        generation: int,
        entry: ClaimEntry | UnreadableClaim,
        now: datetime,
    ) -> ClaimOutcome | None:
        """What a generation that exists means; None: it is to be taken over by the next one."""
        why = entry.reason if isinstance(entry, UnreadableClaim) else self._distrust(entry, now)
        if why is not None or isinstance(entry, UnreadableClaim):
            logger.warning("claim %d of %s is taken over: %s", generation, version.job_key[:200], why)
            return None
        if entry.state == "stored":
            return StoredElsewhere()
        if entry.owner == self.owner:
            # this drain's own claim, met again by a batch handled a second time
            with self._writing:
                self._held[version] = (generation, entry)
            return Held(entry.answer)
        if entry.expires_at <= now:
            # ran out: its holder is gone
            return None
        left = math.ceil((entry.expires_at - now).total_seconds()) + 1
        return HeldElsewhere(min(left, max(1, math.ceil(self.lease.total_seconds()))))

    def _distrust(self, entry: ClaimEntry, now: datetime) -> str | None:
        """Why a well-formed claim is not to be believed, or None."""
        skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
        if entry.state == "stored":
            if entry.stored_at is None or entry.stored_at > now + skew:
                return "it says stored at an impossible moment"
            if entry.stored_at < self.known_since - skew:
                # stored before this drain read the lake, yet the lake does not hold it: the row was lost
                return "it says stored before this drain read the lake, which does not hold it"
        elif entry.owner != self.owner and entry.expires_at > now + self.lease + skew:
            return "its lease is longer than a lease"
        return None

    def answered(self, version: StoredVersion, answer: AnalysisResult) -> None:
        """Keep the answer just paid for in the claim: whoever takes the claim over stores it, not asks again."""
        self._update(
            [version], lambda entry: entry.model_copy(update={"state": "answered", "answer": answer}), keep=True
        )

    def taken_over(self, versions: Iterable[StoredVersion]) -> set[StoredVersion]:
        """Of ``versions`` this drain holds, those another consumer has taken over since (a newer generation
        exists): it stores them, so storing them here too would store them twice. They are held no more.

        A claim taken over while its holder lives (SQS handed the holder's message to another consumer,
        or the holder stalled past its lease) is asked about just before the durable write.
        """
        with self._writing:
            held = {version: self._held[version][0] for version in versions if version in self._held}
        lost = set()
        for version, generation in held.items():
            try:
                if self.record.read(version, generation + 1) is not None:
                    lost.add(version)
            except Exception:
                logger.exception("could not ask whether the claim of %s was taken over", version.job_key[:200])
        # run out at once, so that others walk on to the generation that took it over
        self.release(lost)
        return lost

    def stored(self, versions: Iterable[StoredVersion]) -> None:
        """The rows of ``versions`` are durable: every consumer now skips them."""
        now = self.clock()
        self._update(
            versions, lambda entry: entry.model_copy(update={"state": "stored", "stored_at": now, "answer": None})
        )

    def release(self, versions: Iterable[StoredVersion]) -> None:
        """Let go of claims not stored (a failure, a budget): anyone may take them over at once, with their answer."""
        now = self.clock()
        self._update(versions, lambda entry: entry.model_copy(update={"expires_at": now}))

    def renew(self) -> int:
        """Extend the lease of every claim still held; how many were renewed."""
        with self._writing:
            versions = list(self._held)
        expires_at = self.clock() + self.lease
        return self._update(versions, lambda entry: entry.model_copy(update={"expires_at": expires_at}), keep=True)

    def close(self) -> None:
        """At the drain's end: let go of what is still held, then delete claims too old to matter."""
        with self._writing:
            versions = list(self._held)
        self.release(versions)
        try:
            pruned = self.record.prune(self.clock() - timedelta(seconds=KEEP_SECONDS))
        except Exception:
            logger.exception("old claims could not be pruned; the next drain tries again")
            return
        if pruned:
            logger.info("pruned %d claim files older than %d s", pruned, KEEP_SECONDS)

    def _update(
        self, versions: Iterable[StoredVersion], change: Callable[[ClaimEntry], ClaimEntry], *, keep: bool = False
    ) -> int:
        """Replace the held claims of ``versions`` with ``change`` of them; unless ``keep``, they are held no more.

        A claim that cannot be written is logged and left as it is: it runs out by itself.
        """
        done, failed = 0, 0
        error: Exception | None = None
        with self._writing:
            for version in versions:
                held = self._held.get(version) if keep else self._held.pop(version, None)
                if held is None:
                    continue
                generation, entry = held
                changed = change(entry)
                try:
                    self.record.replace(version, generation, changed)
                except Exception as exc:
                    failed, error = failed + 1, exc
                    continue
                if keep:
                    self._held[version] = (generation, changed)
                done += 1
        if failed:
            logger.warning("%d claims could not be written; they run out within %s", failed, self.lease, exc_info=error)
        return done
