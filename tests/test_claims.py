"""The claims every consumer shares: their rules against the real record, a folder of files (and S3 on moto)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import Envelope
from jobping.engine.claims import KEEP_SECONDS, Held, HeldElsewhere, SharedClaims, StoredElsewhere
from jobping.engine.drain import DrainOptions, drain
from jobping.engine.ports import ClaimEntry, ClaimRecord, StoredVersion
from jobping.errors import ConfigurationError
from jobping.sightings import parse_body
from storage.claims import FOLDER, LocalClaims, claim_name, lake_claims
from storage.lake import Lake
from tests.fakes import SENT, FakeAnalyser, FakeLake, FakeQueue, posting
from tests.test_engine import FAST

LEASE_SECONDS = 60
START = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
VERSION = StoredVersion("indeed:1", "c" * 64, "p1")


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def consumer(record: ClaimRecord, clock: Clock, *, known_since: datetime = START) -> SharedClaims:
    return SharedClaims(record, lease_seconds=LEASE_SECONDS, known_since=known_since, clock=clock)


def answer() -> AnalysisResult:
    analysis = JobAnalysis(
        fit_score=81, verdict="apply", seniority="mid", remote_policy="remote", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="paid for",
    )  # fmt: skip
    return AnalysisResult(analysis=analysis, model="m", prompt_version="p1", prompt_tokens=500, cost_usd=0.01)


@pytest.fixture
def record(tmp_path: Path) -> LocalClaims:
    return LocalClaims(tmp_path / "lake")


def test_of_two_consumers_one_takes_the_claim_and_the_other_comes_back_when_it_runs_out(record: LocalClaims) -> None:
    clock = Clock()
    first, second = consumer(record, clock), consumer(record, clock)
    assert first.claim(VERSION) == Held()
    clock.now += timedelta(seconds=20)
    assert second.claim(VERSION) == HeldElsewhere(retry_after_seconds=41)


def test_a_stored_claim_makes_every_other_consumer_skip_the_posting(record: LocalClaims) -> None:
    clock = Clock()
    first, second = consumer(record, clock), consumer(record, clock)
    first.claim(VERSION)
    first.stored([VERSION])
    clock.now += timedelta(hours=3)
    assert second.claim(VERSION) == StoredElsewhere()
    assert consumer(record, clock).claim(VERSION) == StoredElsewhere()


def test_a_claim_whose_holder_died_is_taken_over_with_the_answer_it_paid_for(record: LocalClaims) -> None:
    clock = Clock()
    first, second = consumer(record, clock), consumer(record, clock)
    first.claim(VERSION)
    first.answered(VERSION, answer())
    clock.now += timedelta(seconds=LEASE_SECONDS + 1)  # killed: never renewed, never released
    assert second.claim(VERSION) == Held(answer())
    # the one who took it over holds it now
    assert consumer(record, clock).claim(VERSION) == HeldElsewhere(retry_after_seconds=LEASE_SECONDS)
    assert sorted(p.name for p in record.folder.iterdir()) == [claim_name(VERSION, 0), claim_name(VERSION, 1)]


def test_a_holder_s_own_message_come_back_waits_for_the_lease_then_takes_the_answer(record: LocalClaims) -> None:
    clock = Clock()
    holder, next_one = consumer(record, clock), consumer(record, clock)
    holder.claim(VERSION, "m1")
    holder.answered(VERSION, answer())
    # a late heartbeat let the holder's own message be delivered again: the holder may be alive and about
    # to store it, so the claim is not taken over while it lives
    clock.now += timedelta(seconds=LEASE_SECONDS / 2)
    assert next_one.claim(VERSION, "m1") == HeldElsewhere(retry_after_seconds=LEASE_SECONDS // 2 + 1)
    clock.now += timedelta(seconds=LEASE_SECONDS / 2)
    assert next_one.claim(VERSION, "m1") == Held(answer())


def test_a_renewed_claim_stays_held_past_its_first_lease(record: LocalClaims) -> None:
    clock = Clock()
    first, second = consumer(record, clock), consumer(record, clock)
    first.claim(VERSION)
    clock.now += timedelta(seconds=LEASE_SECONDS / 2)
    assert first.renew() == 1
    clock.now += timedelta(seconds=LEASE_SECONDS / 2 + 5)
    assert isinstance(second.claim(VERSION), HeldElsewhere)


def test_a_released_claim_is_anyones_at_once_and_a_closed_drain_holds_nothing(record: LocalClaims) -> None:
    clock = Clock()
    first, second = consumer(record, clock), consumer(record, clock)
    other = StoredVersion("indeed:2", "d" * 64, "p1")
    first.claim(VERSION)
    first.claim(other)
    first.release([VERSION])
    assert second.claim(VERSION) == Held()
    first.close()
    assert first.held == 0
    assert second.claim(other) == Held()


def test_a_batch_handled_again_finds_its_own_claim_held(record: LocalClaims) -> None:
    first = consumer(record, Clock())
    first.claim(VERSION)
    first.answered(VERSION, answer())
    assert first.claim(VERSION) == Held(answer())


RACERS = 8
VERSIONS = 40


@pytest.mark.parametrize("ran_out", [False, True], ids=["fresh claims", "claims that ran out"])
def test_of_many_consumers_racing_for_a_claim_exactly_one_takes_it(tmp_path: Path, ran_out: bool) -> None:
    versions = [StoredVersion(f"indeed:{n}", "e" * 64, "p1") for n in range(VERSIONS)]
    clock = Clock()
    if ran_out:
        dead = consumer(LocalClaims(tmp_path / "lake"), clock)
        for version in versions:
            dead.claim(version)
        clock.now += timedelta(seconds=LEASE_SECONDS + 1)
    # each racer its own record, as each process opens the lake
    racers = [consumer(LocalClaims(tmp_path / "lake"), clock) for _ in range(RACERS)]
    taken: list[StoredVersion] = []
    barrier = threading.Barrier(RACERS)

    def race(claims: SharedClaims) -> None:
        barrier.wait()
        taken.extend(version for version in versions if isinstance(claims.claim(version), Held))

    threads = [threading.Thread(target=race, args=(claims,)) for claims in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(taken, key=lambda v: v.job_key) == sorted(versions, key=lambda v: v.job_key)


def forge(record: LocalClaims, generation: int, text: str) -> None:
    (record.folder / claim_name(VERSION, generation)).write_text(text, encoding="utf-8")


LIVE = (START + timedelta(seconds=30)).isoformat()


def entry(**fields: object) -> str:
    """Another consumer's claim, live unless ``fields`` say otherwise."""
    return json.dumps({"owner": "elsewhere:1:abc", "state": "claimed", "expires_at": LIVE} | fields)


def test_another_consumers_live_claim_as_written_by_hand_is_respected(record: LocalClaims) -> None:
    forge(record, 0, entry())
    assert consumer(record, Clock()).claim(VERSION) == HeldElsewhere(retry_after_seconds=31)


FORGED = {
    "a lease to the year 9999": entry(expires_at="9999-12-31T00:00:00+00:00"),
    "stored in the future": entry(state="stored", stored_at="9999-12-31T00:00:00+00:00"),
    "stored before the drain read the lake, which lacks it": entry(
        state="stored", stored_at=(START - timedelta(hours=2)).isoformat()
    ),
    "stored with no moment": entry(state="stored"),
    "not json": "{not a claim",
    "an unknown field": entry()[:-1] + ', "admin": true}',
    "a moment with no zone": entry(expires_at=LIVE.replace("+00:00", "")),
    "over 64 KiB": entry(owner="x" * 100)[:-1] + ', "pad": "' + "x" * 70_000 + '"}',
    "empty": "",
}


@pytest.mark.parametrize("text", FORGED.values(), ids=FORGED.keys())
def test_a_forged_or_broken_claim_is_taken_over_not_believed(record: LocalClaims, text: str) -> None:
    forge(record, 0, text)
    assert consumer(record, Clock()).claim(VERSION) == Held()
    assert (record.folder / claim_name(VERSION, 1)).exists()


def test_a_claim_that_is_a_link_or_a_fifo_is_never_followed_or_waited_on(record: LocalClaims, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text(entry(), encoding="utf-8")
    (record.folder / claim_name(VERSION, 0)).symlink_to(victim)
    os.mkfifo(record.folder / claim_name(VERSION, 1))
    assert consumer(record, Clock()).claim(VERSION) == Held()
    assert (record.folder / claim_name(VERSION, 2)).is_file()
    assert victim.read_text(encoding="utf-8") == entry()


def test_a_claims_folder_that_leads_outside_the_lake_is_refused(tmp_path: Path) -> None:
    lake, elsewhere = tmp_path / "lake", tmp_path / "elsewhere"
    lake.mkdir()
    elsewhere.mkdir()
    (lake / FOLDER).symlink_to(elsewhere)
    with pytest.raises(ConfigurationError, match="is not a folder of the lake"):
        LocalClaims(lake)


def test_pruning_deletes_only_whole_chains_of_old_claims_and_nothing_it_did_not_name(record: LocalClaims) -> None:
    clock = Clock()
    old, renewed = StoredVersion("indeed:old", "f" * 64, "p1"), StoredVersion("indeed:new", "f" * 64, "p1")
    dead = consumer(record, clock)
    dead.claim(old)
    dead.claim(renewed)
    clock.now += timedelta(seconds=LEASE_SECONDS + 1)
    consumer(record, clock).claim(renewed)  # its generation 1 is new
    foreign = record.folder / "README.txt"
    foreign.write_text("not ours", encoding="utf-8")
    aged = os.path.getmtime(record.folder / claim_name(renewed, 1)) - KEEP_SECONDS - 10
    for path in [record.folder / claim_name(old, 0), record.folder / claim_name(renewed, 0), foreign]:
        os.utime(path, (aged, aged))
    cutoff = datetime.fromtimestamp(aged + 5, UTC)
    assert record.prune(cutoff) == 1
    assert sorted(p.name for p in record.folder.iterdir()) == sorted(
        [claim_name(renewed, 0), claim_name(renewed, 1), "README.txt"]
    )


def test_a_drain_leaves_a_posting_another_consumer_holds_for_later_and_then_skips_it(tmp_path: Path) -> None:
    record = LocalClaims(tmp_path / "lake")
    elsewhere = SharedClaims(record, lease_seconds=LEASE_SECONDS, known_since=datetime.now(UTC))
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(posting(1), posting(2))
    version = StoredVersion(*held_version(posting(1)))
    assert elsewhere.claim(version) == Held()

    options = DrainOptions(receive_wait_seconds=0, visibility_timeout_seconds=LEASE_SECONDS, retry=FAST.retry)
    report = asyncio.run(drain(queue, lake, analyser, options=options, claims=record))
    assert report.balanced, report.line()
    assert (report.stored, report.left_for_retry, report.claimed) == (1, 1, 1)
    assert sum(analyser.calls.values()) == 1
    assert queue.extended == {"m1": 1}  # back when the claim would run out
    assert list(queue.in_flight) == ["m1"]

    elsewhere.stored([version])
    queue.release(list(queue.in_flight.values()))
    again = asyncio.run(drain(queue, lake, analyser, options=options, claims=record))
    assert (again.received, again.skipped, again.stored) == (1, 1, 0)
    assert sum(analyser.calls.values()) == 1
    assert not queue.in_flight


def test_the_answer_a_killed_consumer_paid_for_is_stored_without_asking_again(tmp_path: Path) -> None:
    record = LocalClaims(tmp_path / "lake")
    # its claim ran out minutes ago: never renewed, never released
    earlier = Clock(datetime.now(UTC) - timedelta(minutes=5))
    killed = consumer(record, earlier, known_since=earlier.now)
    version = StoredVersion(*held_version(posting(1)))
    killed.claim(version)
    killed.answered(version, answer())
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(posting(1))
    report = asyncio.run(drain(queue, lake, analyser, options=FAST, claims=record))
    assert (report.stored, sum(analyser.calls.values())) == (1, 0)
    assert lake.rows[0].result.analysis.summary == "paid for"
    assert SharedClaims(record, lease_seconds=1, known_since=datetime.now(UTC)).claim(version) == StoredElsewhere()


def held_version(body: str) -> tuple[str, str, str]:
    envelope = parse_body(body, SENT)
    assert isinstance(envelope, Envelope)
    return envelope.job_key, envelope.content_hash, "p1"


FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def test_claims_on_s3_are_created_once_by_a_conditional_put_and_pruned(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FAKE_KEYS.items():
        monkeypatch.setenv(name, value)
    bucket = f"claims-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=bucket)
    lake = Lake(f"s3://{bucket}/lake", s3_endpoint_url=moto_url, region="us-east-1")
    clock = Clock(datetime.now(UTC))
    first, second = (consumer(lake_claims(lake), clock, known_since=clock.now) for _ in range(2))
    assert first.claim(VERSION) == Held()
    mine = ClaimEntry(owner="second", state="claimed", expires_at=clock.now)
    assert lake_claims(lake).create(VERSION, 0, mine) is False  # If-None-Match: * refused it
    assert isinstance(second.claim(VERSION), HeldElsewhere)
    first.answered(VERSION, answer())
    clock.now += timedelta(seconds=LEASE_SECONDS + 1)
    assert second.claim(VERSION) == Held(answer())
    second.stored([VERSION])
    assert consumer(lake_claims(lake), clock, known_since=clock.now).claim(VERSION) == StoredElsewhere()
    assert lake_claims(lake).prune(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert lake_claims(lake).prune(datetime.now(UTC) + timedelta(hours=1)) == 2


class WatchedClaims(LocalClaims):
    """The real record, with the leases it was asked to write."""

    def __init__(self, lake_dir: Path) -> None:
        super().__init__(lake_dir)
        self.leases: list[tuple[str, datetime]] = []

    def replace(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> None:
        self.leases.append((entry.state, entry.expires_at))
        super().replace(version, generation, entry)


def test_the_heartbeat_renews_the_claims_of_slow_work_and_the_claim_ends_stored(tmp_path: Path) -> None:
    record = WatchedClaims(tmp_path / "lake")
    queue, analyser = FakeQueue(), FakeAnalyser(slow_seconds=1.2)
    queue.send(posting(1, "SLOW"))
    options = DrainOptions(receive_wait_seconds=0, visibility_timeout_seconds=1, retry=FAST.retry)
    report = asyncio.run(drain(queue, FakeLake(), analyser, options=options, claims=record))
    assert report.stored == 1
    renewals = [expires for state, expires in record.leases if state == "claimed"]
    assert renewals
    assert renewals == sorted(renewals)
    assert record.leases[-1][0] == "stored"


def test_a_holder_whose_claim_was_taken_over_while_it_lived_does_not_store_the_posting_too(
    record: LocalClaims,
) -> None:
    clock = Clock()
    alive, other = consumer(record, clock), consumer(record, clock)
    alive.claim(VERSION, "m1")
    kept = StoredVersion("indeed:2", "d" * 64, "p1")
    alive.claim(kept, "m2")
    # the holder stalls past its lease (a machine paused, say) while it still works on the posting
    clock.now += timedelta(seconds=LEASE_SECONDS + 1)
    assert other.claim(VERSION, "m1") == Held()
    # just before its durable write the holder asks, and leaves the posting to the one who stores it
    assert alive.taken_over([VERSION, kept]) == {VERSION}
    alive.stored([VERSION, kept])
    other.stored([VERSION])
    assert consumer(record, clock).claim(kept) == StoredElsewhere()
    assert consumer(record, clock).claim(VERSION) == StoredElsewhere()
