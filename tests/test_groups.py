"""Job groups while draining: past a cap, the keys the lake holds whole are forgotten, and read back when met again."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

import jobping.engine.groups
from jobping.contract import SCRAPE_PRODUCER, Envelope, encode, envelope_for, parse_message
from jobping.engine.batch import BatchHandler, CostBudget, RetryPolicy
from jobping.engine.drain import DrainOptions, drain
from jobping.engine.groups import Groups, Placement, key_of
from jobping.engine.ports import Analysed, Grouping, StoredMember
from storage.lake import Lake
from storage.store import LakeStore, group_members, open_lake
from tests.fakes import SENT, FakeAnalyser, FakeLake, FakeQueue, cross_post

# one batch at a time: a batch is written before the next is received
ONE_BATCH_AT_A_TIME = DrainOptions(receive_wait_seconds=0, concurrency=1, retry=RetryPolicy(backoff_seconds=0))
JOB = "linkedin:1"
KEY = key_of(parse_message(cross_post("linkedin", 1), SENT))


def other_job(n: int) -> str:
    """A posting of a job of its own, under a group key of its own."""
    return json.dumps({"title": "Analyst", "company": f"Firm {n}", "job_url": f"https://firms.example/{n}"})


def envelope(body: str) -> Envelope:
    return parse_message(body, SENT)


class CountingStore(LakeStore):
    """The real lake, with each group_members read's keys noted."""

    def __init__(self, lake: Lake) -> None:
        super().__init__(lake)
        self.member_reads: list[list[str]] = []

    def group_members(self, keys: Sequence[str]) -> list[StoredMember]:
        self.member_reads.append(list(keys))
        return super().group_members(keys)


@pytest.mark.parametrize(("held", "reads"), [(0, [[KEY]]), (None, [])])
def test_a_cross_post_long_after_its_job_was_written_reuses_its_analysis_held_or_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: int | None, reads: list[list[str]]
) -> None:
    if held is not None:
        monkeypatch.setattr(jobping.engine.groups, "MAX_HELD_MEMBERS", held)
    lake, analyser = open_lake(Lake(tmp_path)), FakeAnalyser()
    store, queue = CountingStore(lake), FakeQueue()
    queue.send(cross_post("linkedin", 1), *(other_job(n) for n in range(39)))
    queue.send(cross_post("glassdoor", 2, company="Wiener Würfel", location="Vienna, AT"))
    report = asyncio.run(drain(queue, store, analyser, options=ONE_BATCH_AT_A_TIME))
    assert (report.batches, report.stored, report.reused) == (5, 41, 1)
    assert analyser.calls["Data Platform Engineer (m/w/d)"] == 1
    # forgetting all it can: one read, of the one forgotten key met again, the other keys never read.
    # Under the cap (41 members), nothing is forgotten and nothing read
    assert store.member_reads == reads
    first, second = sorted(group_members(lake, [KEY]), key=lambda member: member.job_key != JOB)
    assert (first.job_key, first.analysis_of) == (JOB, None)
    assert (second.job_group, second.analysis_of) == (first.job_group, JOB)


def test_members_read_after_a_write_of_this_process_hold_that_write(tmp_path: Path) -> None:
    store = LakeStore(open_lake(Lake(tmp_path)))
    assert store.group_keys() == set()
    result = asyncio.run(FakeAnalyser().analyse(envelope(cross_post("linkedin", 1)).posting))
    written: list[str] = []
    for n, site in enumerate(("linkedin", "glassdoor"), start=1):
        posted = envelope(cross_post(site, n))
        store.write([Analysed(posted, result, datetime.now(UTC), f"m{n}", Grouping(KEY, KEY))])
        written.append(posted.job_key)
        assert sorted(member.job_key for member in store.group_members([KEY])) == sorted(written)


def test_a_member_read_back_keeps_whether_its_analysis_saw_a_description_cut_short(tmp_path: Path) -> None:
    store = LakeStore(open_lake(Lake(tmp_path)))
    posted = envelope(cross_post("linkedin", 1))
    result = asyncio.run(FakeAnalyser().analyse(posted.posting)).model_copy(update={"description_cut": True})
    store.write([Analysed(posted, result, datetime.now(UTC), "m1", Grouping(KEY, KEY))])
    (member,) = store.group_members([KEY])
    assert member.result is not None
    assert member.result.description_cut


async def placed(groups: Groups, body: str) -> Placement:
    """The posting placed as a batch of its own."""
    return (await groups.place_all([("m", envelope(body))]))["m"]


async def write(lake: FakeLake, body: str, placement: Placement, *, reused: bool) -> None:
    """Settle the posting with its analysis (its own, or the one it reuses) and write its row, as its batch does."""
    result = await placement.reusable() if reused else await FakeAnalyser().analyse(envelope(body).posting)
    assert result is not None
    lake.write([Analysed(envelope(body), result, SENT, body, placement.settle(result, reused=reused))])


def test_a_key_is_kept_while_a_member_of_it_is_in_flight_and_read_back_once_forgotten() -> None:
    lake = FakeLake()
    first_body, second_body = cross_post("linkedin", 1), cross_post("glassdoor", 2)

    async def main() -> tuple[list[str], Placement]:
        groups = Groups(lake, "p1", max_held=0)
        first = await placed(groups, first_body)
        # a cross-post in a later batch, placed before the first batch is written: it reuses the first's analysis
        second = await placed(groups, second_body)
        await write(lake, first_body, first, reused=False)
        await groups.forget([first])
        kept = list(groups.members)
        await write(lake, second_body, second, reused=True)
        await groups.forget([second])
        assert KEY not in groups.members
        return kept, await placed(groups, cross_post("indeed", 3))

    kept, third = asyncio.run(main())
    assert kept == [KEY]
    assert lake.member_reads == [[KEY]]
    assert (third.grouping.job_group, third.grouping.analysis_of) == (KEY, JOB)


def test_a_key_whose_postings_got_no_row_is_forgotten_and_not_read_again() -> None:
    lake = FakeLake()

    async def main() -> Placement:
        groups = Groups(lake, "p1", max_held=0)
        given_up = await placed(groups, cross_post("linkedin", 1))
        given_up.give_up()
        await groups.forget([given_up])
        assert KEY not in groups.members
        return await placed(groups, cross_post("glassdoor", 2))

    again = asyncio.run(main())
    assert lake.member_reads == []
    assert (again.grouping.job_group, again.grouping.analysis_of) == (KEY, None)


def test_a_batch_whose_write_failed_forgets_none_of_its_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobping.engine.groups, "MAX_HELD_MEMBERS", 0)
    queue, lake = FakeQueue(), FakeLake(write_failures=1)
    queue.send(cross_post("linkedin", 1))
    handle = BatchHandler(queue, lake, FakeAnalyser(), stored=lake.stored_versions(), budget=CostBudget(None, 4))
    with pytest.raises(OSError, match="No space left"):
        asyncio.run(handle(queue.receive(10, 0)))
    assert [known.job_key for known in handle.placing.members[KEY]] == [JOB]


class SlowLake(FakeLake):
    """A lake whose group_members read waits until the test lets it answer."""

    def __init__(self) -> None:
        super().__init__()
        self.reading, self.answer = threading.Event(), threading.Event()

    def group_members(self, keys: Sequence[str]) -> list[StoredMember]:
        self.reading.set()
        self.answer.wait(timeout=10)
        return super().group_members(keys)


class WatchedLock(asyncio.Lock):
    """A lock that says when a task has come to wait for it."""

    def __init__(self) -> None:
        super().__init__()
        self.contended = asyncio.Event()

    async def acquire(self) -> bool:
        if self.locked():
            self.contended.set()
        return await super().acquire()


def test_a_batch_meeting_a_key_another_batch_is_reading_waits_for_its_members() -> None:
    lake, earlier = SlowLake(), FakeQueue()
    earlier.send(cross_post("linkedin", 1))
    asyncio.run(drain(earlier, lake, FakeAnalyser(), options=ONE_BATCH_AT_A_TIME))

    async def main() -> Placement:
        groups, lock = Groups(lake, "p1"), WatchedLock()
        groups._changing = lock
        reading = asyncio.create_task(placed(groups, cross_post("glassdoor", 2)))
        await asyncio.to_thread(lake.reading.wait, 10)
        waiting = asyncio.create_task(placed(groups, cross_post("indeed", 3)))
        # it runs as far as it can while the other batch's read is under way: to the lock that read holds
        await asyncio.wait_for(lock.contended.wait(), timeout=10)
        lake.answer.set()
        await reading
        return await waiting

    later = asyncio.run(main())
    assert lake.member_reads == [[KEY]]
    assert (later.grouping.job_group, later.grouping.analysis_of) == (KEY, JOB)


def test_past_the_cap_the_keys_met_least_recently_are_forgotten_first() -> None:
    lake = FakeLake()
    older, newer = cross_post("linkedin", 1), other_job(1)

    async def main() -> tuple[set[str], Placement, Placement]:
        groups = Groups(lake, "p1", max_held=1)
        for body in (older, newer):
            placement = await placed(groups, body)
            await write(lake, body, placement, reused=False)
            await groups.forget([placement])
        held = set(groups.members)
        same_job_elsewhere = json.dumps(
            {"title": "Analyst", "company": "Firm 1", "job_url": "https://elsewhere.example/1"}
        )
        again_newer = await placed(groups, same_job_elsewhere)
        return held, again_newer, await placed(groups, cross_post("glassdoor", 2))

    held, again_newer, again_older = asyncio.run(main())
    newer_key = key_of(envelope(newer))
    assert held == {newer_key}
    assert again_newer.grouping.group_key == newer_key
    # the newer key was held: met again, it is not read; the older was forgotten and is read back
    assert lake.member_reads == [[KEY]]
    assert (again_older.grouping.job_group, again_older.grouping.analysis_of) == (KEY, JOB)


def test_a_settled_key_met_again_is_not_forgotten_while_its_new_member_is_pending() -> None:
    lake = FakeLake()

    async def main() -> tuple[list[str], list[str]]:
        groups = Groups(lake, "p1", max_held=1)
        first = await placed(groups, cross_post("linkedin", 1))
        await write(lake, cross_post("linkedin", 1), first, reused=False)
        await groups.forget([first])
        # met again: its cross-post waits for no write yet
        await placed(groups, cross_post("glassdoor", 2))
        other = await placed(groups, other_job(1))
        await write(lake, other_job(1), other, reused=False)
        await groups.forget([other])
        return list(groups.members), [known.job_key for known in groups.members.get(KEY, [])]

    held, members = asyncio.run(main())
    assert held == [KEY]
    assert members == [JOB, "glassdoor:2"]


def scraped_body(body: str) -> str:
    """The posting as our scrape flow sends it: an envelope marked with its producer."""
    return encode(envelope_for(envelope(body).posting, SENT, producer=SCRAPE_PRODUCER))


@pytest.mark.parametrize(
    ("first_scraped", "reuses"),
    [pytest.param(True, True, id="scraped-member-lends"), pytest.param(False, False, id="outside-member-does-not")],
)
def test_a_member_read_back_from_the_lake_lends_to_a_scraped_posting_only_when_our_scrape_sent_it(
    tmp_path: Path, first_scraped: bool, reuses: bool
) -> None:
    store = LakeStore(open_lake(Lake(tmp_path)))
    first = cross_post("linkedin", 1)
    first = scraped_body(first) if first_scraped else first
    result = asyncio.run(FakeAnalyser().analyse(envelope(first).posting))
    store.write([Analysed(envelope(first), result, SENT, "m1", Grouping(KEY, KEY))])

    async def main() -> Placement:
        return await placed(Groups(store, result.prompt_version), scraped_body(cross_post("glassdoor", 2)))

    (member,) = store.group_members([KEY])
    assert member.scraped is first_scraped
    second = asyncio.run(main())
    assert (second.grouping.job_group, second.grouping.analysis_of) == (KEY, JOB if reuses else None)
