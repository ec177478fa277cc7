"""What the runs' artifacts show of postings: text as literal markdown, never markdown of its own."""

from __future__ import annotations

import re

from jobping.engine.outcomes import TopMatch
from jobping.text import one_line


def top_matches_markdown(top: list[TopMatch]) -> str:
    lines = ["| fit | verdict | title | company | link |", "|---|---|---|---|---|"]
    for match in top:
        # job_url is http(s) by the contract; escaping keeps a crafted one inside its link
        url = match.job_url.replace(">", "%3E").replace(" ", "%20")
        title, company = markdown_text(match.title), markdown_text(match.company)
        lines.append(f"| {match.fit_score} | {match.verdict} | {title} | {company} | [open](<{url}>) |")
    return "\n".join(lines)


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def markdown_text(text: str) -> str:
    """Posting text as literal markdown: no image, link, html or table cell of its own; one line."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))
