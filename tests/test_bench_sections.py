"""A single case's bench run writes its own section of bench/RESULTS.md, once, where it belongs."""

from __future__ import annotations

from pathlib import Path

from bench.deep_queue import HEADING
from bench.harness import write_section

SHALLOW = ["# jobping benchmarks", "", "## Analyse throughput", "", "shallow figures", ""]
AFTER = ["## Claims shared by all consumers", "", "claims figures", ""]


def test_the_deep_queue_section_goes_right_after_the_shallow_one_and_replaces_itself_when_run_again(
    tmp_path: Path,
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("\n".join([*SHALLOW, *AFTER]), encoding="utf-8")
    write_section([HEADING, "", "first run", ""], after="## Analyse throughput", results=results)
    write_section([HEADING, "", "second run", ""], after="## Analyse throughput", results=results)
    assert results.read_text(encoding="utf-8").split("\n") == [*SHALLOW, HEADING, "", "second run", "", *AFTER]


def test_a_section_with_no_place_named_goes_at_the_end_and_replaces_itself_there(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("\n".join([*SHALLOW, *AFTER]), encoding="utf-8")
    write_section(["## Pings", "", "first", ""], after="## Memory", results=results)
    write_section(["## Pings", "", "second", ""], after="## Memory", results=results)
    assert results.read_text(encoding="utf-8").split("\n") == [*SHALLOW, *AFTER, "## Pings", "", "second", ""]
