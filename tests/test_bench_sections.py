"""The deep-queue bench writes its own section of bench/RESULTS.md, once, beside the shallow case."""

from __future__ import annotations

from pathlib import Path

from bench.deep_queue import HEADING, write_section

SHALLOW = ["# jobping benchmarks", "", "## Analyse throughput", "", "shallow figures", ""]
AFTER = ["## Claims shared by all consumers", "", "claims figures", ""]


def test_the_deep_queue_section_goes_right_after_the_shallow_one_and_replaces_itself_when_run_again(
    tmp_path: Path,
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("\n".join([*SHALLOW, *AFTER]), encoding="utf-8")
    write_section([HEADING, "", "first run", ""], results)
    write_section([HEADING, "", "second run", ""], results)
    assert results.read_text(encoding="utf-8").split("\n") == [*SHALLOW, HEADING, "", "second run", "", *AFTER]
