"""Text from outside (postings, boards, models, servers) made safe to show: one line, no control codes."""

from __future__ import annotations

import re

# control characters, escape included: text from postings must not drive a terminal or forge a line
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def plain(text: object) -> str:
    """``text`` with every control character (newlines, escapes, bells) turned into a space."""
    return CONTROL.sub(" ", str(text))


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` as one line: whitespace runs and control characters become one space; cut to ``limit``."""
    line = " ".join(plain(text).split())
    if limit is not None and len(line) > limit:
        return line[: max(limit - 3, 0)] + "..."
    return line
