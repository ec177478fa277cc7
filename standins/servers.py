"""Starting the real local servers that tests and benchmarks talk to: moto and the OpenAI stand-in."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
# the process behind each url that serving() started, so that a fault test can freeze it
PIDS: dict[str, int] = {}
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


@contextmanager
def serving(args: list[str], health_path: str, log_path: Path, port: int | None = None) -> Iterator[str]:
    """Run ``python -m <args> --port N`` as its own process until the block ends; yields its URL."""
    port = port or free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *args, "-p" if args[0] == "moto.server" else "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        PIDS[url] = process.pid
        try:
            wait_for_http(url + health_path)
            yield url
        finally:
            PIDS.pop(url, None)
            stop(process)


@contextmanager
def in_a_thread(server: ThreadingHTTPServer, name: str) -> Iterator[int]:
    """``server`` answering from a daemon thread of this process until the block ends; yields its port."""
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def moto_server(log_path: Path) -> Any:
    return serving(["moto.server", "-H", "127.0.0.1"], "/moto-api/", log_path)


def openai_standin(log_path: Path) -> Any:
    return serving(["standins.openai_api"], "/health", log_path)


def webhook_receiver(store: Path, port: int) -> Any:
    """The webhook receiver on ``port``, keeping what it receives in ``store`` across restarts."""
    return serving(["standins.webhook", "--store", str(store)], "/health", store.with_suffix(".log"), port=port)


def received(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/_received", timeout=10) as response:
        return list(json.loads(response.read()))


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
            if response.status != 200:
                raise RuntimeError(f"the stand-in refused its configuration: {response.status}")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as response:
            return dict(json.loads(response.read()))

    def user_messages(self) -> list[str]:
        """The user messages of the requests since it was last configured, oldest first."""
        with urllib.request.urlopen(self.url + "/_requests", timeout=10) as response:
            return [str(message) for message in json.loads(response.read())["user_messages"]]
