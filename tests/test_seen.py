"""first_seen and last_seen over the whole history: a re-analysis does not make a job new."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties

from flows.analyse import analyse
from flows.scrape import scrape
from jobping.profile import USER_PROFILE, bundled_example
from jobping.settings import Settings
from storage.catalog import refresh_catalog
from storage.delta import ANALYSED_UP_TO, MERGED_UP_TO, DeltaLatest, LakeSnapshot
from storage.lake import Lake
from storage.maintenance import maintain
from storage.reader import reader
from storage.rows import FIRST_SEEN, LAST_SEEN
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites
from tests.lakes import write_rows
from tests.test_duckdb_shell import shell_query
from tests.test_storage import SCRAPED, row

# per job group: how many groups there are, and how many whose first_seen is not their postings' earliest
# scraped_at in the history, nor their last_seen the latest
WRONG_GROUPS = """
SELECT count(*),
       count(*) FILTER (WHERE j.first_seen IS DISTINCT FROM x.earliest),
       count(*) FILTER (WHERE j.last_seen IS DISTINCT FROM x.latest)
FROM jobs j LEFT JOIN (
    SELECT coalesce(e.job_group, e.job_key) AS job_group, min(h.scraped_at) AS earliest, max(h.scraped_at) AS latest
    FROM enriched_jobs e JOIN enriched_jobs_history h ON h.job_key = e.job_key GROUP BY 1
) x USING (job_group)
"""


def scrape_and_analyse(profile_name: str | None = None) -> int:
    """One night of the sample; with ``profile_name``, under a changed profile (a new prompt version first)."""
    if profile_name is not None:
        USER_PROFILE.write_text(bundled_example().replace('"Alex Example"', f'"{profile_name}"'), encoding="utf-8")
    scrape(ScrapeParameters(source="sample", sites=sample_sites()))
    report = asyncio.run(analyse())
    assert report.balanced
    return report.stored


def scrapes(settings: Settings) -> list[datetime]:
    with reader(settings.lake_dir) as con:
        rows = con.execute("SELECT DISTINCT scraped_at FROM enriched_jobs_history ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def assert_seen_is_the_history_s(settings: Settings, groups: int) -> None:
    with reader(settings.lake_dir) as con:
        assert con.execute(WRONG_GROUPS).fetchall() == [(groups, 0, 0)]
    assert refresh_catalog(settings.catalog_path, settings.lake_dir)
    # the catalog file's live views, as a DuckDB shell user reads them
    assert shell_query(settings.catalog_path, WRONG_GROUPS.replace("\n", " ")) == [f"{groups},0,0"]


@pytest.mark.usefixtures("prefect_api")
def test_after_a_profile_change_and_a_reanalysis_every_group_s_first_seen_is_its_earliest_scrape(
    settings: Settings, tmp_path: Path
) -> None:
    lake = Lake(settings.lake_dir)
    stored = scrape_and_analyse()
    with reader(settings.lake_dir) as con:
        (groups,) = con.execute("SELECT count(*) FROM jobs").fetchall()[0]
    # the latest table made whole from the history, then a night under another profile: every posting again
    maintain(lake)
    assert scrape_and_analyse("Alex Example, moved to Vienna") == stored
    first, second = scrapes(settings)
    assert_seen_is_the_history_s(settings, groups)
    with reader(settings.lake_dir) as con:
        assert con.execute("SELECT DISTINCT first_seen, last_seen FROM jobs").fetchall() == [(first, second)]
        # nothing is new since the second scrape: every group was seen in the first
        assert con.execute("SELECT count(*) FROM jobs WHERE first_seen >= $s", {"s": second}).fetchall() == [(0,)]
    # merged into the latest table (the merge keeps the earliest scrape), then once more, before any merge
    maintain(lake)
    assert_seen_is_the_history_s(settings, groups)
    assert scrape_and_analyse("Alex Example, back in Berlin") == stored
    assert_seen_is_the_history_s(settings, groups)
    maintain(lake)
    assert_seen_is_the_history_s(settings, groups)
    with reader(settings.lake_dir) as con:
        third = scrapes(settings)[-1]
        assert con.execute("SELECT DISTINCT first_seen, last_seen FROM jobs").fetchall() == [(first, third)]


@pytest.mark.usefixtures("prefect_api")
def test_before_any_maintenance_a_reanalysed_job_keeps_its_first_scrape(settings: Settings) -> None:
    stored = scrape_and_analyse()
    assert scrape_and_analyse("Alex Example, moved to Vienna") == stored
    first, second = scrapes(settings)
    with reader(settings.lake_dir) as con:
        (groups,) = con.execute("SELECT count(*) FROM jobs").fetchall()[0]
        assert con.execute("SELECT DISTINCT first_seen, last_seen FROM jobs").fetchall() == [(first, second)]
    assert_seen_is_the_history_s(settings, groups)


def seen(lake: Lake) -> list[tuple[str, int, datetime, datetime]]:
    with reader(lake) as con:
        rows = con.execute("SELECT job_key, fit_score, first_seen, last_seen FROM enriched_jobs ORDER BY job_key")
        return rows.fetchall()


def test_a_late_older_analysis_moves_first_seen_back_but_does_not_replace_the_newer_one(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write_rows(lake, [row("1", 40)])
    maintain(lake)
    earlier = SCRAPED - timedelta(days=3)
    # delivered late: scraped and analysed before the stored analysis, so it loses to it, but it saw the job first
    write_rows(lake, [row("1", 90, scraped=earlier, analysed=earlier)])
    maintain(lake)
    assert seen(lake) == [("indeed:1", 40, earlier, SCRAPED)]


def test_a_latest_table_merged_without_the_seen_columns_is_read_from_the_history_until_made_again(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path)
    later = SCRAPED + timedelta(days=1)
    write_rows(lake, [row("1", 40), row("2", 50)])
    write_rows(lake, [row("1", 90, scraped=later, analysed=later)])
    maintain(lake)
    # the table as a jobping before first_seen merged it: the history's columns and the merge's record
    latest = DeltaLatest(lake)
    merged = latest.merged()
    assert merged is not None
    old = pl.read_delta(lake.latest_uri).drop(FIRST_SEEN, LAST_SEEN)
    record = {MERGED_UP_TO: str(merged.history_version), ANALYSED_UP_TO: merged.analysed_up_to.isoformat()}
    write_deltalake(
        lake.latest_uri,
        old,
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=CommitProperties(custom_metadata=record),
    )
    assert LakeSnapshot.of(lake) == LakeSnapshot(history_version=merged.history_version)
    expected = [("indeed:1", 90, SCRAPED, later), ("indeed:2", 50, SCRAPED, SCRAPED)]
    assert seen(lake) == expected
    maintain(lake)
    snapshot = LakeSnapshot.of(lake)
    assert snapshot is not None
    assert snapshot.merged is not None
    assert {FIRST_SEEN, LAST_SEEN} <= set(pl.read_delta(lake.latest_uri).columns)
    assert seen(lake) == expected


# the sample's postings, each reported seen by a scrape that finds it unchanged
SAMPLE_POSTINGS = 330


@pytest.mark.usefixtures("prefect_api")
def test_a_scrape_that_finds_every_posting_unchanged_moves_last_seen_without_an_analysis(settings: Settings) -> None:
    stored = scrape_and_analyse()
    assert stored == SAMPLE_POSTINGS
    again = scrape(ScrapeParameters(source="sample", sites=sample_sites()))
    assert (again.published, again.already_stored, again.seen, again.sightings_messages) == (0, stored, stored, 1)
    report = asyncio.run(analyse())
    assert report.balanced
    assert (report.received, report.seen, report.seen_postings, report.stored) == (1, 1, stored, 0)
    (first,) = scrapes(settings)
    with reader(settings.lake_dir) as con:
        assert con.execute("SELECT count(*) FROM enriched_jobs_history").fetchall() == [(stored,)]
        (second,) = con.execute("SELECT DISTINCT scraped_at FROM job_sightings").fetchall()[0]
        assert second > first
        (groups,) = con.execute("SELECT count(*) FROM jobs").fetchall()[0]
        assert con.execute("SELECT DISTINCT first_seen, last_seen FROM jobs").fetchall() == [(first, second)]
    assert refresh_catalog(settings.catalog_path, settings.lake_dir)
    query = "SELECT count(*) FROM jobs WHERE last_seen = (SELECT max(scraped_at) FROM job_sightings)"
    assert shell_query(settings.catalog_path, query) == [str(groups)]
    # and after maintenance, which compacts the sightings too
    maintain(Lake(settings.lake_dir))
    with reader(settings.lake_dir) as con:
        assert con.execute("SELECT DISTINCT first_seen, last_seen FROM jobs").fetchall() == [(first, second)]
