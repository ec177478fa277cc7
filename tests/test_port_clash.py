"""Two data dirs on one port: the second is told whose Prefect server it met and how to get past it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import prefect_server, stack
from app.port_owner import data_dir_on_port
from jobping.errors import ConfigurationError
from jobping.settings import Settings
from standins.servers import free_port

# a Prefect server started and asked (`stack up` measured 145 s in test_stack_e2e on a machine 40 to 70
# processes deep for its 2 cores): not measured alone
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The first data dir's settings, its Prefect server running (started by ``ensure_server``)."""
    for name in list(os.environ):
        if name.startswith(("JOBPING_", "PREFECT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("JOBPING_PREFECT_PORT", str(free_port()))
    monkeypatch.setenv("JOBPING_DATA_DIR", str(tmp_path / "first data"))
    settings = Settings()
    try:
        # bounded by SERVER_START_SECONDS: it raises when the server is not healthy by then
        _, pid = stack.ensure_server(settings)
        assert pid is not None
        yield settings
    finally:
        stack.down(settings)
    assert not port_open(settings.stack.prefect_port)


def test_a_second_data_dir_on_the_port_is_told_whose_server_it_is_and_how_to_stop_it(
    first: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = first.stack.prefect_port
    assert data_dir_on_port(port) == first.data_dir
    monkeypatch.setenv("JOBPING_DATA_DIR", str(tmp_path / "second"))
    second = Settings()
    with pytest.raises(ConfigurationError) as refused:
        stack.ensure_server(second)
    assert str(refused.value) == (
        f"port {port} is taken by the Prefect server of the data dir {first.data_dir}, which refuses this data "
        f"dir's password (from {prefect_server.auth_path(second)}): set JOBPING_PREFECT_PORT to another port for "
        f"{second.data_dir}, or stop that server with `JOBPING_DATA_DIR='{first.data_dir}' jobping stack down`"
    )
    # what it suggests works: the second data dir's own `stack down` could not have stopped it
    assert stack.down(second) == []
    assert port_open(port)
    monkeypatch.setenv("JOBPING_DATA_DIR", str(first.data_dir))
    assert stack.down(Settings()) == ["server"]
    assert not port_open(port)


def test_a_port_nobody_listens_on_has_no_owner() -> None:
    assert data_dir_on_port(free_port()) is None
