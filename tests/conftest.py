"""Fixtures: a real moto server process, per-test queues and data dirs, a Prefect test API."""

from __future__ import annotations

import json
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
from typing import TYPE_CHECKING, Any

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


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> None:
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
        stop(process)
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
        if name.startswith("JOBPING_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
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


class StandIn:
    """Handle on the OpenAI stand-in process: configure its faults, read its counters."""

    def __init__(self, url: str) -> None:
        self.url = url

    def configure(self, **faults: object) -> None:
        request = urllib.request.Request(
            self.url + "/_config",
            data=json.dumps(faults).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as response:
            return dict(json.loads(response.read()))


@pytest.fixture(scope="session")
def standin_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """A real local HTTP server speaking the Chat Completions wire format, as its own process."""
    port = free_port()
    log = (tmp_path_factory.mktemp("standin") / "standin.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.standin_openai", "--port", str(port)],
        cwd=Path(__file__).parent.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/health")
        yield StandIn(url)
    finally:
        stop(process)
        log.close()


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
