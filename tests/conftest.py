"""Fixtures: a real moto server process, per-test queues and data dirs, a Prefect test API."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from jobping.settings import Settings
from standins.servers import StandIn, moto_server, openai_standin
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queues import Queues, ensure_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server process on 127.0.0.1, shared by the session; queues are per test."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API for flow runs, with the heartbeat thread off."""

    with prefect_test_harness(server_startup_timeout=90), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> dict[str, str]:
    """Settings for one test: its own data dir and queue names on the shared moto server."""
    for name in list(os.environ):
        if name.startswith("JOBPING_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name)
    values = {
        "JOBPING_DATA_DIR": str(tmp_path / "data"),
        "JOBPING_SQS_ENDPOINT_URL": moto_url,
        "JOBPING_QUEUE_NAME": f"jobs-{uuid.uuid4().hex[:12]}",
        "JOBPING_RECEIVE_WAIT_SECONDS": "0",
        "JOBPING_SCRAPE_SOURCE": "sample",
        # no test waits for politeness or back-off
        "JOBPING_SCRAPE_PAUSE_SECONDS": "0",
        "JOBPING_SCRAPE_RETRY_SECONDS": "0",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return values


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
def sqs(settings: Settings) -> SQSClient:
    return make_sqs_client(settings)


@pytest.fixture
def queues(sqs: SQSClient, settings: Settings) -> Queues:
    return ensure_queues(sqs, settings.sqs)


@pytest.fixture(scope="session")
def standin_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """A real local HTTP server speaking the Chat Completions wire format, as its own process."""
    with openai_standin(tmp_path_factory.mktemp("standin") / "standin.log") as url:
        yield StandIn(url)


FAKE_OPENAI_KEY = "sk-jobping-test-" + "5ecret" * 6


@pytest.fixture
def standin(standin_process: StandIn, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """The stand-in, reset, and the settings pointing the real openai client at it."""
    standin_process.configure()
    for name, value in {
        "OPENAI_BASE_URL": standin_process.url + "/v1",
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "JOBPING_LLM_TIMEOUT_SECONDS": "2",
        "JOBPING_LLM_MAX_RETRIES": "2",
    }.items():
        monkeypatch.setenv(name, value)
    return standin_process
