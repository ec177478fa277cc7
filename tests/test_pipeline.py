"""The two flows end to end on a real moto server, with a throwaway Prefect API."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
from deltalake.exceptions import DeltaError
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

import flows.analyse
import storage.store
from flows.analyse import analyse
from flows.scrape import scrape
from jobping.contract import JobPosting, envelope_for
from jobping.settings import Settings
from storage.catalog import refresh_catalog
from storage.delta import DeltaHistory
from storage.lake import DELTA, Lake, load_extension
from storage.reader import reader
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import _sample_records, sample_sites
from tasks.sqs.messages import REASON_ATTRIBUTE, receive
from tasks.sqs.queues import Queues, depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.usefixtures("prefect_api")


def sample_params() -> ScrapeParameters:
    return ScrapeParameters(source="sample", sites=sample_sites())


def count(settings: Settings, query: str) -> int:
    with reader(settings.lake_dir) as con:
        rows = con.execute(query).fetchall()
    return int(rows[0][0])


def test_scrape_then_analyse_stores_every_distinct_sample_job_once_with_a_fit_score(settings: Settings) -> None:
    distinct = {(r["site"], r["id"] or r["job_url"]) for r in _sample_records()}
    published = scrape(sample_params())
    assert published.published == len(distinct)
    assert published.send_requests == math.ceil(len(distinct) / 10)

    report = asyncio.run(analyse())
    assert report.balanced
    assert (report.received, report.stored, report.dead_lettered) == (len(distinct), len(distinct), 0)
    assert count(settings, "SELECT count(*) FROM enriched_jobs") == len(distinct)
    assert count(settings, "SELECT count(DISTINCT job_key) FROM enriched_jobs") == len(distinct)
    assert count(settings, "SELECT count(*) FROM enriched_jobs WHERE fit_score IS NULL") == 0
    assert settings.catalog_path.exists()


def test_a_second_run_publishes_nothing_unchanged_and_adds_no_row(settings: Settings) -> None:
    scrape(sample_params())
    first = asyncio.run(analyse())
    again = scrape(sample_params())
    assert again.published == 0
    assert again.already_stored == first.stored
    second = asyncio.run(analyse())
    # one sightings message (the postings seen again, for last_seen), recorded without an analysis
    assert (second.received, second.seen, second.seen_postings, second.stored) == (1, 1, first.stored, 0)
    assert count(settings, "SELECT count(*) FROM enriched_jobs_history") == first.stored


def test_a_duplicate_delivery_is_skipped_not_stored_twice(settings: Settings, sqs: SQSClient, queues: Queues) -> None:
    scrape(ScrapeParameters(source="sample", sites=["google"]))
    messages = receive(sqs, queues.url, wait_seconds=0)
    for message in messages:  # the same bodies again, as an at-least-once queue may deliver them
        sqs.send_message(QueueUrl=queues.url, MessageBody=message.body)
    sqs.change_message_visibility_batch(
        QueueUrl=queues.url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for i, m in enumerate(messages)
        ],
    )
    report = asyncio.run(analyse())
    assert report.balanced
    assert report.skipped >= len(messages)
    assert count(settings, "SELECT count(*) FROM enriched_jobs_history") == report.stored
    assert count(settings, "SELECT count(*) FROM enriched_jobs") == report.stored


def test_plain_producer_postings_with_nan_are_stored(settings: Settings, sqs: SQSClient, queues: Queues) -> None:
    rows = json.loads((Path(__file__).parent / "cases" / "plain_producer.json").read_text())
    for row in rows:
        # exactly what the original design's producer does: json.dumps of the row's fields
        sqs.send_message(QueueUrl=queues.url, MessageBody=json.dumps(row))
    report = asyncio.run(analyse())
    assert report.stored == len(rows)
    assert report.dead_lettered == 0
    # json reads the producer's NaN as float("nan")
    without_amount = [row for row in rows if row.get("min_amount") is None or math.isnan(row["min_amount"])]
    assert count(settings, "SELECT count(*) FROM enriched_jobs WHERE min_amount IS NULL") == len(without_amount) > 0


def test_a_bare_posting_too_long_or_with_an_impossible_detail_is_stored_cut_or_cleared(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    bodies = json.loads((Path(__file__).parent / "cases" / "salvageable.json").read_text())
    for body in bodies:
        sqs.send_message(QueueUrl=queues.url, MessageBody=body)
    report = asyncio.run(analyse())
    assert (report.stored, report.dead_lettered) == (len(bodies), 0)
    with reader(settings.lake_dir) as con:
        rows = con.execute("SELECT title, min_amount, interval, truncated_fields FROM enriched_jobs").fetchall()
    by_title = {title[:12]: (amount, interval, cut) for title, amount, interval, cut in rows}
    assert by_title["T" * 12] == (None, None, ["title"])
    assert by_title["Negative pay"] == (None, None, [])
    assert by_title["Weird interva"[:12]] == (None, None, [])


def test_one_hostile_message_decides_its_own_outcome_and_never_the_run_s(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    now = datetime.now(UTC)
    victim = JobPosting(id="1", site="indeed", job_url="https://jobs.example.com/v", title="Victim")
    forger = envelope_for(JobPosting(id="2", site="indeed", job_url="https://x.example/f", title="Forger"), now)
    honest = envelope_for(JobPosting(id="3", site="indeed", job_url="https://x.example/h", title="Honest"), now)
    bodies = {
        "an integer of 5,000 digits": '{"title": "t", "job_url": "https://x.example/1", "min_amount": '
        + "9" * 5_000
        + "}",
        "another job's job_key": forger.model_copy(update={"job_key": "indeed:1"}).model_dump_json(),
        "a forged content_hash": honest.model_copy(update={"content_hash": "0" * 64}).model_dump_json(),
    }
    hourly = {"title": "Odd pay", "job_url": "https://x.example/p", "min_amount": 90_000, "interval": "hourly"}
    for body in [*bodies.values(), json.dumps(hourly), envelope_for(victim, now).model_dump_json()]:
        sqs.send_message(QueueUrl=queues.url, MessageBody=body)
    report = asyncio.run(analyse())
    assert report.balanced
    assert (report.stored, report.dead_lettered) == (2, len(bodies))
    with reader(settings.lake_dir) as con:
        rows = con.execute("SELECT title, salary_min_yearly, red_flags FROM enriched_jobs ORDER BY title").fetchall()
    assert [r[0] for r in rows] == ["Odd pay", "Victim"]
    assert rows[0][1] is None
    assert any("implausible" in flag for flag in rows[0][2])
    reasons = []
    while batch := receive(sqs, queues.dlq_url, wait_seconds=0):
        reasons += [m.attributes.get(REASON_ATTRIBUTE, "") for m in batch]
    assert any("not the posting's own" in r for r in reasons)
    assert any("content_hash does not match" in r for r in reasons)
    assert any("not JSON" in r for r in reasons)


def test_poison_goes_to_the_dlq_with_a_reason_and_the_counts_add_up(sqs: SQSClient, queues: Queues) -> None:
    corpus = json.loads((Path(__file__).parent / "cases" / "poison.json").read_text())
    good = {"title": "Data Engineer", "job_url": "https://jobs.example.com/ok/1", "company": "Fine GmbH"}
    for body in [*corpus, json.dumps(good)]:
        sqs.send_message(QueueUrl=queues.url, MessageBody=body)
    report = asyncio.run(analyse())
    assert report.balanced
    assert (report.received, report.stored, report.dead_lettered) == (len(corpus) + 1, 1, len(corpus))
    in_dlq = []
    while batch := receive(sqs, queues.dlq_url, wait_seconds=0):
        in_dlq.extend(batch)
    assert len(in_dlq) == len(corpus)
    assert all(m.attributes.get(REASON_ATTRIBUTE) for m in in_dlq)
    assert depth(sqs, queues.url).visible + depth(sqs, queues.url).in_flight == 0


def test_nothing_is_deleted_when_the_lake_write_fails(
    settings: Settings, sqs: SQSClient, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrape(ScrapeParameters(source="sample", sites=["google"]))
    published = depth(sqs, queues.url).visible
    # the history table as the analyse run creates it (the scrape only reads the lake), then files where the
    # partitions' folders should be: every write fails, as on a broken disk
    lake = storage.store.open_lake(Lake.from_settings(settings))
    today = datetime.now(UTC).date()
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        (Path(lake.history_uri) / f"scrape_date={day}").write_text("not a folder")
    with pytest.raises(DeltaError, match="Not a directory"):
        asyncio.run(analyse())
    after = depth(sqs, queues.url)
    assert after.visible + after.in_flight == published
    assert depth(sqs, queues.dlq_url).visible == 0


def test_a_process_holding_the_catalog_open_does_not_make_a_run_fail(settings: Settings) -> None:
    scrape(ScrapeParameters(source="sample", sites=["google"]))
    asyncio.run(analyse())
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            from storage.lake import load_extension
            con = duckdb.connect({str(settings.catalog_path)!r})  # read-write, the strongest lock
            load_extension(con, "delta")
            con.execute("SELECT count(*) FROM enriched_jobs").fetchall()
            print("holding", flush=True)
            sys.stdin.read()  # holds the lock until the test closes its stdin
        """)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(settings.catalog_path), read_only=True)
        # make the run want to rewrite the views, so it meets the lock
        settings.catalog_path.with_suffix(".version").unlink()
        published = scrape(ScrapeParameters(source="sample", sites=["indeed"])).published
        report = asyncio.run(analyse())
        assert report.stored == published
        assert count(settings, "SELECT count(*) FROM enriched_jobs WHERE site = 'indeed'") == report.stored
    finally:
        holder.kill()
        holder.wait()


def test_the_catalog_is_written_once_the_first_batch_is_stored_and_found_current_at_the_end(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one batch at a time, so that the first is stored before the next is received
    monkeypatch.setenv("JOBPING_LLM_CONCURRENCY", "1")
    versions_seen: list[int] = []
    written: list[bool] = []

    def counting(catalog: Path, lake: Lake, *, in_child: bool = False) -> bool:
        versions_seen.append(DeltaHistory(lake).table().version())
        written.append(catalog.exists())
        return refresh_catalog(catalog, lake, in_child=in_child)

    # one function, imported by the run and by the store that binds the catalog after the first batch
    monkeypatch.setattr(flows.analyse, "refresh_catalog", counting)
    monkeypatch.setattr(storage.store, "refresh_catalog", counting)
    scrape(sample_params())
    report = asyncio.run(analyse())
    assert report.batches > 2
    # written when the history held the first batch (created, then one append); current at the end
    assert versions_seen[0] == 1
    assert versions_seen[0] < versions_seen[-1]
    assert written == [False, True]
    assert count(settings, "SELECT count(*) FROM enriched_jobs") == report.stored


def test_the_catalog_opens_and_queries_from_any_working_directory(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrape(ScrapeParameters(source="sample", sites=["google"]))
    stored = asyncio.run(analyse()).stored
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with duckdb.connect(str(settings.catalog_path), read_only=True) as con:
        load_extension(con, DELTA)
        rows = con.execute("SELECT count(*) FROM enriched_jobs").fetchall()
    assert rows == [(stored,)]


def test_each_run_records_its_counts_as_a_prefect_artifact(settings: Settings) -> None:
    scraped = scrape(ScrapeParameters(source="sample", sites=["google"]), return_state=True)
    analysed = asyncio.run(analyse(return_state=True))
    report = analysed.result()
    tables = {}
    with get_client(sync_client=True) as client:
        for state in (scraped, analysed):
            run_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            for artifact in client.read_artifacts(artifact_filter=run_filter):
                tables[artifact.key] = (artifact.data, str(artifact.description))
    site_row = {"site": "google", "found": report.received, "new": report.received, "already stored": 0}
    assert {**site_row, "status": "ok"} in json.loads(str(tables["scrape-summary"][0]))
    assert {"what": "stored", "count": report.stored} in json.loads(str(tables["analyse-summary"][0]))
    assert "offline" in tables["analyse-summary"][1].lower()
    assert "| fit | verdict | title | company | link |" in str(tables["top-matches"][0])
    assert "counts add up: True" in tables["analyse-summary"][1]
