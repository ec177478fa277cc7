"""Pings: a digest of new fitting job groups, through Prefect's own webhook block to a real receiver process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.settings import PREFECT_API_URL

from flows.analyse import analyse
from flows.scrape import scrape
from jobping.settings import Settings
from standins.servers import free_port, received, webhook_receiver
from storage.lake import Lake
from storage.pings import pinged_groups
from storage.reader import reader
from tasks.jobspy.search import ScrapeParameters

pytestmark = pytest.mark.usefixtures("prefect_api")

# two boards of the sample that share cross-posted jobs (Wiener Würfel's Data Platform Engineer among them)
SITES = ["glassdoor", "linkedin"]


def fitting(settings: Settings) -> dict[str, list[str]]:
    """Each job group the digest should carry, with its links."""
    query = "SELECT job_group, job_urls FROM jobs WHERE fit_score >= 80 AND verdict = 'apply'"
    with reader(settings.lake_dir) as con:
        return dict(con.execute(query).fetchall())


def save_block(port: int) -> str:
    block = CustomWebhookNotificationBlock(
        name="jobping test",
        url=f"http://127.0.0.1:{port}/hook",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
        timeout=5,
    )
    name = f"ping-{port}"
    block.save(name, overwrite=True)
    return f"custom-webhook/{name}"


def digests(url: str) -> list[dict[str, Any]]:
    return [json.loads(record["body"]) for record in received(url)]


def assert_carries_each_group_once(body: str, groups: dict[str, list[str]]) -> None:
    paragraphs = [p for p in body.strip().split("\n\n") if p]
    assert len(paragraphs) == len(groups)
    for urls in groups.values():
        # every link of a group in one paragraph, and that paragraph only
        holding = [p for p in paragraphs if urls[0] in p]
        assert len(holding) == 1
        assert all(url in holding[0] and body.count(url) == 1 for url in urls)


def test_one_digest_carries_every_new_fitting_group_once_and_the_next_run_sends_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_BLOCK", save_block(port))
    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        scrape(ScrapeParameters(source="sample", sites=SITES))
        report = asyncio.run(analyse())
        groups = fitting(settings)
        cross_posted = [urls for urls in groups.values() if len(urls) > 1]
        assert cross_posted, "the sample's two boards share fitting jobs"
        assert report.reused >= len(cross_posted)
        sent = digests(url)
        assert len(sent) == 1
        assert sent[0]["subject"].startswith(f"jobping: {len(groups)} new jobs")
        assert_carries_each_group_once(sent[0]["body"], groups)
        assert pinged_groups(Lake(settings.lake_dir)) == set(groups)

        # the same postings again and nothing new: no second digest
        scrape(ScrapeParameters(source="sample", sites=SITES))
        asyncio.run(analyse())
        assert len(digests(url)) == 1


def test_a_receiver_that_is_down_fails_nothing_and_the_next_run_delivers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_BLOCK", save_block(port))
    published = scrape(ScrapeParameters(source="sample", sites=SITES)).published
    report = asyncio.run(analyse())
    assert report.stored == published
    assert report.failure is None
    assert "not sent" in report.ping
    assert pinged_groups(Lake(settings.lake_dir)) == set()

    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        asyncio.run(analyse())
        sent = digests(url)
    assert len(sent) == 1
    assert_carries_each_group_once(sent[0]["body"], fitting(settings))


# the analyse flow in a process of its own, which says at its end what it did and whether it loaded duckdb
ANALYSE_IN_A_PROCESS = """
import asyncio, json, sys
from flows.analyse import analyse
report = asyncio.run(analyse())
print(json.dumps({"stored": report.stored, "ping": report.ping, "duckdb": "duckdb" in sys.modules}))
"""


def test_the_analyse_process_pings_every_new_fitting_group_and_never_loads_duckdb(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/jobping")
    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        scrape(ScrapeParameters(source="sample", sites=SITES))
        child = subprocess.run(
            [sys.executable, "-c", ANALYSE_IN_A_PROCESS],
            env={**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        sent = received(url)
    assert child.returncode == 0, child.stderr[-3000:]
    said = json.loads(child.stdout.splitlines()[-1])
    groups = fitting(settings)
    assert said["stored"] > len(groups) > 0
    assert said["ping"] == f"{len(groups)} new matches sent through webhook http://127.0.0.1"
    assert [{match["job_group"] for match in json.loads(record["body"])["matches"]} for record in sent] == [set(groups)]
    assert said["duckdb"] is False


def test_without_a_block_the_digest_is_json_posted_to_the_webhook_url(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/jobping")
    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        scrape(ScrapeParameters(source="sample", sites=SITES))
        asyncio.run(analyse())
        sent = received(url)
    assert [record["path"] for record in sent] == ["/jobping"]
    assert sent[0]["content_type"] == "application/json"
    payload = json.loads(sent[0]["body"])
    assert payload["kind"] == "matches"
    groups = fitting(settings)
    assert {match["job_group"] for match in payload["matches"]} == set(groups)
    assert all(match["fit_score"] >= 80 and match["verdict"] == "apply" for match in payload["matches"])
    assert {tuple(match["job_urls"]) for match in payload["matches"]} == {tuple(urls) for urls in groups.values()}


SECRET_TOKEN = "XoXSECRETtoken123"
SECRET_KEY = "QueryKEYsecret789"


def test_a_webhook_answering_404_leaves_its_secret_url_out_of_the_run_the_logs_and_the_cli(
    settings: Settings, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    port = free_port()
    hook = f"http://127.0.0.1:{port}/answer/404/services/T0001/B0001/{SECRET_TOKEN}?key={SECRET_KEY}"
    monkeypatch.setenv("JOBPING_NOTIFY_WEBHOOK_URL", hook)
    caplog.set_level(logging.DEBUG)
    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        scrape(ScrapeParameters(source="sample", sites=SITES))
        report = asyncio.run(analyse())
        cli = subprocess.run(
            [str(Path(sys.executable).parent / "jobping"), "notify"],
            env={**os.environ, **env, "JOBPING_NOTIFY_WEBHOOK_URL": hook},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert len(received(url)) == 2
    said = "the webhook http://127.0.0.1 answered 404 Not Found"
    assert report.ping == f"{len(fitting(settings))} new matches not sent ({said}); the next run sends them"
    assert cli.returncode == 1
    assert "answered 404" in cli.stdout
    shown = [cli.stdout, cli.stderr, caplog.text, *(record.getMessage() for record in caplog.records)]
    assert [text for text in shown if SECRET_TOKEN in text or SECRET_KEY in text] == []
