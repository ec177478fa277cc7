"""The jobping command as a user runs it: a real process, its own data dir and emulator port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from standins.servers import free_port
from tasks.jobspy.source import _sample_records
from tests.lakes import write_rows
from tests.test_storage import row

JOBPING = shutil.which("jobping", path=str(Path(sys.executable).parent)) or "jobping"
DEMO_TIMEOUT_SECONDS = 300


def run(env: dict[str, str], *args: str, timeout: float = DEMO_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBPING, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def user_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user's environment with its own data dir and ports; what its commands started is stopped after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_"))}
    env |= {
        "JOBPING_DATA_DIR": str(tmp_path / "data"),
        "JOBPING_EMULATOR_PORT": str(free_port()),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "COLUMNS": "200",
    }
    yield env
    run(env, "stack", "down", timeout=60)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# two demos (DEMO_TIMEOUT_SECONDS each): measured 282 s on a machine 40 to 70 processes deep for its 2 cores
@pytest.mark.timeout(900)
def test_demo_twice_stores_the_sample_once_and_stops_its_emulator(user_env: dict[str, str], tmp_path: Path) -> None:
    distinct = len({(r["site"], r["id"] or r["job_url"]) for r in _sample_records()})
    first = run(user_env, "demo")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"{distinct} published" in first.stdout
    assert f"stored {distinct}" in first.stdout
    assert "top matches" in first.stdout
    # the sample's boards, recorded by the scrape in scrape_runs: each answered
    assert "board health" in first.stdout
    assert "google" in first.stdout.split("board health", 1)[1]
    # the sample's 32 jobs posted on two boards: each analysed once, and shown once
    assert "job groups: 32 postings of a job already analysed on another board reused its analysis" in first.stdout
    assert not port_open(int(user_env["JOBPING_EMULATOR_PORT"]))
    shown = run(user_env, "sql", "SELECT count(*), count(DISTINCT job_group), count(*) FILTER (postings = 2) FROM jobs")
    assert shown.returncode == 0, shown.stderr
    assert f"│ {distinct - 32} " in shown.stdout
    assert shown.stdout.count(f" {distinct - 32} ") == 2
    assert "│ 32 " in shown.stdout

    second = run(user_env, "demo")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 published" in second.stdout
    assert f"{distinct} already stored" in second.stdout
    # the one sightings message (every posting seen again, for last_seen): recorded, nothing analysed
    assert "received 1 = stored 0 + skipped 0 + seen 1 + DLQ 0" in second.stdout

    counted = run(user_env, "sql", "SELECT count(*) AS n, count(DISTINCT job_key) AS k FROM enriched_jobs_history")
    assert counted.returncode == 0, counted.stderr
    assert f"{distinct} " in counted.stdout.split("\n", 3)[-1]

    compacted = run(user_env, "compact", "--retain-hours", "0")
    assert compacted.returncode == 0, compacted.stderr[-3000:]
    assert "into the latest table" in compacted.stdout
    assert f"({distinct} jobs updated)" in compacted.stdout
    after = run(user_env, "sql", "SELECT count(*) AS n, count(DISTINCT job_key) AS k FROM enriched_jobs")
    assert after.returncode == 0, after.stderr
    assert f"{distinct} " in after.stdout.split("\n", 3)[-1]


def test_sql_explains_an_empty_lake_and_refuses_writes(user_env: dict[str, str]) -> None:
    empty = run(user_env, "sql", "SELECT 1", timeout=60)
    assert empty.returncode == 1
    assert "no enriched jobs yet" in empty.stderr
    assert run(user_env, "sql", timeout=60).returncode == 2
    listed = run(user_env, "sql", "--list", timeout=60)
    assert "top_matches" in listed.stdout


def test_the_emulator_keeps_running_between_commands_until_stopped(user_env: dict[str, str]) -> None:
    port = int(user_env["JOBPING_EMULATOR_PORT"])
    try:
        started = run(user_env, "emulator", "start", timeout=60)
        assert started.returncode == 0, started.stderr
        assert "memory only" in started.stderr
        assert port_open(port)
        ensured = run(user_env, "queues", "ensure", timeout=60)
        assert ensured.returncode == 0, ensured.stderr
        assert "maxReceiveCount" in ensured.stdout  # the whole redrive policy, not cut
        shown = run(user_env, "queues", timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "jobping-jobs-to-filter-dlq" in shown.stdout
        assert run(user_env, "emulator", "status", timeout=60).returncode == 0
    finally:
        stopped = run(user_env, "emulator", "stop", timeout=60)
    assert "emulator stopped" in stopped.stdout
    assert not port_open(port)
    assert run(user_env, "emulator", "status", timeout=60).returncode == 3


def queue_attributes(port: int) -> dict[str, dict[str, str]]:
    sqs = boto3.client(
        "sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    urls = sqs.list_queues()["QueueUrls"]
    return {url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in urls}


def test_read_only_commands_start_nothing_and_change_no_queue_attribute(user_env: dict[str, str]) -> None:
    port = int(user_env["JOBPING_EMULATOR_PORT"])
    for command in (["queues"], ["dlq", "list"]):
        shown = run(user_env, *command, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "emulator is not running" in shown.stderr
        assert not port_open(port)
    try:
        assert run(user_env, "queues", "ensure", timeout=60).returncode == 0
        before = queue_attributes(port)
        # settings that differ from the queues': a command that converged would apply them
        other = user_env | {"JOBPING_VISIBILITY_TIMEOUT_SECONDS": "7"}
        for command in (["queues"], ["dlq", "list"], ["emulator", "status"]):
            done = run(other, *command, timeout=60)
            assert done.returncode == 0, done.stderr
        assert queue_attributes(port) == before
    finally:
        run(user_env, "emulator", "stop", timeout=60)


def test_emulator_stop_signals_only_jobping_s_emulator_on_the_configured_port(user_env: dict[str, str]) -> None:
    port = int(user_env["JOBPING_EMULATOR_PORT"])
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        assert run(user_env, "emulator", "start", timeout=60).returncode == 0
        elsewhere = user_env | {"JOBPING_EMULATOR_PORT": str(free_port())}
        other_port = run(elsewhere, "emulator", "stop", timeout=60)
        assert "no emulator of ours was running" in other_port.stdout
        assert port_open(port)
        assert run(elsewhere, "emulator", "status", timeout=60).returncode == 3
        # a pid file left by a crash that names a process which is not the emulator
        stale = Path(user_env["JOBPING_DATA_DIR"]) / "run" / f"emulator-{elsewhere['JOBPING_EMULATOR_PORT']}.pid"
        stale.write_text(str(bystander.pid), encoding="ascii")
        run(elsewhere, "emulator", "stop", timeout=60)
        assert bystander.poll() is None
    finally:
        run(user_env, "emulator", "stop", timeout=60)
        bystander.kill()
    assert not port_open(port)


def test_bad_settings_and_bad_input_get_a_clear_error(user_env: dict[str, str]) -> None:
    bad = run(user_env | {"JOBPING_SQS_ENDPOINT_URL": "localhost:4566"}, "queues", timeout=60)
    assert bad.returncode == 2
    assert "JOBPING_SQS_ENDPOINT_URL" in bad.stderr.upper() or "sqs_endpoint_url" in bad.stderr
    wrong_site = run(user_env, "scrape", "--site", "myspace", timeout=60)
    assert wrong_site.returncode == 2
    assert "myspace" in wrong_site.stderr
    globbed = run(user_env | {"JOBPING_DATA_DIR": user_env["JOBPING_DATA_DIR"] + "[1]"}, "sql", "SELECT 1", timeout=60)
    assert globbed.returncode == 2
    assert "glob characters" in globbed.stderr
    not_s3 = run(user_env | {"JOBPING_LAKE_URL": "ftp://bucket/lake"}, "sql", "SELECT 1", timeout=60)
    assert not_s3.returncode == 2
    assert "s3://bucket/prefix" in not_s3.stderr
    # a field whose alias is the variable is named as it is set
    assert "JOBPING_LAKE_URL: " in not_s3.stderr
    assert "JOBPING_JOBPING_" not in not_s3.stderr
    zero = run(user_env, "scrape", "--results", "0", timeout=60)
    assert zero.returncode == 2
    assert "results_wanted" in zero.stderr
    too_high = run(user_env | {"JOBPING_NOTIFY_MIN_SCORE": "200"}, "notify", "--dry-run", timeout=60)
    assert too_high.returncode == 2
    assert "JOBPING_NOTIFY_MIN_SCORE: Input should be less than or equal to 100" in too_high.stderr


def test_expected_failures_end_in_one_error_line_without_a_traceback(user_env: dict[str, str], tmp_path: Path) -> None:
    broken_profile = tmp_path / "profile.toml"
    broken_profile.write_text("skills = [1, ", encoding="utf-8")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")
    cases = {
        "bad settings": ({"JOBPING_VISIBILITY_TIMEOUT_SECONDS": "soon"}, "JOBPING_VISIBILITY_TIMEOUT_SECONDS"),
        "bad profile": ({"JOBPING_PROFILE_PATH": str(broken_profile)}, "not valid TOML"),
        "sqs unreachable": ({"JOBPING_SQS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}, "does not answer"),
        "prefect unreachable": ({"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}, "PREFECT_API_URL"),
        "lake not writable": ({"JOBPING_DATA_DIR": str(not_a_folder)}, "not writable"),
    }
    for name, (changes, says) in cases.items():
        done = run(user_env | changes, "analyse", timeout=60)
        assert done.returncode != 0, name
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (name, done.stderr)
        assert lines[0].startswith("error:"), (name, done.stderr)
        assert says in lines[0], (name, done.stderr)


def test_help_lists_every_command() -> None:
    shown = subprocess.run(
        [JOBPING, "--help"], capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"}
    )
    for command in ("scrape", "analyse", "queues", "emulator", "sql", "boards", "demo", "compact"):
        assert command in shown.stdout


# the real jobping command in its own process, with JobSpy's network scrapers replaced
OFFLINE_BOARDS_CLI = """
import sys
from jobspy.model import Site
from tests.jobspy_boards import BlockedBoard, RaisingBoard, install
install({Site.GLASSDOOR: RaisingBoard, Site.ZIP_RECRUITER: BlockedBoard})
from app.cli import main
main(sys.argv[1:])
"""


def test_a_live_scrape_where_every_board_fails_prints_the_site_table_then_one_error(
    user_env: dict[str, str],
) -> None:
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            OFFLINE_BOARDS_CLI,
            "scrape",
            "--source",
            "jobspy",
            "-s",
            "glassdoor",
            "-s",
            "zip_recruiter",
        ],
        env=user_env | {"JOBPING_SCRAPE_RETRY_SECONDS": "0"},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    table = done.stdout
    assert "connection reset by peer" in table
    assert "429 Too Many Requests" in table
    assert [line.split("│")[1].strip() for line in table.splitlines() if "failed:" in line] == [
        "glassdoor",
        "zip_recruiter",
    ]
    assert "error: every site failed: glassdoor, zip_recruiter" in done.stderr
    assert "{'" not in table + done.stderr
    assert "Traceback" not in done.stderr


def test_posting_text_with_markup_and_escapes_is_shown_as_text_in_sql_and_dlq_list(user_env: dict[str, str]) -> None:
    hostile = "Engineer [/x] [bold]\x1b[31mred\x1b[0m"
    rows = [row("1", 80) | {"title": hostile, "site": "board[/x]"}]
    write_rows(Path(user_env["JOBPING_DATA_DIR"]) / "lake", rows)
    shown = run(user_env, "sql", "--saved", "by_site", timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "board[/x]" in shown.stdout
    titles = run(user_env, "sql", "SELECT title FROM enriched_jobs", timeout=60)
    assert titles.returncode == 0, titles.stderr
    assert "Engineer [/x] [bold]" in titles.stdout
    assert "\x1b" not in titles.stdout
    port = int(user_env["JOBPING_EMULATOR_PORT"])
    try:
        assert run(user_env, "queues", "ensure", timeout=60).returncode == 0
        urls = queue_attributes(port)
        dlq = next(url for url in urls if url.endswith("-dlq"))

        sqs = boto3.client(
            "sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        reason = {"jobping-dlq-reason": {"DataType": "String", "StringValue": "bad [/x] \x1b[2J"}}
        for body in (json.dumps({"title": hostile, "site": "[/x]"}), "[" * 5_000 + "]" * 5_000):
            sqs.send_message(QueueUrl=dlq, MessageBody=body, MessageAttributes=reason)
        listed = run(user_env, "dlq", "list", timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "2 in" in listed.stdout
        assert "bad [/x]" in listed.stdout
        assert "\x1b" not in listed.stdout
    finally:
        run(user_env, "emulator", "stop", timeout=60)
