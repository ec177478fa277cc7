"""Job groups: the postings of one job, however many boards and reposts it appears under.

Two postings are in one group when their company, title and place normalise alike (the group
key, :func:`group_key`) and their descriptions are similar (:func:`similarity` at or above
``SAME_JOB_SIMILARITY``). Group ids are derived, never drawn, so that two processes assigning
postings of one job at the same time, neither seeing the other's row, agree (:func:`assign`).

Similarity is containment of 4-word shingles (shared shingles over the smaller set), not
jaccard: a copy cut short, trimmed or with boilerplate appended shares little of the union with
its original, so jaccard loses those copies, while containment keeps them. Two openings of one
company, title and city share the company's about-us, benefits and duties, and copies of one job
are near-identical; ``SAME_JOB_SIMILARITY`` sits between the two, in the middle of the span where
the precision and recall goals both hold on the labelled set (tests/cases/groups/labelled.json,
measured by bench/grouping.py; figures in bench/RESULTS.md, "Job groups").

Containment is symmetric, so one job's group holds its copies cut short and its copies with more
appended alike; an analysis is not. It is reused only for text it has read: a posting reuses a
member's analysis when every shingle of its description is in the member's (:func:`covers`), so a
copy cut short takes the fuller copy's analysis (its last word may be cut in the middle:
:func:`must_read`), and a copy with anything more (boilerplate appended, or a request for passport
scans) is judged again. A scraped posting reuses only a scraped member's analysis: a posting from any
other producer on the queue never lends its analysis to ours (:class:`Member`).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from jobping.names import normalise_company, normalise_place, normalise_title, words

__all__ = [
    "SAME_JOB_SIMILARITY",
    "Assignment",
    "Grouping",
    "Member",
    "assign",
    "containment",
    "covers",
    "fingerprint",
    "fingerprints",
    "group_key",
    "jaccard",
    "must_read",
    "normalise_company",
    "normalise_place",
    "normalise_title",
    "similarity",
]

# a posting joins a group of its key at this containment; two openings sharing boilerplate stay below
SAME_JOB_SIMILARITY = 0.75
SHINGLE_WORDS = 4
KEY_HEX_CHARS = 16
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
URL = re.compile(r"https?://\S+|www\.\S+")
# list markers: "* ", "- ", "• ", "1. " at the start of a line; boards rewrite one as another
LIST_MARKER = re.compile(r"(?m)^\s*(?:[-*•·+▪◦]|\d{1,2}[.)])\s+")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:KEY_HEX_CHARS]


def group_key(company: str | None, title: str | None, location: str | None, is_remote: bool | None) -> str | None:
    """A stable digest of the normalised company, title and place; None when company or title is empty."""
    name = normalise_company(company)
    role = normalise_title(title)
    if not name or not role:
        return None
    return _digest("v1", name, role, normalise_place(location, is_remote))


def _tokens(description: str | None) -> list[str]:
    return words(LIST_MARKER.sub(" ", URL.sub(" ", MARKDOWN_LINK.sub(r"\1", description or ""))))


def _shingles(tokens: list[str]) -> list[int]:
    """The hashed shingles in the order of the text (one for a text shorter than a shingle)."""
    if not tokens:
        return []
    if len(tokens) < SHINGLE_WORDS:
        return [zlib.crc32(" ".join(tokens).encode())]
    return [
        zlib.crc32(" ".join(tokens[i : i + SHINGLE_WORDS]).encode()) for i in range(len(tokens) - SHINGLE_WORDS + 1)
    ]


def fingerprints(description: str | None) -> tuple[frozenset[int], frozenset[int]]:
    """:func:`fingerprint` and :func:`must_read` of one description, from one pass over its words."""
    tokens = _tokens(description)
    shingles = _shingles(tokens)
    # without its last word, a text of more than a shingle's words loses exactly its last shingle
    read = shingles[:-1] if len(tokens) > SHINGLE_WORDS else _shingles(tokens[:-1])
    return frozenset(shingles), frozenset(read)


def fingerprint(description: str | None) -> frozenset[int]:
    """The description's word 4-shingles, hashed: markdown, list markers, links and punctuation dropped."""
    return frozenset(_shingles(_tokens(description)))


def must_read(description: str | None) -> frozenset[int]:
    """The shingles an analysis must have read to be reused for this description: all but its last word,
    which a board that cuts a description short may have cut in the middle."""
    return fingerprints(description)[1]


def containment(a: frozenset[int], b: frozenset[int]) -> float:
    """Shared shingles over the smaller set's: 1.0 when one text is the other cut short or with more appended."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def covers(seen: frozenset[int], text: frozenset[int]) -> bool:
    """Every shingle of ``text`` is in ``seen``: an analysis that read ``seen`` read all ``text`` says."""
    return bool(text) and text <= seen


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """Shared shingles over all shingles of either."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """How alike two descriptions are, in [0, 1]; 0.0 when either has none (no evidence, no group)."""
    return containment(a, b)


@dataclass(frozen=True)
class Member:
    """A stored posting of a group key; ``analysed``: it has its own analysis, not a reused one;
    ``scraped``: our scrape flow sent it (contract.SCRAPE_PRODUCER), not another producer."""

    job_key: str
    job_group: str
    fingerprint: frozenset[int]
    analysed: bool
    scraped: bool = False


@dataclass(frozen=True)
class Grouping:
    """What a stored row records of its job group: the key, the group, and whose analysis it reused."""

    group_key: str | None
    job_group: str
    analysis_of: str | None = None

    @classmethod
    def alone(
        cls, job_key: str, company: str | None, title: str, location: str | None, is_remote: bool | None
    ) -> Grouping:
        """The group of a posting placed with no stored posting beside it: the first of its key."""
        key = group_key(company, title, location, is_remote)
        return cls(key, assign(job_key, key, frozenset(), []).job_group)


@dataclass(frozen=True)
class Assignment:
    """A posting's group, and the member whose analysis it may reuse instead of having its own."""

    job_group: str
    analysis_of: str | None


def _most_similar(fp: frozenset[int], members: Sequence[Member]) -> tuple[float, Member] | None:
    # ties go to the smallest job_key, so the answer does not depend on the order members arrive in
    scored = [(similarity(fp, member.fingerprint), member) for member in sorted(members, key=lambda m: m.job_key)]
    if not scored:
        return None
    return max(scored, key=lambda pair: pair[0])


def _lender(read: frozenset[int], group: str, members: Sequence[Member], *, scraped: bool) -> Member | None:
    """The member of ``group`` whose own analysis read every shingle of ``read``, from a producer ours may trust."""
    lenders = [
        member
        for member in members
        if member.job_group == group
        and member.analysed
        and (member.scraped or not scraped)
        and covers(member.fingerprint, read)
    ]
    # the scraped first, then the smallest job_key: an answer that does not depend on the members' order
    return min(lenders, key=lambda member: (not member.scraped, member.job_key), default=None)


def assign(
    job_key: str,
    key: str | None,
    fp: frozenset[int],
    members: Sequence[Member],
    *,
    scraped: bool = False,
    read: frozenset[int] | None = None,
) -> Assignment:
    """The group of posting ``job_key`` among ``members``, the stored postings of its group ``key``.

    The first group of a key is the key itself, so postings of one job assigned at the same time by
    processes that do not see each other's rows still agree; a second opening under the same key (a
    dissimilar description) starts a group named by the key and its own job_key. The posting reuses
    the analysis of a member whose description holds all of ``read`` (:func:`must_read` of its
    description; all of ``fp`` when None), never one from another producer when it is ``scraped`` itself.
    """
    if key is None:
        return Assignment(job_group=_digest("solo", job_key), analysis_of=None)
    best = _most_similar(fp, members)
    if best is None or best[0] < SAME_JOB_SIMILARITY:
        taken = any(member.job_group == key for member in members)
        return Assignment(job_group=_digest(key, job_key) if taken else key, analysis_of=None)
    group = best[1].job_group
    lender = _lender(fp if read is None else read, group, members, scraped=scraped)
    return Assignment(job_group=group, analysis_of=lender.job_key if lender is not None else None)
