"""Job groups against the labelled set: pairwise precision and recall, and the time per posting.

The set is tests/cases/groups/labelled.json (synthetic, from tests/cases/groups/generate.py).
Postings are assigned one by one in file order, each against the postings of its group key
already assigned, as the pipeline assigns them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobping.grouping import Assignment, Member, assign, fingerprints, group_key

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "cases" / "groups" / "labelled.json"
PRECISION_GOAL = 0.98
RECALL_GOAL = 0.95


@dataclass(frozen=True)
class GroupingQuality:
    """How the grouping did on the labelled set."""

    postings: int
    jobs: int
    true_pairs: int
    predicted_pairs: int
    precision: float
    recall: float
    # postings that would reuse another posting's analysis instead of having their own
    reused: int
    seconds: float
    # reuse that points at a posting of another job: must be 0
    reused_across_jobs: int = 0


def load_labelled(path: Path = LABELLED) -> list[dict[str, Any]]:
    """The labelled postings, in file order."""
    postings: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["postings"]
    return postings


def assign_all(postings: Iterable[dict[str, Any]]) -> dict[str, Assignment]:
    """Each posting's assignment, by job_key, assigned in order against the members before it."""
    by_key: dict[str | None, list[Member]] = {}
    assigned: dict[str, Assignment] = {}
    for posting in postings:
        key = group_key(posting["company"], posting["title"], posting["location"], posting["is_remote"])
        fp, read = fingerprints(posting["description"])
        members = by_key.setdefault(key, []) if key is not None else []
        got = assign(posting["job_key"], key, fp, members, read=read)
        members.append(Member(posting["job_key"], got.job_group, fp, analysed=got.analysis_of is None))
        assigned[posting["job_key"]] = got
    return assigned


def _pairs(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def quality(postings: Sequence[dict[str, Any]], assigned: dict[str, Assignment], seconds: float) -> GroupingQuality:
    """Pairwise precision and recall: a pair is predicted same when its groups are equal, truly when its labels are."""
    label = {p["job_key"]: p["label"] for p in postings}
    true_pairs = _pairs(Counter(label.values()).values())
    predicted_pairs = _pairs(Counter(a.job_group for a in assigned.values()).values())
    both = _pairs(Counter((label[k], a.job_group) for k, a in assigned.items()).values())
    reused = [(k, a.analysis_of) for k, a in assigned.items() if a.analysis_of is not None]
    return GroupingQuality(
        postings=len(postings),
        jobs=len(set(label.values())),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        precision=both / predicted_pairs if predicted_pairs else 1.0,
        recall=both / true_pairs if true_pairs else 1.0,
        reused=len(reused),
        seconds=seconds,
        reused_across_jobs=sum(label[k] != label[source] for k, source in reused if source is not None),
    )


def measure_grouping(path: Path = LABELLED) -> GroupingQuality:
    """Group the labelled set and score it; ``seconds`` covers keys, fingerprints and assignment."""
    postings = load_labelled(path)
    started = time.perf_counter()
    assigned = assign_all(postings)
    return quality(postings, assigned, time.perf_counter() - started)


def grouping_section(q: GroupingQuality) -> list[str]:
    """The "Job groups" section of bench/RESULTS.md."""

    def verdict(value: float, goal: float) -> str:
        return "met" if value >= goal else "NOT met"

    per_posting_ms = 1000 * q.seconds / q.postings if q.postings else 0.0
    return [
        "## Job groups",
        "",
        f"The labelled set tests/cases/groups/labelled.json: {q.postings:,} synthetic postings of {q.jobs:,} jobs",
        "(cross-posts with the company, title, place and description written differently, cut short or with",
        "boilerplate appended, reposts; and look-alikes that are other jobs: another city, another seniority,",
        "another company, a second opening). Assigned one by one in file order, as the pipeline assigns them.",
        "Pairwise over all pairs of postings: predicted same when the job_group is equal, truly same when the",
        "label is.",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
        f"| precision | {q.precision:.3f} ({q.predicted_pairs:,} pairs predicted) | >= {PRECISION_GOAL} "
        f"({verdict(q.precision, PRECISION_GOAL)}) |",
        f"| recall | {q.recall:.3f} ({q.true_pairs:,} true pairs) | >= {RECALL_GOAL} "
        f"({verdict(q.recall, RECALL_GOAL)}) |",
        f"| postings reusing an analysis | {q.reused:,} ({q.reused_across_jobs} of another job) | - |",
        f"| time per posting (key, fingerprint, assign) | {per_posting_ms:.3f} ms | - |",
        "",
    ]


if __name__ == "__main__":
    print("\n".join(grouping_section(measure_grouping())))
