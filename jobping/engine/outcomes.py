"""What became of each message, as types, and the one type that sums them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from jobping.analysis import AnalysisResult, Verdict
from jobping.engine.ports import Grouping


@dataclass(frozen=True)
class Stored:
    """Analysed (or given the analysis of the same job's posting) and durably written; deleted from the queue."""

    result: AnalysisResult
    grouping: Grouping | None = None

    @property
    def reused(self) -> bool:
        return self.grouping is not None and self.grouping.analysis_of is not None


@dataclass(frozen=True)
class Skipped:
    """Deleted without an analysis: already stored with the same content and prompt, or (``duplicate``)
    another message of this run carried the same posting and was analysed."""

    duplicate: bool = False


@dataclass(frozen=True)
class Seen:
    """A sightings message: the postings it names were recorded as seen, with no analysis; deleted."""

    postings: int


@dataclass(frozen=True)
class DeadLettered:
    """Can never be analysed; copied to the DLQ with the reason, then deleted."""

    reason: str


@dataclass(frozen=True)
class Deferred:
    """Not analysed because a budget ran out; visible again at once."""


@dataclass(frozen=True)
class Retry:
    """Failed for a passing reason; left on the queue to come again."""

    reason: str


@dataclass(frozen=True)
class Claimed:
    """Another consumer holds this posting's claim: left on the queue until that claim is stored or runs
    out, which is ``retry_after_seconds`` at the most."""

    retry_after_seconds: int


@dataclass(frozen=True)
class Fatal:
    """Failed in a way that fails every posting alike (a rejected key); kept, and the run stops."""

    error: BaseException


Outcome = Stored | Skipped | Seen | DeadLettered | Deferred | Retry | Claimed | Fatal
# outcomes after which the message is deleted from the queue
FINISHED = (Stored, Skipped, Seen, DeadLettered)


@dataclass
class Counts:
    """Messages by outcome, and what the analyses cost; ``received`` is always the sum of the outcomes."""

    received: int = 0
    stored: int = 0
    # already stored, or analysed by another message of the run
    skipped: int = 0
    dead_lettered: int = 0
    # retried, deferred by a budget, claimed by another consumer, or kept by a fatal error: they come again
    left_for_retry: int = 0
    # of those, left because another consumer held the posting's claim
    claimed: int = 0
    # finished, but the delete failed: they come again and are then skipped
    not_deleted: int = 0
    # stored with the analysis of another posting of the same job: no LLM request
    reused: int = 0
    # sightings messages recorded (postings a scrape saw again unchanged), and the postings they named
    seen: int = 0
    seen_postings: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.skipped + self.seen + self.dead_lettered + self.left_for_retry

    def count(self, outcome: Outcome) -> None:
        self.received += 1
        match outcome:
            case Stored(result):
                self.stored += 1
                self.reused += outcome.reused
                self.prompt_tokens += result.prompt_tokens
                self.completion_tokens += result.completion_tokens
                self.cost_usd += result.cost_usd
            case Skipped():
                self.skipped += 1
            case Seen(postings):
                self.seen += 1
                self.seen_postings += postings
            case DeadLettered():
                self.dead_lettered += 1
            case Claimed():
                self.left_for_retry += 1
                self.claimed += 1
            case Deferred() | Retry() | Fatal():
                self.left_for_retry += 1

    def add(self, other: Counts) -> None:
        for name in (f.name for f in fields(Counts)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return (
            f"received {self.received} = stored {self.stored} + skipped {self.skipped} + "
            # sightings messages only when there were any: the line reads as it always did otherwise
            + (f"seen {self.seen} + " if self.seen else "")
            + f"DLQ {self.dead_lettered} + left for retry {self.left_for_retry}"
        )


@dataclass(frozen=True)
class TopMatch:
    """One of a run's best fits, as the top-matches artifact shows it."""

    fit_score: int
    verdict: Verdict
    title: str
    company: str
    job_url: str
    # postings of one job show once
    job_group: str = ""


@dataclass
class BatchResult:
    """Each message of one batch with its outcome, and what they add up to."""

    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    top: list[TopMatch] = field(default_factory=list)
    # the first error that fails every posting alike, raised by the run once it has settled
    fatal: BaseException | None = None

    @property
    def dlq_reasons(self) -> list[str]:
        return [outcome.reason for _, outcome in self.outcomes if isinstance(outcome, DeadLettered)]

    @property
    def retry_reasons(self) -> list[str]:
        return [outcome.reason for _, outcome in self.outcomes if isinstance(outcome, Retry)]
