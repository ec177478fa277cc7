"""What the runs' artifacts show of postings: text as literal markdown, never markdown of its own."""

from __future__ import annotations

from jobping.engine.outcomes import TopMatch
from jobping.markup import escape, link


def top_matches_markdown(top: list[TopMatch]) -> str:
    lines = ["| fit | verdict | title | company | link |", "|---|---|---|---|---|"]
    for match in top:
        # only the posting's own http(s) url is a link, and it cannot leave its <...>
        url = link(match.job_url)
        shown = f"[open](<{url}>)" if url is not None else "no http(s) link"
        title, company = markdown_text(match.title), markdown_text(match.company)
        lines.append(f"| {match.fit_score} | {match.verdict} | {title} | {company} | {shown} |")
    return "\n".join(lines)


def markdown_text(text: str) -> str:
    """Posting text as literal markdown: no image, link, html or table cell of its own; one line."""
    return escape(text, "markdown")
