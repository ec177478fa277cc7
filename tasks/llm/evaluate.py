"""How well an analyser judges: the analyser the settings select, run over a labelled set.

Each labelled posting goes the way a queued one goes in the analyse flow: it was validated as the
consumer validates a message (jobping/labelled.py), and it is judged by what ``make_analyser``
returns (the prompt, the answer's validation, the hard limits), with as many in flight as the
settings allow. A posting is pinged by the same rule as the digest's (jobping/fits.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

from jobping.analysis import Analyser, AnalysisResult
from jobping.errors import PostingRejectedError, TransientError
from jobping.fits import fits
from jobping.labelled import LabelledPosting, LabelledSet
from jobping.profile import Profile
from jobping.settings import LlmSettings
from jobping.text import one_line
from tasks.llm.factory import analyser_in_use, make_analyser

# what issue 29 asks of the offline analyser on the shipped set; printed beside the figures, never enforced here
GOAL_PRECISION = 0.95
GOAL_RECALL = 0.9
GOAL_BREAKS = 0
MAX_REASON_CHARS = 200
# the offline analyser runs in this process: more in flight would only interleave it
OFFLINE_CONCURRENCY = 1


@dataclass(frozen=True)
class Judged:
    """One labelled posting and what the analyser made of it (``result`` None: it failed, ``error`` says why)."""

    case: LabelledPosting
    result: AnalysisResult | None
    error: str | None = None

    def pinged(self, min_score: int) -> bool:
        if self.result is None:
            return False
        analysis = self.result.analysis
        return fits(analysis.verdict, analysis.fit_score, min_score, len(self.result.limits_broken))


@dataclass(frozen=True)
class Outcome:
    """A posting's line in the results: what the label says beside what the analyser said."""

    id: str
    line: int
    title: str
    label_verdict: str
    verdict: str | None
    label_ping: bool
    pinged: bool
    label_score: int | None
    fit_score: int | None
    limits_broken: list[str]
    note: str
    error: str | None


@dataclass(frozen=True)
class EvalReport:
    """The figures of one evaluation; ``None`` where nothing was there to measure (no ping, no score)."""

    model: str
    min_score: int
    postings: int
    unlabelled: int
    failed: int
    accuracy: float
    ping_precision: float | None
    ping_recall: float | None
    pinged: int
    labelled_pings: int
    true_pings: int
    breaks_among_pings: int
    score_error: float | None
    scored: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    seconds: float
    goals: dict[str, float] = field(
        default_factory=lambda: {"ping_precision": GOAL_PRECISION, "ping_recall": GOAL_RECALL, "breaks": GOAL_BREAKS}
    )
    outcomes: list[Outcome] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def mistakes(self) -> list[Outcome]:
        """Outcomes whose verdict or ping differs from the label, or that failed."""
        return [o for o in self.outcomes if o.error or o.verdict != o.label_verdict or o.pinged != o.label_ping]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def score(judged: list[Judged], *, model: str, min_score: int, unlabelled: int, seconds: float) -> EvalReport:
    """The figures of ``judged``: a posting that failed counts as a wrong verdict and no ping."""
    outcomes = [
        Outcome(
            id=j.case.id,
            line=j.case.line,
            title=j.case.envelope.posting.title,
            label_verdict=str(j.case.label.verdict),
            verdict=j.result.analysis.verdict if j.result else None,
            label_ping=j.case.label.pinged,
            pinged=j.pinged(min_score),
            label_score=j.case.label.score,
            fit_score=j.result.analysis.fit_score if j.result else None,
            limits_broken=list(j.case.label.limits_broken),
            note=j.case.label.note,
            error=j.error,
        )
        for j in judged
    ]
    results = [j.result for j in judged if j.result is not None]
    scored = [(o.label_score, o.fit_score) for o in outcomes if o.label_score is not None and o.fit_score is not None]
    pinged = [o for o in outcomes if o.pinged]
    return EvalReport(
        model=model,
        min_score=min_score,
        postings=len(outcomes),
        unlabelled=unlabelled,
        failed=sum(1 for o in outcomes if o.error),
        accuracy=round(sum(1 for o in outcomes if o.verdict == o.label_verdict) / len(outcomes), 4)
        if outcomes
        else 0.0,
        ping_precision=_ratio(sum(1 for o in pinged if o.label_ping), len(pinged)),
        ping_recall=_ratio(sum(1 for o in pinged if o.label_ping), sum(1 for o in outcomes if o.label_ping)),
        pinged=len(pinged),
        labelled_pings=sum(1 for o in outcomes if o.label_ping),
        true_pings=sum(1 for o in pinged if o.label_ping),
        breaks_among_pings=sum(1 for o in pinged if o.limits_broken),
        score_error=round(sum(abs(a - b) for a, b in scored) / len(scored), 2) if scored else None,
        scored=len(scored),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        cost_usd=round(sum(r.cost_usd for r in results), 8),
        seconds=round(seconds, 3),
        outcomes=outcomes,
    )


async def _judge(analyser: Analyser, case: LabelledPosting, slots: asyncio.Semaphore) -> Judged:
    async with slots:
        try:
            return Judged(case, await analyser.analyse(case.envelope.posting))
        # what the drain dead-letters or leaves for a later delivery is a miss here; a wrong configuration stops all
        except (PostingRejectedError, TransientError) as exc:
            return Judged(case, None, one_line(exc, MAX_REASON_CHARS))


async def evaluate(
    labelled: LabelledSet,
    llm: LlmSettings,
    min_score: int,
    *,
    on_judged: Callable[[Judged], None] | None = None,
    make: Callable[[LlmSettings, Profile], Analyser] = make_analyser,
) -> EvalReport:
    """Judge every labelled posting with the analyser ``make`` builds for its profile, and score the answers.

    Postings run concurrently, as many as ``llm.concurrency`` for an LLM; an analyser's configuration
    error (a wrong key or model) is raised, since no posting could be judged.
    """
    started = time.perf_counter()
    concurrency = llm.concurrency if llm.configured else OFFLINE_CONCURRENCY
    slots = asyncio.Semaphore(concurrency)
    async with AsyncExitStack() as stack:
        # one analyser per profile, as one analyse run has one
        analysers: dict[str, Analyser] = {}
        for case in labelled.postings:
            if case.profile.fingerprint not in analysers:
                made = make(llm, case.profile)
                analysers[case.profile.fingerprint] = await stack.enter_async_context(analyser_in_use(made))

        async def one(case: LabelledPosting) -> Judged:
            judged = await _judge(analysers[case.profile.fingerprint], case, slots)
            if on_judged is not None:
                on_judged(judged)
            return judged

        judged = await asyncio.gather(*(one(case) for case in labelled.postings))
        model = next(iter(analysers.values())).model
    return score(
        list(judged),
        model=model,
        min_score=min_score,
        unlabelled=labelled.unlabelled,
        seconds=time.perf_counter() - started,
    )
