"""Board health: the streak rule, the scrape_runs table read through the board_health view, `jobping boards`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from app.cli import app
from jobping.board_health import Status, streak, turn
from jobping.redaction import redact
from jobping.settings import Settings
from storage.catalog import refresh_catalog
from storage.lake import DELTA, Lake, load_extension
from storage.maintenance import maintain
from storage.reader import read_board_health, reader
from storage.scrape_runs import SearchRun, board_runs, record_scrape_runs
from storage.sql import run_read_only
from tasks.jobspy.proxies import load_proxies
from tests.lakes import write_rows
from tests.test_storage import row

pytestmark = pytest.mark.timeout(120)

NIGHT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("newest_first", "expected"),
    [
        pytest.param(["failed", "empty"], None, id="streak-below-threshold"),
        pytest.param(["failed", "empty", "failed"], "alert", id="streak-reaches-threshold"),
        pytest.param(["empty", "empty", "empty", "ok"], "alert", id="empty-runs-count"),
        pytest.param(["failed", "failed", "failed", "failed"], None, id="fourth-run-of-a-streak-is-quiet"),
        pytest.param(["ok", "failed", "failed", "failed"], "recovered", id="answers-after-an-alerted-streak"),
        pytest.param(["ok", "failed", "failed", "ok"], None, id="answers-after-a-short-streak"),
        pytest.param(["ok", "ok"], None, id="healthy"),
        pytest.param([], None, id="never-ran"),
    ],
)
def test_a_board_brings_one_alert_when_its_streak_reaches_the_threshold_and_one_when_it_recovers(
    newest_first: list[Status], expected: str | None
) -> None:
    assert turn(newest_first, 3) == expected


def run(night: int, board: str, found: int, error: str | None = None, term: str = "data engineer") -> SearchRun:
    status: Status = "ok" if found else ("failed" if error else "empty")
    return SearchRun(
        f"run-{night}", NIGHT + timedelta(days=night), board, term, "Berlin", found, found // 2,
        found // 4, error, 1.5, status,
    )  # fmt: skip


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "data" / "lake")
    nights = [
        [run(0, "indeed", 8), run(0, "glassdoor", 4)],
        [run(1, "indeed", 8), run(1, "glassdoor", 0, "403 Forbidden")],
        # one search failed and one found postings: the board answered that night
        [run(2, "indeed", 0, "429 blocked"), run(2, "indeed", 6, term="analyst"), run(2, "glassdoor", 0)],
        [run(3, "indeed", 8), run(3, "glassdoor", 0, "429 Too Many Requests: blocked")],
    ]
    for rows in nights:
        record_scrape_runs(lake, rows)
    return lake


def test_board_health_shows_each_board_s_streak_last_status_error_and_success_from_the_delta_table(lake: Lake) -> None:
    health = read_board_health(lake)
    assert health is not None
    rows = {row[0]: dict(zip(health.columns, row, strict=True)) for row in health.rows}
    assert [row[0] for row in health.rows] == ["glassdoor", "indeed"]
    glassdoor, indeed = rows["glassdoor"], rows["indeed"]
    assert glassdoor["streak"] == 3
    assert glassdoor["last_status"] == "failed"
    assert glassdoor["last_error"] == "429 Too Many Requests: blocked"
    assert glassdoor["last_success"] == NIGHT
    assert glassdoor["last_runs"] == ["failed", "empty", "failed", "ok"]
    assert glassdoor["found_last_run"] == 0
    assert glassdoor["share_without_description"] is None
    assert indeed["streak"] == 0
    assert indeed["last_runs"] == ["ok", "ok", "ok", "ok"]
    assert indeed["last_error"] == "429 blocked"
    assert indeed["found_last_run"] == 8
    assert indeed["share_without_description"] == 0.25
    assert indeed["runs"] == 4


def test_the_alerts_read_the_same_streaks_the_view_shows(lake: Lake) -> None:
    health = read_board_health(lake)
    assert health is not None
    shown = {row[0]: row[health.columns.index("streak")] for row in health.rows}
    read = {b.board: streak(b.statuses) for b in board_runs(lake, ["glassdoor", "indeed"])}
    assert read == shown == {"glassdoor": 3, "indeed": 0}
    assert board_runs(lake, ["glassdoor"])[0].last_error == "429 Too Many Requests: blocked"


def test_jobping_boards_prints_the_view_and_its_json(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_DATA_DIR", str(tmp_path / "data"))
    shown = CliRunner().invoke(app, ["boards"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "glassdoor" in shown.output
    assert "ok ok ok ok" in shown.output
    assert "2026-12-04 02:00" in shown.output
    as_json = CliRunner().invoke(app, ["boards", "--json"])
    assert as_json.exit_code == 0, as_json.output
    objects = json.loads(as_json.stdout)
    assert [(o["board"], o["streak"]) for o in objects] == [("glassdoor", 3), ("indeed", 0)]


def test_jobping_boards_says_so_when_no_scrape_has_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPING_DATA_DIR", str(tmp_path / "data"))
    shown = CliRunner().invoke(app, ["boards"])
    assert shown.exit_code == 0, shown.output
    assert "no scrape has recorded its boards yet" in shown.output


def test_the_catalog_file_and_jobping_sql_show_board_health_and_an_empty_view_before_any_scrape(
    tmp_path: Path, lake: Lake
) -> None:
    bare = tmp_path / "bare"
    write_rows(bare, [row("1", 40)])
    with reader(bare) as con:
        assert con.execute("SELECT count(*) FROM board_health").fetchall() == [(0,)]

    write_rows(lake, [row("1", 40)])
    catalog = tmp_path / "jobping.duckdb"
    assert refresh_catalog(catalog, lake) is True
    with duckdb.connect(str(catalog), read_only=True) as con:
        load_extension(con, DELTA)
        shown = con.execute("SELECT board, streak, last_status FROM board_health ORDER BY board").fetchall()
    assert shown == [("glassdoor", 3, "failed"), ("indeed", 0, "ok")]
    with reader(lake) as con:
        query = "SELECT board, streak FROM board_health ORDER BY streak DESC, board"
        assert run_read_only(con, query).rows == [("glassdoor", 3), ("indeed", 0)]


def test_a_board_error_naming_a_proxy_is_recorded_without_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES", "bob:hunter22@proxy.example:8080, 10.0.0.1:3128")
    said = "ProxyError: Cannot connect to proxy http://bob:hunter22@proxy.example:8080 or 10.0.0.1:3128"
    kept = redact(said, load_proxies(Settings().scrape).secrets())
    assert "hunter22" not in kept
    assert "bob" not in kept
    assert kept.startswith("ProxyError: Cannot connect to proxy")


def test_maintenance_compacts_the_scrape_s_log_into_one_file_and_the_view_shows_the_same(lake: Lake) -> None:
    before = board_runs(lake, ["indeed", "glassdoor"])
    table = DeltaTable(lake.scrape_runs_uri)
    assert len(table.file_uris()) == 4  # one small file a scrape
    # before any analysis: a lake with no history still has its scrapes' log maintained
    assert maintain(lake, retention=timedelta(0)) is None
    assert len(DeltaTable(lake.scrape_runs_uri).file_uris()) == 1
    assert board_runs(lake, ["indeed", "glassdoor"]) == before
