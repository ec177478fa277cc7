"""The pings' reads of the lake (delta-rs and polars), held to the jobs view DuckDB computes over the same lake."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import flows.notify
from flows.notify import ping_new_matches
from jobping.analysis import AnalysisResult, JobAnalysis, Verdict
from jobping.contract import OUTSIDE_PRODUCER, SCRAPE_PRODUCER, JobPosting, envelope_for
from jobping.settings import Settings
from jobping.stored import to_row
from standins.servers import free_port, received, webhook_receiver
from storage.lake import Lake
from storage.maintenance import maintain
from storage.pings import PING_MARGIN, new_fitting_matches, pinged_groups, record_pings, top_matches_since
from storage.reader import reader
from tests.lakes import write_rows

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MIN_SCORE = 80
MATCH = (
    "SELECT job_group, title, company, location, fit_score, verdict, summary, boards, job_urls, first_seen FROM jobs "
    "WHERE fit_score >= ? AND verdict = 'apply' ORDER BY fit_score DESC, first_seen, job_group"
)
MATCH_FIELDS = MATCH.removeprefix("SELECT ").split(" FROM ")[0].split(", ")
TOP = "SELECT fit_score, verdict, title, company, best_job_url, job_group FROM jobs"


def posting(
    key: str, score: int, verdict: Verdict = "apply", *, group: str | None = None, analysed: datetime = T0,
    scraped: datetime = T0, producer: str | None = SCRAPE_PRODUCER, url: str | None = None,
) -> dict[str, object]:  # fmt: skip
    """A stored row of the posting ``key`` ("site:id"), in job group ``group`` (None: a row from before groups)."""
    site, _, job_id = key.partition(":")
    job = JobPosting(
        id=job_id, site=site, job_url=url or f"https://{site}.example/{job_id}", title=f"Data Engineer {job_id}",
        company="ACME", location="Berlin",
    )  # fmt: skip
    analysis = JobAnalysis(
        fit_score=score, verdict=verdict, seniority="senior", remote_policy="hybrid", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary=f"{key} fits",
    )  # fmt: skip
    result = AnalysisResult(analysis=analysis, model="m", prompt_version="p1")
    envelope = envelope_for(job, scraped, producer=producer or OUTSIDE_PRODUCER)
    row = to_row(envelope, result, analysed, f"msg-{key}-{analysed:%H%M}")
    return {**row, "job_group": group, "producer": producer}


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# each a case the jobs view decides: a group's best, its boards and links, a posting's newest analysis
CASES = [
    # one job on two boards, both scraped
    posting("indeed:1", 90, group="g1"),
    posting("linkedin:1", 85, group="g1", scraped=later(5)),
    # a stranger's better analysis is not the best of a scraped group, nor are its links shown
    posting("indeed:2", 70, "maybe", group="g2"),
    posting("board:9", 95, group="g2", producer=OUTSIDE_PRODUCER, url="https://evil.example/9"),
    # a group of a stranger's postings only
    posting("board:3", 88, group="g3", producer=OUTSIDE_PRODUCER),
    # a row stored before groups and producers were kept: a group of its own, not scraped
    posting("indeed:4", 82, producer=None),
    # analysed again: the newer analysis counts, the earlier scrape is when it was first seen
    posting("indeed:5", 95, group="g5"),
    posting("indeed:5", 50, "skip", group="g5", analysed=later(60), scraped=later(60)),
    posting("indeed:6", 40, "skip", group="g6"),
    posting("indeed:6", 91, group="g6", analysed=later(60), scraped=later(60)),
    # a tie: the posting first seen is the best
    posting("glassdoor:7", 84, group="g7", scraped=later(30)),
    posting("indeed:7", 84, group="g7", scraped=later(10)),
    # placed in another group by its newer analysis: it is that group's
    posting("indeed:8", 60, "maybe", group="g8"),
    posting("indeed:8", 83, group="g1", analysed=later(60)),
    # a stranger's newer row under a scraped job's key does not replace ours
    posting("indeed:10", 50, "skip", group="g10"),
    posting("indeed:10", 99, group="g10", analysed=later(60), producer=OUTSIDE_PRODUCER),
]


@pytest.mark.parametrize("maintained", [False, True], ids=["history-only", "after-maintenance"])
def test_new_and_top_matches_show_each_group_as_the_jobs_view_does(tmp_path: Path, maintained: bool) -> None:
    lake = Lake(tmp_path)
    write_rows(lake, CASES[:8])
    write_rows(lake, CASES[8:])
    if maintained:
        maintain(lake)
    since = later(30)
    touched = (
        f"{TOP} WHERE job_group IN (SELECT coalesce(job_group, job_key) FROM enriched_jobs WHERE analysed_at >= ?)"
    )
    with reader(lake) as con:
        expected = {score: con.execute(MATCH, [score]).fetchall() for score in (MIN_SCORE, 60)}
        top = con.execute(f"{TOP} ORDER BY fit_score DESC, job_group LIMIT 4").fetchall()
        top_since = con.execute(f"{touched} ORDER BY fit_score DESC, job_group LIMIT 10", [since]).fetchall()
    assert [m[0] for m in expected[MIN_SCORE]] == ["g6", "g1", "g3", "g7", "indeed:4"]
    for score, rows in expected.items():
        fitting, matches = new_fitting_matches(lake, score)
        # the fields the jobs view holds; the reasons and missing information are the ping's own
        assert [tuple(vars(m).values())[: len(MATCH_FIELDS)] for m in matches] == rows
        assert fitting >= len(rows)
    assert [tuple(vars(t).values()) for t in top_matches_since(lake, None, 4)] == top
    assert [tuple(vars(t).values()) for t in top_matches_since(lake, since, 10)] == top_since


def test_a_group_once_sent_is_not_sent_again_when_a_copy_comes_under_another_job_key(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write_rows(lake, [posting("indeed:1", 90, group="g1"), posting("indeed:2", 85, group="g2")])
    _, matches = new_fitting_matches(lake, MIN_SCORE)
    record_pings(lake, [m.job_group for m in matches], digest_id="d1", channel="webhook", sent_at=later(5))
    assert pinged_groups(lake) == {"g1", "g2"}

    # the same job on another board, and a better analysis: its group was sent
    write_rows(lake, [posting("linkedin:1", 95, group="g1", analysed=later(10))])
    assert new_fitting_matches(lake, MIN_SCORE) == (2, [])


def test_fitting_postings_an_earlier_run_stored_after_the_last_digest_are_sent_by_the_next(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write_rows(lake, [posting("indeed:1", 90, group="g1")])
    record_pings(lake, ["g1"], digest_id="d1", channel="webhook", sent_at=later(120))
    # a run stored these and stopped before its ping: one stamped by a clock a little behind the sender's
    behind = later(120) - PING_MARGIN + timedelta(minutes=1)
    write_rows(
        lake, [posting("indeed:2", 85, group="g2", analysed=behind), posting("indeed:3", 88, analysed=later(90))]
    )
    fitting, matches = new_fitting_matches(lake, MIN_SCORE)
    assert [m.job_group for m in matches] == ["indeed:3", "g2"]
    # the rows analysed well before the last digest are not read again
    assert fitting == 2


def test_only_an_apply_with_at_least_the_min_score_is_sent(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write_rows(
        lake,
        [
            posting("indeed:1", MIN_SCORE - 1, group="g1"),
            posting("indeed:2", MIN_SCORE, group="g2"),
            posting("indeed:3", 99, "maybe", group="g3"),
        ],
    )
    fitting, matches = new_fitting_matches(lake, MIN_SCORE)
    assert ([m.job_group for m in matches], fitting) == (["g2"], 1)


def test_an_empty_lake_has_nothing_to_send(tmp_path: Path) -> None:
    assert new_fitting_matches(Lake(tmp_path), MIN_SCORE) == (0, [])
    assert top_matches_since(Lake(tmp_path), None, 10) == []
    assert pinged_groups(Lake(tmp_path)) == set()


class Crash(BaseException):
    """The process dying where it is raised."""


def test_a_crash_between_sending_and_recording_repeats_that_digest_once_and_loses_none(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows(settings.lake_dir, [posting("indeed:1", 90, group="g1"), posting("indeed:2", 85, group="g2")])
    port = free_port()
    monkeypatch.setenv("JOBPING_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/jobping")

    def crash(*_: object, **__: object) -> None:
        raise Crash

    with webhook_receiver(tmp_path / "received.jsonl", port) as url:
        with monkeypatch.context() as patched:
            patched.setattr(flows.notify, "record_pings", crash)
            with pytest.raises(Crash):
                asyncio.run(ping_new_matches(Settings()))
        assert pinged_groups(Lake(settings.lake_dir)) == set()
        again = asyncio.run(ping_new_matches(Settings()))
        assert (again.sent, again.error) == (2, None)
        assert asyncio.run(ping_new_matches(Settings())).sent == 0
        sent = [json.loads(record["body"]) for record in received(url)]
    assert [[match["job_group"] for match in digest["matches"]] for digest in sent] == [["g1", "g2"]] * 2
    assert pinged_groups(Lake(settings.lake_dir)) == {"g1", "g2"}
