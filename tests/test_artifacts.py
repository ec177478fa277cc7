"""What the runs' artifacts show of a posting: text, never markdown of its own."""

from __future__ import annotations

import re

from flows.artifacts import markdown_text


def test_posting_text_in_the_top_matches_artifact_is_literal_markdown() -> None:
    given = "Hi ![t](https://tracker.example/p.png) <img src=x> | [a](javascript:x)\nnext"
    shown = markdown_text(given)
    # every character markdown or html would act on is escaped, and the cell stays one line
    assert not re.search(r"(?<!\\)[<>\[\]()!|*_`]", shown), shown
    assert "\n" not in shown
    assert shown.replace("\\", "") == given.replace("\n", " ")
