"""Fixtures: a real moto server process, per-test queues and data dirs, a Prefect test API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobping.settings import Settings
from tasks.sqs.client import make_sqs_client
from tasks.sqs.queues import Queues, ensure_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

CASES = Path(__file__).parent / "cases"
SERVER_START_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = SERVER_START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server process on 127.0.0.1, shared by the session; queues are per test."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/moto-api/")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API for flow runs, with the heartbeat thread off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> dict[str, str]:
    """Settings for one test: its own data dir and queue names on the shared moto server."""
    for name in list(os.environ):
        if name.startswith("JOBPING_"):
            monkeypatch.delenv(name)
    values = {
        "JOBPING_DATA_DIR": str(tmp_path / "data"),
        "JOBPING_SQS_ENDPOINT_URL": moto_url,
        "JOBPING_QUEUE_NAME": f"jobs-{uuid.uuid4().hex[:12]}",
        "JOBPING_RECEIVE_WAIT_SECONDS": "0",
        "JOBPING_SCRAPE_SOURCE": "sample",
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
    return ensure_queues(sqs, settings)
