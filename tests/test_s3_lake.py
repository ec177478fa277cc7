"""The lake on object storage: s3://bucket/prefix against moto's S3, a real server process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from flows.analyse import analyse
from flows.compact import compact_lake
from flows.scrape import scrape
from jobping.search import ScrapeParameters
from jobping.settings import Settings
from storage.catalog import reader, refresh_catalog
from storage.delta import maintain
from storage.lake import Lake
from storage.store import stored_versions
from tasks.jobspy.source import sample_sites
from tests.lakes import write_rows
from tests.test_storage import SCRAPED, row

FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def bucket(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in FAKE_KEYS.items():
        monkeypatch.setenv(name, value)
    name = f"lake-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def objects(moto_url: str, bucket: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_appends_maintenance_and_queries_on_s3(moto_url: str, bucket: str) -> None:
    lake = Lake(f"s3://{bucket}/jobs", s3_endpoint_url=moto_url, region="us-east-1")
    write_rows(lake, [row("1", 10), row("2", 20)])
    write_rows(lake, [row("1", 90, analysed=row_time(1))])
    keys = objects(moto_url, bucket)
    data = [k for k in keys if "/_delta_log/" not in k]
    assert len(data) == 2
    assert all(key.startswith("jobs/enriched_jobs_history/scrape_date=2026-11-26/") for key in data)

    expected = [("indeed:1", 90), ("indeed:2", 20)]
    with reader(lake) as con:
        assert con.execute("SELECT job_key, fit_score FROM enriched_jobs ORDER BY 1").fetchall() == expected

    done = maintain(lake, timedelta(0))
    assert done is not None
    assert done.merged.rows_merged == 2
    keys = objects(moto_url, bucket)
    assert any(k.startswith("jobs/enriched_jobs_latest/scrape_date=2026-11-26/") for k in keys)
    # optimized and vacuumed: one data file left in the history
    assert len([k for k in keys if k.startswith("jobs/enriched_jobs_history/scrape_date=")]) == 1
    with reader(lake) as con:
        assert con.execute("SELECT job_key, fit_score FROM enriched_jobs ORDER BY 1").fetchall() == expected
        assert con.execute("SELECT count(*) FROM enriched_jobs_history").fetchall() == [(3,)]
    assert len(stored_versions(lake)) == 2


def row_time(hours: int) -> object:
    return SCRAPED + timedelta(hours=hours)


@pytest.mark.usefixtures("prefect_api")
def test_two_analyse_workers_write_one_s3_lake_that_the_catalog_reads(
    env: dict[str, str], moto_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOBPING_LAKE_URL", f"s3://{bucket}/lake")
    monkeypatch.setenv("JOBPING_S3_ENDPOINT_URL", moto_url)
    settings = Settings()
    published = scrape(ScrapeParameters(source="sample", sites=sample_sites()))

    async def two_workers() -> int:
        first, second = await asyncio.gather(analyse(), analyse())
        return first.stored + second.stored

    stored = asyncio.run(two_workers())
    assert stored >= published.published
    assert not (Path(env["JOBPING_DATA_DIR"]) / "lake").exists(), "nothing may land on the local disk"

    compact_lake(retain_hours=0)
    lake = Lake.from_settings(settings)
    with reader(lake) as con:
        assert con.execute("SELECT count(*), count(DISTINCT job_key) FROM enriched_jobs").fetchall() == [
            (published.published, published.published)
        ]
    # the catalog file's views read S3 through httpfs, with a secret a connection of the lake creates
    assert refresh_catalog(settings.catalog_path, lake)
    with lake.connect(str(settings.catalog_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM enriched_jobs").fetchall() == [(published.published,)]
    # a second scrape finds every job already stored in the S3 lake
    assert scrape(ScrapeParameters(source="sample", sites=sample_sites())).published == 0
