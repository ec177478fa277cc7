"""Sightings on the queue: encoded under the byte budget, recorded by the drain without an analysis, poison refused."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobping.contract import BODY_BUDGET_BYTES, PoisonMessageError
from jobping.engine.drain import AnalyseReport, drain
from jobping.engine.ports import Sighting
from jobping.sightings import MAX_KEYS_PER_MESSAGE, Sightings, encode_sightings, parse_body
from storage.delta import DeltaSightings
from storage.lake import Lake
from storage.reader import reader
from storage.sightings import record_sightings
from tests.fakes import SENT, FakeAnalyser, FakeLake, FakeQueue, posting
from tests.lakes import write_rows
from tests.test_engine import FAST
from tests.test_storage import SCRAPED, damaged, row


def run(queue: FakeQueue, lake: FakeLake, analyser: FakeAnalyser) -> AnalyseReport:
    report = asyncio.run(drain(queue, lake, analyser, options=FAST))
    assert report.balanced, report.line()
    return report


@pytest.mark.parametrize(
    ("keys", "messages"),
    [
        (["indeed:1"], 1),
        ([f"indeed:{n}" for n in range(30_000)], 2),
        ([f"url:{n:04d}" + "x" * 4_000 for n in range(200)], 4),
    ],
    ids=["one", "many short keys", "long keys"],
)
def test_sightings_carry_every_key_once_each_message_under_the_byte_budget(keys: list[str], messages: int) -> None:
    bodies = encode_sightings([*keys, *keys[:3]], SCRAPED)
    assert len(bodies) == messages
    assert all(len(body.encode()) <= BODY_BUDGET_BYTES for body in bodies)
    parsed = [parse_body(body, SENT) for body in bodies]
    assert all(isinstance(p, Sightings) and p.scraped_at == SCRAPED for p in parsed)
    assert [key for p in parsed if isinstance(p, Sightings) for key in p.job_keys] == keys


def test_no_message_carries_more_than_its_key_limit() -> None:
    bodies = encode_sightings([str(n) for n in range(MAX_KEYS_PER_MESSAGE + 1)], SCRAPED)
    assert [len(json.loads(body)["job_keys"]) for body in bodies] == [MAX_KEYS_PER_MESSAGE, 1]


def test_sightings_are_recorded_and_deleted_and_never_analysed() -> None:
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(*encode_sightings(["indeed:1", "indeed:2"], SCRAPED), posting(1))
    report = run(queue, lake, analyser)
    assert (report.received, report.seen, report.seen_postings, report.stored) == (2, 1, 2, 1)
    assert [(s.job_keys, s.scraped_at, s.message_id) for s in lake.sightings] == [
        (("indeed:1", "indeed:2"), SCRAPED, "m1")
    ]
    assert sum(analyser.calls.values()) == 1
    assert sorted(queue.deleted) == ["m1", "m2"]


def test_a_sightings_message_is_not_deleted_when_its_write_fails() -> None:
    queue, lake, analyser = FakeQueue(), FakeLake(sighting_failures=99), FakeAnalyser()
    queue.send(*encode_sightings(["indeed:1"], SCRAPED))
    report = run(queue, lake, analyser)
    assert isinstance(report.failure, OSError)
    assert (report.received, report.left_for_retry, report.seen) == (1, 1, 0)
    assert queue.deleted == []
    assert len(queue.in_flight) == 1
    assert not analyser.calls


def sightings(**changes: object) -> str:
    body = {"kind": "seen", "schema_version": 1, "scraped_at": SCRAPED.isoformat(), "job_keys": ["indeed:1"]}
    return json.dumps(body | changes)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (sightings(schema_version=2), "unknown sightings schema_version 2"),
        (sightings(job_keys=[]), "invalid sightings: job_keys"),
        (sightings(job_keys=["x" * 5_000]), "invalid sightings: job_keys.0"),
        (sightings(job_keys="indeed:1"), "invalid sightings: job_keys"),
        (sightings(scraped_at=(datetime.now(UTC) + timedelta(days=30)).isoformat()), "invalid sightings: scraped_at"),
        (sightings(extra="x"), "invalid sightings: extra"),
    ],
    ids=["unknown version", "no key", "key too long", "not a list", "from the future", "unknown field"],
)
def test_a_bad_sightings_message_goes_to_the_dlq_with_its_reason(body: str, reason: str) -> None:
    with pytest.raises(PoisonMessageError, match="sightings"):
        parse_body(body, SENT)
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(body)
    report = run(queue, lake, analyser)
    assert (report.received, report.dead_lettered, report.seen) == (1, 1, 0)
    ((dead, why),) = queue.dlq
    assert dead == body
    assert why.startswith(reason), why
    assert lake.sightings == []
    assert queue.deleted == ["m1"]


def test_an_unreadable_sightings_file_is_quarantined_and_the_views_go_on(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write_rows(lake, [row("1", 40)])
    later = SCRAPED + timedelta(days=1)
    record_sightings(lake, [Sighting(("indeed:1",), later, "m1")])
    before = set(DeltaSightings(lake).table().file_uris())
    record_sightings(lake, [Sighting(("indeed:1",), later + timedelta(days=1), "m2")])
    (bad,) = set(DeltaSightings(lake).table().file_uris()) - before
    Path(bad).write_bytes(damaged(Path(bad).read_bytes(), "cut in half"))
    with reader(lake) as con:
        assert con.execute("SELECT first_seen, last_seen FROM jobs").fetchall() == [(SCRAPED, later)]
    assert [Path(p).name for p in lake.quarantined()] == [Path(bad).name]
