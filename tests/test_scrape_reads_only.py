"""The scrape only reads the lake's enriched tables: it creates, widens and repairs none of them, and still skips
what is stored. It writes one table only, its own log (scrape_runs), which these contents leave aside."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake

from flows.analyse import analyse
from flows.scrape import scrape
from jobping.settings import Settings
from storage.lake import SCRAPE_RUNS_TABLE
from storage.rows import PARTITION
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import _sample_records, sample_sites

pytestmark = pytest.mark.usefixtures("prefect_api")


def sample_params() -> ScrapeParameters:
    return ScrapeParameters(source="sample", sites=sample_sites())


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` but the scrape's own log, with the bytes of each file (None for a folder)."""
    paths = [p for p in folder.rglob("*") if p.relative_to(folder).parts[0] != SCRAPE_RUNS_TABLE]
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in paths}


def test_a_scrape_against_a_lake_with_no_table_creates_nothing_there_and_publishes_every_posting(
    settings: Settings,
) -> None:
    settings.lake_dir.mkdir(parents=True)
    distinct = {(r["site"], r["id"] or r["job_url"]) for r in _sample_records()}
    report = scrape(sample_params())
    assert contents(settings.lake_dir) == {}
    assert (settings.lake_dir / SCRAPE_RUNS_TABLE / "_delta_log").is_dir()
    assert report.published == len(distinct)
    assert report.queue_visible == len(distinct)


def test_a_scrape_leaves_a_lake_an_older_jobping_wrote_byte_for_byte_as_it_was_and_skips_what_it_holds(
    settings: Settings,
) -> None:
    scrape(sample_params())
    stored = asyncio.run(analyse()).stored
    # the history as a jobping before cost_usd wrote it: the analyse run would add the column, the scrape may not
    history = settings.lake_dir / "enriched_jobs_history"
    older = pl.read_delta(str(history)).drop("cost_usd")
    shutil.rmtree(history)
    write_deltalake(history, older, partition_by=[PARTITION])
    before = contents(settings.lake_dir)
    again = scrape(sample_params())
    assert contents(settings.lake_dir) == before
    assert (again.published, again.already_stored) == (0, stored)
