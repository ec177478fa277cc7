"""The shipped labelled set judged by the offline analyser, and by the LLM path against the OpenAI stand-in.

The offline figures say how well the embedded default judges (issue 29's goals: no ping that breaks a
hard limit, ping precision at least 0.95, recall at least 0.9). The stand-in answers by a hash of the
posting, so its verdicts mean nothing: its figures are the plumbing's (tokens, cost and seconds per
posting). Run alone with ``python -m bench.eval``: it writes its own section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import CONCURRENCY, LATENCY_MS, environment, write_section
from jobping.labelled import BUNDLED_SET, bundled_set_text, parse_labelled
from jobping.profile import Profile
from jobping.settings import DEFAULT_LLM_MODEL, NOTIFY_MIN_SCORE, LlmSettings
from standins.servers import StandIn, openai_standin
from tasks.llm.evaluate import GOAL_BREAKS, GOAL_PRECISION, GOAL_RECALL, EvalReport, evaluate

HEADING = "## Evaluation"
AFTER = "## Pings"
# what selects an LLM: unset, the settings select the offline analyser
LLM_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "JOBPING_OPENAI_API_KEY", "JOBPING_OPENAI_BASE_URL",
                 "JOBPING_OPENAI_SECRET_BLOCK")  # fmt: skip


@dataclass(frozen=True)
class EvalFigures:
    offline: EvalReport
    offline_seconds: list[float]
    llm: EvalReport
    llm_seconds: list[float]


@contextmanager
def offline() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in LLM_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_once() -> EvalReport:
    labelled = parse_labelled(bundled_set_text(), BUNDLED_SET, Profile())
    return asyncio.run(evaluate(labelled, LlmSettings(), NOTIFY_MIN_SCORE))


def measure_eval(standin: StandIn, runs: int) -> EvalFigures:
    """``runs`` evaluations of the shipped set offline, then as many through the stand-in LLM."""
    with offline():
        offline_reports = [run_once() for _ in range(runs)]
    standin.configure(latency_ms=LATENCY_MS)
    llm_env = {
        "OPENAI_BASE_URL": standin.url + "/v1",
        "OPENAI_API_KEY": "sk-bench",
        "JOBPING_LLM_CONCURRENCY": str(CONCURRENCY),
    }
    with environment(llm_env):
        llm_reports = [run_once() for _ in range(runs)]
    return EvalFigures(
        offline_reports[-1], [r.seconds for r in offline_reports], llm_reports[-1], [r.seconds for r in llm_reports]
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _met(value: float | None, goal: float) -> str:
    return "met" if value is not None and value >= goal else "NOT met"


def eval_section(figures: EvalFigures) -> list[str]:
    off, llm = figures.offline, figures.llm
    off_seconds, llm_seconds = statistics.median(figures.offline_seconds), statistics.median(figures.llm_seconds)
    n = llm.postings
    return [
        HEADING,
        "",
        f"Measured on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.eval`: the shipped labelled set "
        f"(jobping/eval/{BUNDLED_SET},",
        f"{off.postings} synthetic postings over 3 profiles in English, German and French) through `jobping eval`'s "
        f"path, pings at min score {off.min_score}.",
        "",
        "The offline analyser's word lists (deal-breakers, titles, seniority in three languages) were checked "
        "against this set",
        "while they were written: these are in-sample figures, and postings it has not seen will score lower.",
        "",
        f"Offline analyser ({off.model}), {len(figures.offline_seconds)} runs:",
        "",
        "| figure | value | goal (issue 29) |",
        "|---|---|---|",
        f"| verdict accuracy | {_ratio(off.accuracy)} | - |",
        f"| ping precision | {_ratio(off.ping_precision)} ({off.true_pings} of {off.pinged} pinged) "
        f"| >= {GOAL_PRECISION} ({_met(off.ping_precision, GOAL_PRECISION)}) |",
        f"| ping recall | {_ratio(off.ping_recall)} ({off.true_pings} of {off.labelled_pings} labelled pings) "
        f"| >= {GOAL_RECALL} ({_met(off.ping_recall, GOAL_RECALL)}) |",
        f"| hard-limit breaks among pings | {off.breaks_among_pings} "
        f"| {GOAL_BREAKS} ({'met' if off.breaks_among_pings <= GOAL_BREAKS else 'NOT met'}) |",
        f"| score error (mean absolute) | {off.score_error} over {off.scored} | - |",
        f"| seconds for the set (median) | {off_seconds:.3f} "
        f"({', '.join(f'{s:.3f}' for s in figures.offline_seconds)}) | - |",
        "",
        f"LLM path against the OpenAI stand-in ({llm.model}, answering after {LATENCY_MS} ms, concurrency "
        f"{CONCURRENCY}), {len(figures.llm_seconds)} runs; the stand-in's verdicts are a hash, so only the "
        "plumbing counts:",
        "",
        "| figure | value |",
        "|---|---|",
        f"| postings judged | {n - llm.failed} of {n} ({llm.failed} failed) |",
        f"| tokens per posting | {llm.prompt_tokens / n:.0f} prompt + {llm.completion_tokens / n:.0f} completion |",
        f"| cost per posting | ${llm.cost_usd / n:.6f} (${llm.cost_usd:.4f} for the set, {DEFAULT_LLM_MODEL}'s "
        "built-in price) |",
        f"| seconds for the set (median) | {llm_seconds:.2f} ({', '.join(f'{s:.2f}' for s in figures.llm_seconds)}); "
        f"{n / llm_seconds:.1f} postings/s |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobping-bench-") as tmp, openai_standin(Path(tmp) / "standin.log") as url:
        figures = measure_eval(StandIn(url), args.runs)
    write_section(eval_section(figures), after=AFTER)


if __name__ == "__main__":
    main()
