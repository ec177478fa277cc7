"""The README's promises: its queries run, its column list is the stored schema."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from flows.analyse import analyse
from flows.scrape import scrape
from jobping.settings import Settings
from storage.delta import DeltaHistory, DeltaLatest
from storage.lake import Lake
from storage.maintenance import maintain
from storage.reader import reader
from storage.sql import saved_query, saved_query_names
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites
from tests.lakes import write_rows
from tests.test_storage import row

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def readme_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", README, flags=re.DOTALL)
    return [q.strip() for block in blocks for q in block.split(";") if q.strip()]


def test_the_readme_shows_five_queries() -> None:
    assert len(readme_queries()) == 5


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory, moto_url: str, prefect_api: None) -> Iterator[Lake]:
    """A lake made from the bundled sample by the scrape and analyse flows, as `make demo` makes it."""
    root = tmp_path_factory.mktemp("sample")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("JOBPING_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
                patch.delenv(name)
        for name, value in {
            "JOBPING_DATA_DIR": str(root / "data"),
            "JOBPING_SQS_ENDPOINT_URL": moto_url,
            "JOBPING_QUEUE_NAME": f"jobs-{uuid.uuid4().hex[:12]}",
            "JOBPING_RECEIVE_WAIT_SECONDS": "0",
        }.items():
            patch.setenv(name, value)
        patch.chdir(root)
        scrape(ScrapeParameters(source="sample", sites=sample_sites()))
        assert asyncio.run(analyse()).stored == SAMPLE_POSTINGS
        yield Lake(Settings().lake_dir)


# the bundled sample's distinct postings
SAMPLE_POSTINGS = 330
# a lake the sample made this long ago: its postings' dates are fixed, and so, then, are its scrapes
LONG_AGO = timedelta(days=400)


@pytest.fixture(scope="module")
def sample_lakes(sample_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Lake]:
    """The sample's lake as made today, and as if made LONG_AGO: whatever today's date, a query must answer."""
    old = Lake(tmp_path_factory.mktemp("old-sample") / "lake")
    rows = pl.read_delta(sample_lake.history_uri)
    moved = rows.with_columns(pl.col("scraped_at") - LONG_AGO, pl.col("analysed_at") - LONG_AGO)
    DeltaHistory(old).ensure()
    DeltaHistory(old).append(moved)
    return {"made today": sample_lake, "made long ago": old}


@pytest.mark.parametrize("age", ["made today", "made long ago"])
@pytest.mark.parametrize("query", readme_queries(), ids=lambda q: q.splitlines()[0].strip("- "))
def test_each_readme_query_returns_rows_on_the_sample(sample_lakes: dict[str, Lake], age: str, query: str) -> None:
    with reader(sample_lakes[age]) as con:
        assert con.execute(query).fetchall()


@pytest.mark.parametrize("age", ["made today", "made long ago"])
@pytest.mark.parametrize("name", saved_query_names())
def test_each_saved_query_returns_rows_on_the_sample(sample_lakes: dict[str, Lake], age: str, name: str) -> None:
    with reader(sample_lakes[age]) as con:
        assert con.execute(saved_query(name)).fetchall()


@pytest.mark.parametrize("name", saved_query_names())
def test_each_saved_query_runs_on_a_small_lake(tmp_path: Path, name: str) -> None:
    write_rows(tmp_path, [row("1", 80), row("2", 30)])
    with reader(tmp_path) as con:
        con.execute(saved_query(name)).fetchall()


def test_the_latest_table_appears_at_the_first_maintenance_as_the_readme_says(tmp_path: Path) -> None:
    assert "It does not exist until the first maintenance (`jobping compact`" in " ".join(README.split())
    lake = Lake(tmp_path)
    write_rows(lake, [row("1", 80), row("2", 30)])
    assert not DeltaLatest(lake).exists()
    with reader(lake) as con:
        assert con.execute("SELECT count(*) FROM enriched_jobs").fetchall() == [(2,)]
    maintain(lake)
    assert DeltaHistory(lake).exists()
    assert DeltaLatest(lake).table().to_pyarrow_table(columns=["job_key"]).num_rows == 2


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
