"""A digest of new matches: what one ping says, as text for a person and as JSON for a webhook."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from jobping.markup import Markup, escape, link
from jobping.reasons import NO_COMPANY
from jobping.text import one_line

# a digest lists this many matches in its text; the JSON carries them all
MAX_LISTED = 50
MAX_SUMMARY_CHARS = 300


@dataclass(frozen=True)
class Match:
    """One job group that fits: its best analysis and every board it is posted on."""

    job_group: str
    title: str
    company: str | None
    location: str | None
    fit_score: int
    verdict: str
    summary: str
    boards: list[str]
    job_urls: list[str]
    first_seen: datetime
    # the two or three reasons that decided the verdict, and what the posting did not say (jobping/reasons.py)
    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def heading(self, markup: Markup) -> str:
        """Score, verdict, title, company and place; a job with no company says so, it never borrows the place."""
        company = f" at {escape(self.company, markup)}" if self.company else f" ({NO_COMPANY})"
        place = f", {escape(self.location, markup)}" if self.location else ""
        return f"{self.fit_score} {escape(self.verdict, markup)}: {escape(self.title, markup)}{company}{place}"


@dataclass(frozen=True)
class Digest:
    matches: list[Match]
    digest_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def groups(self) -> list[str]:
        return [match.job_group for match in self.matches]

    def subject(self) -> str:
        n = len(self.matches)
        best = max(match.fit_score for match in self.matches)
        return f"jobping: {n} new job{'s' if n != 1 else ''} that fit{'s' if n == 1 else ''} (best {best})"

    def body(self, markup: Markup = "plain") -> str:
        """Text with one paragraph per match, its posting text escaped for ``markup``, the app that shows it.

        A match's paragraph: its heading, why it was judged so, what its posting did not say, the
        summary, its boards and links.

        The only links are the postings' own http(s) URLs, each on its own line as itself;
        a job whose URL is anything else is listed without it.
        """
        lines = []
        for match in self.matches[:MAX_LISTED]:
            lines.append(match.heading(markup))
            if match.reasons:
                lines.append(f"  why: {escape('; '.join(match.reasons), markup)}")
            # the heading says a company is not given
            if gaps := [gap for gap in match.missing if gap != NO_COMPANY]:
                lines.append(f"  missing: {escape(', '.join(gaps), markup)}")
            lines.append(f"  {escape(one_line(match.summary, MAX_SUMMARY_CHARS), markup)}")
            lines.append(f"  on {escape(', '.join(match.boards), markup)}")
            lines.extend(f"  {url}" for url in map(link, match.job_urls) if url is not None)
            lines.append("")
        if len(self.matches) > MAX_LISTED:
            lines.append(f"... and {len(self.matches) - MAX_LISTED} more: `jobping sql` lists them from the jobs view.")
        return "\n".join(lines).rstrip() + "\n"

    def payload(self) -> dict[str, Any]:
        """The JSON a webhook receives: every match, whole."""
        return {
            # beside "alert" (app/alerts.py): a receiver tells the two apart by this
            "kind": "matches",
            "digest_id": self.digest_id,
            "subject": self.subject(),
            "matches": [{**asdict(match), "first_seen": match.first_seen.isoformat()} for match in self.matches],
        }
