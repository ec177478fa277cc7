"""The README's promises: its queries run, its column list is the stored schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from storage.catalog import reader, saved_query, saved_query_names
from storage.rows import empty_rows
from tests.lakes import write_rows
from tests.test_storage import row

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def readme_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", README, flags=re.DOTALL)
    return [q.strip() for block in blocks for q in block.split(";") if q.strip()]


def test_the_readme_shows_five_queries() -> None:
    assert len(readme_queries()) == 5


@pytest.mark.parametrize("query", readme_queries(), ids=lambda q: q.splitlines()[0].strip("- "))
def test_each_readme_query_runs_on_the_lake(tmp_path: Path, query: str) -> None:
    write_rows(tmp_path, [row("1", 80), row("2", 30)])
    with reader(tmp_path) as con:
        con.execute(query).fetchall()


@pytest.mark.parametrize("name", saved_query_names())
def test_each_saved_query_runs_on_the_lake(tmp_path: Path, name: str) -> None:
    write_rows(tmp_path, [row("1", 80), row("2", 30)])
    with reader(tmp_path) as con:
        con.execute(saved_query(name)).fetchall()


def test_the_readme_lists_every_stored_column() -> None:
    section = README.split("Columns:", 1)[1].split("Five useful", 1)[0]
    listed = re.findall(r"`(\w+)`", section)
    assert listed == empty_rows().columns


RESULTS = (Path(__file__).parent.parent / "bench" / "RESULTS.md").read_text(encoding="utf-8")
# how the README words each start-up figure, by the command's row in bench/RESULTS.md's Start-up table
STARTUP_FIGURES = {
    "jobping --help": r"--help`? (\d+\.\d+) s",
    "jobping analyse (empty queue)": r"analyse` on an empty queue (?:takes )?(\d+\.\d+) s",
    "jobping scrape --source sample (nothing new)": r"with nothing new (\d+\.\d+) s",
}


def startup_medians() -> dict[str, str]:
    section = RESULTS.split("\n## Start-up\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| (jobping [^|]+?) \| (\d+\.\d+) \|", section, flags=re.MULTILINE))


def test_the_readme_gives_one_set_of_start_up_timings_quoted_from_the_bench() -> None:
    text = " ".join(README.split())
    medians = startup_medians()
    assert sorted(medians) == sorted(STARTUP_FIGURES)
    for command, wording in STARTUP_FIGURES.items():
        assert re.findall(wording, text) == [medians[command]], command
    assert 'bench/RESULTS.md, section "Start-up"' in text


def test_the_readme_says_the_autoscaler_starts_analyse_runs_not_the_scrape() -> None:
    text = " ".join(README.split())
    # a scrape publishes and ends; the autoscaler (app/autoscale.py) starts analyse runs from the queue's depth
    assert not re.search(r"(completion|scrape`?) triggers", text)
    assert "starts analyse runs while it holds messages" in text
    assert "After `make demo`, a Quick run of the sample shows no analyse run" in text
