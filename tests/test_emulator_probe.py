"""How jobping knows its embedded emulator (a real moto server): by a probe that costs the same whatever the
queues hold, and by waiting for the emulator it started when that one is too busy to answer in time."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pytest

from jobping.settings import Settings
from standins.servers import free_port
from tasks.sqs import emulator
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries

MESSAGES = 500


@pytest.fixture
def own_emulator(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on the embedded default with a port of this test's own, its emulator started."""
    monkeypatch.delenv("JOBPING_SQS_ENDPOINT_URL")
    monkeypatch.setenv("JOBPING_EMULATOR_PORT", str(free_port()))
    settings = Settings()
    assert emulator.ensure_running(settings).started_here
    yield settings
    emulator.stop(settings)


class CountingReply:
    """A urlopen reply that notes how many bytes were read from it."""

    def __init__(self, reply: Any, sizes: list[int]) -> None:
        self.reply, self.sizes = reply, sizes
        self.status = reply.status

    def __enter__(self) -> CountingReply:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.reply.close()

    def read(self) -> bytes:
        data: bytes = self.reply.read()
        self.sizes.append(len(data))
        return data


def test_the_probe_reads_no_more_from_an_emulator_holding_hundreds_of_messages_than_from_an_empty_one(
    own_emulator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = urllib.request.urlopen

    def counting(url: str, timeout: float) -> CountingReply:
        return CountingReply(real(url, timeout=timeout), sizes)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    assert emulator.answers(own_emulator)
    empty = sizes[-1]
    sqs = make_sqs_client(own_emulator)
    url = sqs.create_queue(QueueName="deep")["QueueUrl"]
    report = send_entries(sqs, url, [{"Id": str(n), "MessageBody": "x" * 200} for n in range(MESSAGES)])
    assert not report.failed

    assert emulator.answers(own_emulator)
    # moto's state dump would grow by every message; its config does not
    assert sizes[-1] == empty


def test_a_run_that_finds_its_own_emulator_too_busy_to_answer_waits_for_it_instead_of_failing(
    own_emulator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = emulator.status(own_emulator).pid
    assert pid is not None
    probes = [0]
    real = emulator.answers

    def busy_for_two_probes(settings: Settings) -> bool:
        # the emulator frozen (SIGSTOP) answers nothing: the first two probes time out, then it goes on
        probes[0] += 1
        if probes[0] == 3:
            os.killpg(pid, signal.SIGCONT)
        return real(settings)

    monkeypatch.setattr(emulator, "answers", busy_for_two_probes)
    os.killpg(pid, signal.SIGSTOP)
    try:
        status = emulator.ensure_running(own_emulator)
    finally:
        os.killpg(pid, signal.SIGCONT)

    assert status.running
    assert status.pid == pid
    assert not status.started_here
    assert probes[0] >= 3
