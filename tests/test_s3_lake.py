"""The lake on object storage: s3://bucket/prefix against moto's S3, a real server process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.analyse import analyse
from flows.compact import compact_lake
from flows.scrape import scrape
from jobping.settings import Settings
from standins.refusing_proxy import refusing_proxy
from storage.catalog import refresh_catalog
from storage.lake import HISTORY_TABLE, Lake
from storage.maintenance import maintain
from storage.reader import reader
from storage.store import open_lake, stored_versions
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites
from tasks.sqs.queues import Queues, depth
from tests.fakes import posting
from tests.lakes import write_rows
from tests.test_storage import SCRAPED, row

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

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


# one batch: SQS hands out ten at most
POSTINGS = 7
# the lake's client tries each request this often in all; the proxy refuses one write more, so the first
# data file's upload fails the batch, and the batch's second attempt finds S3 answering again
S3_TRIES = 2
REFUSED_WRITES = S3_TRIES


@pytest.mark.usefixtures("prefect_api")
def test_a_batch_whose_s3_write_meets_503s_is_retried_by_prefect_and_stored_once(
    env: dict[str, str], moto_url: str, bucket: str, sqs: SQSClient, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the table exists before the outage: only the batch's write meets it
    direct = open_lake(Lake(f"s3://{bucket}/lake", s3_endpoint_url=moto_url, region="us-east-1"))
    for n in range(POSTINGS):
        sqs.send_message(QueueUrl=queues.url, MessageBody=posting(n))
    # a partition folder's "=" may come percent-encoded
    data_files = f"/{bucket}/lake/{HISTORY_TABLE}/scrape_date"
    with refusing_proxy(moto_url, refusals=REFUSED_WRITES, path_prefix=data_files) as proxy:
        monkeypatch.setenv("JOBPING_LAKE_URL", f"s3://{bucket}/lake")
        monkeypatch.setenv("JOBPING_S3_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("JOBPING_S3_MAX_RETRIES", str(S3_TRIES - 1))
        state = asyncio.run(analyse(return_state=True))
        assert state.is_completed(), state.message
        assert len(proxy.refused) == REFUSED_WRITES
    report = state.result()
    assert (report.received, report.stored, report.dead_lettered, report.batches) == (POSTINGS, POSTINGS, 0, 1)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    batches = [run for run in runs if run.task_key.startswith("analyse_batch")]
    assert [(run.run_count, run.state_name) for run in batches] == [(2, "Completed")]
    rows = pl.read_delta(direct.history_uri, storage_options=direct.storage_options)
    assert rows.height == POSTINGS
    assert rows["job_key"].n_unique() == POSTINGS
    main, dlq = depth(sqs, queues.url), depth(sqs, queues.dlq_url)
    assert (main.visible, main.in_flight, dlq.visible) == (0, 0, 0)
