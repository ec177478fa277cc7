"""The analyse engine's rules against in-memory fakes: no Prefect, no processes, milliseconds each."""

from __future__ import annotations

import asyncio

import pytest

from jobping.engine.batch import RetryPolicy
from jobping.engine.drain import AnalyseReport, DrainOptions, Limits, drain
from jobping.engine.ports import StoredVersion
from jobping.errors import ConfigurationError
from tests.fakes import FakeAnalyser, FakeLake, FakeQueue, MemoryAnswers, cross_post, posting

FAST = DrainOptions(receive_wait_seconds=0, concurrency=4, retry=RetryPolicy(attempts=3, backoff_seconds=0))


def run(
    queue: FakeQueue,
    lake: FakeLake | None = None,
    analyser: FakeAnalyser | None = None,
    *,
    limits: Limits | None = None,
    options: DrainOptions = FAST,
    answers: MemoryAnswers | None = None,
) -> AnalyseReport:
    report = asyncio.run(
        drain(queue, lake or FakeLake(), analyser or FakeAnalyser(), limits=limits, options=options, answers=answers)
    )
    assert report.balanced, report.line()
    return report


def test_good_postings_are_stored_then_deleted_and_the_counts_add_up() -> None:
    queue, lake = FakeQueue(), FakeLake()
    queue.send(*(posting(n) for n in range(25)))
    report = run(queue, lake)
    assert (report.received, report.stored, report.batches) == (25, 25, 3)
    assert len(lake.rows) == 25
    assert len(queue.deleted) == 25
    assert not queue.in_flight
    assert report.cost_usd == pytest.approx(0.25)
    assert report.stopped_by == "empty queue"


def test_nothing_is_deleted_or_dead_lettered_when_the_write_fails() -> None:
    queue, lake = FakeQueue(), FakeLake(write_failures=99)
    queue.send(posting(1), posting(2), "not json")
    report = run(queue, lake)
    assert isinstance(report.failure, OSError)
    assert (report.received, report.left_for_retry, report.stored) == (3, 3, 0)
    assert queue.deleted == []
    assert queue.dlq == []
    assert len(queue.in_flight) == 3  # they come back when their visibility ends


def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_stored() -> None:
    queue, lake = FakeQueue(), FakeLake()
    huge = '{"title": "t", "job_url": "https://x.example/1", "min_amount": ' + "9" * 5_000 + "}"
    queue.send(posting(1), "not json", huge, posting(2, "FAIL"), posting(3, "REJECT"))
    report = run(queue, lake)
    assert (report.stored, report.dead_lettered) == (1, 4)
    reasons = dict(queue.dlq)
    assert "not JSON" in reasons["not json"]
    assert "not JSON" in reasons[huge]
    assert "analysis raised ValueError: salary 187,200,000" in reasons[posting(2, "FAIL")]
    assert "the model refused" in reasons[posting(3, "REJECT")]
    assert len(queue.deleted) == 5


def test_what_is_already_stored_is_skipped_and_deleted_without_an_analysis() -> None:
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(posting(1))
    run(queue, lake, analyser)
    queue.send(posting(1), posting(1))
    report = run(queue, lake, analyser)
    assert (report.stored, report.skipped) == (0, 2)
    assert sum(analyser.calls.values()) == 1
    assert len(queue.deleted) == 3


def test_the_same_posting_in_two_batches_of_one_run_is_analysed_once() -> None:
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser(slow_seconds=0.05)
    queue.send(*(posting(n, "SLOW") for n in range(10)), *(posting(n, "SLOW") for n in range(10)))
    report = run(queue, lake, analyser)
    assert (report.stored, report.skipped) == (10, 10)
    assert set(analyser.calls.values()) == {1}


def test_a_passing_failure_is_retried_in_its_batch_until_stored() -> None:
    queue, analyser = FakeQueue(), FakeAnalyser(flaky_failures=2)
    queue.send(posting(1, "FLAKY"), posting(2))
    report = run(queue, analyser=analyser)
    assert report.stored == 2
    assert analyser.calls["FLAKY 1"] == 3


def test_a_lasting_outage_leaves_the_messages_on_the_queue_and_stops_receiving() -> None:
    queue = FakeQueue()
    queue.send(*(posting(n, "DOWN") for n in range(30)))
    report = run(queue, options=DrainOptions(receive_wait_seconds=0, concurrency=1, retry=FAST.retry))
    assert report.stopped_by == "the LLM being unavailable"
    assert report.stored == report.dead_lettered == 0
    assert report.left_for_retry == report.received < 30
    assert queue.deleted == queue.released == []
    assert len(queue.in_flight) == report.received
    assert len(queue.visible) == 30 - report.received


def test_a_rejected_key_keeps_the_message_sends_nothing_to_the_dlq_and_fails_the_run() -> None:
    queue = FakeQueue()
    queue.send(posting(1), posting(2, "KEY"))
    report = run(queue)
    assert isinstance(report.failure, ConfigurationError)
    assert (report.stored, report.left_for_retry, report.dead_lettered) == (1, 1, 0)
    assert queue.dlq == []
    assert "m2" in queue.in_flight


def test_a_dlq_that_cannot_be_reached_leaves_the_poison_on_the_queue_and_finishes_the_rest() -> None:
    queue = FakeQueue(dlq_down=True)
    queue.send(posting(1), posting(2), "not json")
    report = run(queue)
    assert report.failure is None
    assert (report.stored, report.left_for_retry) == (2, 1)
    assert "could not be dead-lettered" in report.retry_reasons[0]
    assert sorted(queue.deleted) == ["m1", "m2"]
    assert "m3" in queue.in_flight


def test_a_cost_budget_stops_sending_and_releases_the_rest_at_once() -> None:
    queue, analyser = FakeQueue(), FakeAnalyser(cost_usd=1.0)
    queue.send(*(posting(n) for n in range(10)))
    options = DrainOptions(receive_wait_seconds=0, concurrency=1, retry=FAST.retry)
    report = run(queue, analyser=analyser, limits=Limits(max_cost_usd=2.5), options=options)
    assert report.stored == 3
    assert report.stopped_by.startswith("max_cost_usd")
    assert len(queue.released) == report.left_for_retry == 7
    assert len(queue.visible) == 7


def test_max_jobs_receives_no_more_than_that() -> None:
    queue = FakeQueue()
    queue.send(*(posting(n) for n in range(30)))
    report = run(queue, limits=Limits(max_jobs=12))
    assert report.received == 12
    assert report.stopped_by == "max_jobs 12"
    assert len(queue.visible) == 18


def test_a_paid_answer_kept_from_a_crashed_run_is_stored_without_asking_again() -> None:
    queue, analyser, answers = FakeQueue(), FakeAnalyser(), MemoryAnswers()
    queue.send(posting(1))
    crashed = FakeLake(write_failures=1)
    run(queue, crashed, analyser, answers=answers)  # paid, then the write failed
    assert len(answers.answers) == 1
    queue.visible.extend(queue.in_flight.values())  # their visibility ends
    queue.in_flight.clear()
    report = run(queue, crashed, analyser, answers=answers)
    assert report.stored == 1
    assert sum(analyser.calls.values()) == 1


def test_the_heartbeat_keeps_slow_batches_invisible() -> None:
    queue, analyser = FakeQueue(), FakeAnalyser(slow_seconds=1.2)
    queue.send(posting(1, "SLOW"), posting(2, "SLOW"))
    options = DrainOptions(receive_wait_seconds=0, visibility_timeout_seconds=1, retry=FAST.retry)
    report = run(queue, analyser=analyser, options=options)
    assert report.stored == 2
    # how often it beat in 1.2 s depends on the scheduler: once at least
    assert queue.extended["m1"] >= 1


def test_a_receive_that_fails_still_lets_the_running_batches_settle_and_count() -> None:
    queue = FakeQueue(receive_error=ConnectionError("the queue went away"))
    queue.send(*(posting(n) for n in range(10)))
    report = run(queue)
    assert isinstance(report.failure, ConnectionError)
    assert (report.received, report.stored) == (10, 10)
    assert len(queue.deleted) == 10


def test_top_matches_are_typed_and_sorted_best_first() -> None:
    queue = FakeQueue()
    queue.send(*(posting(n) for n in range(12)))
    report = run(queue)
    assert len(report.top) == 10
    assert all(match.fit_score == 70 and match.job_url.startswith("https://") for match in report.top)


def test_a_stored_version_is_its_job_content_and_prompt() -> None:
    queue, lake = FakeQueue(), FakeLake()
    queue.send(posting(1))
    run(queue, lake)
    (version,) = lake.versions
    assert isinstance(version, StoredVersion)
    assert version.prompt_version == "p1"
    assert version.job_key == lake.rows[0].envelope.job_key


def test_the_same_job_on_two_boards_is_analysed_once_and_shares_one_group() -> None:
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(cross_post("linkedin", 1), cross_post("glassdoor", 2, company="Wiener Würfel", location="Vienna, AT"))
    report = run(queue, lake, analyser)
    assert (report.stored, report.reused) == (2, 1)
    assert sum(analyser.calls.values()) == 1
    first, second = lake.rows
    assert first.grouping is not None
    assert second.grouping is not None
    assert first.grouping.job_group == second.grouping.job_group
    assert (first.grouping.analysis_of, second.grouping.analysis_of) == (None, first.envelope.job_key)
    assert (second.result.prompt_tokens, second.result.cost_usd) == (0, 0.0)
    assert second.result.analysis == first.result.analysis
    assert report.cost_usd == pytest.approx(0.01)
    assert len(report.top) == 1, "a job shows once among the top matches"


def test_a_cross_post_on_a_later_night_reuses_the_analysis_already_stored() -> None:
    lake, analyser = FakeLake(), FakeAnalyser()
    first = FakeQueue()
    first.send(cross_post("linkedin", 1))
    run(first, lake, analyser)
    later = FakeQueue()
    later.send(cross_post("indeed", 3, location="Vienna, Austria"))
    report = run(later, lake, analyser)
    assert report.reused == 1
    assert sum(analyser.calls.values()) == 1
    assert lake.rows[1].grouping is not None
    assert lake.rows[1].grouping.analysis_of == lake.rows[0].envelope.job_key


def test_the_same_title_at_the_same_company_in_another_city_is_another_job() -> None:
    queue, lake, analyser = FakeQueue(), FakeLake(), FakeAnalyser()
    queue.send(cross_post("linkedin", 1), cross_post("linkedin", 2, location="Graz, Austria"))
    report = run(queue, lake, analyser)
    assert report.reused == 0
    assert sum(analyser.calls.values()) == 2
    assert len({row.grouping.job_group for row in lake.rows if row.grouping is not None}) == 2


def test_an_analysis_under_another_prompt_is_not_reused_though_the_group_is_kept() -> None:
    lake = FakeLake()
    first = FakeQueue()
    first.send(cross_post("linkedin", 1))
    run(first, lake, FakeAnalyser(prompt_version="p1"))
    later, analyser = FakeQueue(), FakeAnalyser(prompt_version="p2")
    later.send(cross_post("glassdoor", 2))
    report = run(later, lake, analyser)
    assert (report.reused, sum(analyser.calls.values())) == (0, 1)
    groups = [row.grouping.job_group for row in lake.rows if row.grouping is not None]
    assert len(groups) == 2
    assert groups[0] == groups[1]


def test_two_processes_that_do_not_see_each_other_give_one_job_the_same_group() -> None:
    apart = []
    for site, n in (("linkedin", 1), ("glassdoor", 2)):
        queue, lake = FakeQueue(), FakeLake()
        queue.send(cross_post(site, n))
        run(queue, lake)
        assert lake.rows[0].grouping is not None
        apart.append(lake.rows[0].grouping.job_group)
    assert apart[0] == apart[1]
