"""What the runs' artifacts show of a posting: text, never markdown of its own."""

from __future__ import annotations

from flows.analyse import markdown_text


def test_posting_text_in_the_top_matches_artifact_is_literal_markdown() -> None:
    shown = markdown_text("Hi ![t](https://tracker.example/p.png) <img src=x> | [a](javascript:x)\nnext")
    assert "![" not in shown
    assert "<img" not in shown
    assert "](" not in shown
    assert " | " not in shown
    assert "\n" not in shown
    assert shown.replace("\\", "") == "Hi ![t](https://tracker.example/p.png) <img src=x> | [a](javascript:x) next"
