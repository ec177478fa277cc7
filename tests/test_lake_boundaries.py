"""The lake's logs are untrusted: a path that leaves its table moves and reads nothing, a lost file stops no run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import polars as pl
import pytest

from flows.analyse import analyse
from jobping.contract import JobPosting, envelope_for
from jobping.settings import Settings
from storage.damage import READ_ERRORS, LakeDamagedError, find_damage
from storage.delta import DeltaHistory
from storage.lake import Lake
from storage.maintenance import maintain
from storage.reader import reader
from storage.repair import MAX_QUARANTINED_PER_OPEN, REPAIR_RECORD, quarantining, repair_unread
from storage.rows import PARTITION
from storage.store import stored_versions
from storage.views import HISTORY_VIEW
from tasks.sqs.queues import Queues
from tests.lakes import write_rows
from tests.test_storage import SCRAPED, row

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

JOBPING = str(Path(sys.executable).parent / "jobping")
CLI_TIMEOUT_SECONDS = 120
PRECIOUS = b"not parquet: a file of the user's that no lake command may move"


def forge_adds(lake: Lake, paths: list[str]) -> None:
    """Append a commit of ``add`` actions for ``paths`` to the history's log, as anyone able to write the lake could."""
    log = Path(lake.history_uri) / "_delta_log"
    version = max(int(p.stem) for p in log.glob("*.json")) + 1
    now = int(time.time() * 1000)
    added = {"partitionValues": {PARTITION: "2026-11-26"}, "size": 100, "modificationTime": now, "dataChange": True}
    adds = [{"add": {"path": p, **added}} for p in paths]
    actions = [{"commitInfo": {"timestamp": now, "operation": "WRITE"}}, *adds]
    (log / f"{version:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions), encoding="utf-8")


def repairs(lake: Lake) -> list[dict[str, str]]:
    """Every path the history's repair commits dropped, with why."""
    return [item for commit in DeltaHistory(lake).table().history() for item in commit.get(REPAIR_RECORD, [])]


def job_ids(lake: Lake) -> list[str]:
    with reader(lake) as con:
        return sorted(str(r[0]) for r in con.execute(f"SELECT job_id FROM {HISTORY_VIEW}").fetchall())


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the lake, beside the data dir, that is not Parquet."""
    where = tmp_path / "victim" / "data.parquet"
    where.parent.mkdir()
    where.write_bytes(PRECIOUS)
    return where


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "data" / "lake")
    write_rows(lake, [row("1", 80)])
    write_rows(lake, [row("2", 60)])
    return lake


def forged_paths(lake: Lake, victim: Path) -> dict[str, str]:
    table = Path(lake.history_uri)
    os.symlink(victim.parent, table / "link")
    return {
        "dot-dot": os.path.relpath(victim, table),
        "encoded dot-dot": os.path.relpath(victim, table).replace("..", "%2E%2E"),
        "absolute path": str(victim),
        "file uri": victim.as_uri(),
        "symlink out": "link/data.parquet",
        "the log": "_delta_log/00000000000000000000.json",
    }


@pytest.mark.parametrize("kind", ["dot-dot", "encoded dot-dot", "absolute path", "file uri", "symlink out", "the log"])
def test_a_forged_add_path_leaving_its_table_moves_nothing_and_is_dropped_by_a_repair_commit(
    lake: Lake, victim: Path, kind: str
) -> None:
    forged = forged_paths(lake, victim)[kind]
    log_file = Path(lake.history_uri) / "_delta_log" / "00000000000000000000.json"
    log_bytes = log_file.read_bytes()
    forge_adds(lake, [forged])
    assert job_ids(lake) == ["1", "2"]
    assert victim.read_bytes() == PRECIOUS
    assert log_file.read_bytes() == log_bytes
    assert lake.quarantined() == []
    assert repairs(lake) == [{"path": forged, "why": "its path leaves the table's folder"}]


def test_a_parquet_file_outside_the_lake_named_through_a_symlink_is_never_read(lake: Lake, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (stolen,) = write_rows(outside, [row("stolen", 99)])
    os.symlink(Path(stolen).parent, Path(lake.history_uri) / "link")
    forge_adds(lake, [f"link/{Path(stolen).name}"])
    assert {v.job_key for v in stored_versions(lake)} == {"indeed:1", "indeed:2"}
    assert job_ids(lake) == ["1", "2"]
    assert Path(stolen).exists()
    assert len(repairs(lake)) == 1


def test_the_quarantine_refuses_a_path_outside_the_lake_s_tables(lake: Lake, victim: Path) -> None:
    named = f"{lake.history_uri}/{os.path.relpath(victim, lake.history_uri)}"
    assert named.startswith(lake.url + "/")
    with pytest.raises(ValueError, match="not a data file inside"):
        lake.quarantine(named, "forged")
    assert victim.read_bytes() == PRECIOUS


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("scrape_date=2026-11-26/part-0.parquet", True),
        ("scrape_date=2026-11-26/../part-0.parquet", True),
        ("../enriched_jobs_latest/part-0.parquet", False),
        ("../../other/x.parquet", False),
        ("%2E%2E/x.parquet", False),
        ("s3://bucket/lake/enriched_jobs_history/a.parquet", True),
        ("s3://other/lake/enriched_jobs_history/a.parquet", False),
        ("/lake/enriched_jobs_history/a.parquet", False),
        ("https://evil.example/a.parquet", False),
        ("_delta_log/00000000000000000000.json", False),
    ],
)
def test_an_s3_add_path_is_normalised_inside_its_table_s_prefix(path: str, inside: bool) -> None:
    lake = Lake.__new__(Lake)
    lake.remote, lake.url = True, "s3://bucket/lake"
    assert (lake.resolve("s3://bucket/lake/enriched_jobs_history", path) is not None) is inside


def test_the_cli_sql_and_notify_dry_run_move_no_file_from_outside_the_lake(
    lake: Lake, victim: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_"))}
    env |= {"JOBPING_DATA_DIR": str(tmp_path / "data"), "PREFECT_HOME": str(tmp_path / "prefect")}
    forge_adds(lake, [os.path.relpath(victim, lake.history_uri)])
    done = subprocess.run(
        [JOBPING, "sql", "SELECT count(*) FROM enriched_jobs_history"],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2" in done.stdout
    forge_adds(lake, [os.path.relpath(victim, lake.history_uri)])
    done = subprocess.run(
        [JOBPING, "notify", "--dry-run"],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert victim.read_bytes() == PRECIOUS
    assert lake.quarantined() == []
    assert len(repairs(lake)) == 2


def test_a_deleted_data_file_and_an_add_for_no_file_are_dropped_and_reading_goes_on(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    (lost,) = write_rows(lake, [row("3", 70)])
    Path(lost).unlink()
    forge_adds(lake, ["scrape_date=2026-11-26/never-written.parquet"])
    with caplog.at_level(logging.WARNING):
        assert job_ids(lake) == ["1", "2"]
    dropped = {item["path"]: item["why"] for item in repairs(lake)}
    assert dropped == {
        os.path.relpath(lost, lake.history_uri): "the data file is gone",
        "scrape_date=2026-11-26/never-written.parquet": "the data file is gone",
    }
    assert "never-written.parquet" in caplog.text
    # the repair is in the log: nothing is left to repair
    assert find_damage(lake, ["enriched_jobs_history"], read=True) == []


def test_the_analyse_index_drops_a_lost_file_and_reads_the_rest(lake: Lake) -> None:
    (lost,) = write_rows(lake, [row("3", 70)])
    Path(lost).unlink()
    assert {v.job_key for v in stored_versions(lake)} == {"indeed:1", "indeed:2"}
    assert len(repairs(lake)) == 1


def test_maintenance_drops_a_lost_file_and_quarantines_one_that_is_not_parquet(lake: Lake) -> None:
    maintain(lake, timedelta(0))
    (lost,) = write_rows(lake, [row("3", 70)])
    (bad,) = write_rows(lake, [row("4", 70)])
    write_rows(lake, [row("5", 70)])
    Path(lost).unlink()
    Path(bad).write_bytes(b"not parquet at all")
    assert [d.kind for d in repair_unread(lake)] == ["gone"]
    done = quarantining(lake, lambda: maintain(lake, timedelta(0)), search=True, errors=READ_ERRORS)
    assert done is not None
    assert done.merged.rows_merged == 3
    assert [Path(p).name for p in lake.quarantined()] == [Path(bad).name]
    assert job_ids(lake) == ["1", "2", "5"]


def test_every_file_of_a_table_missing_is_an_outage_and_nothing_is_dropped(lake: Lake) -> None:
    for path in DeltaHistory(lake).table().file_uris():
        Path(path).unlink()
    with pytest.raises(LakeDamagedError, match=r"every data file .* is missing"):
        reader(lake)
    assert repairs(lake) == []


def test_more_lost_files_than_one_open_repairs_drops_none(lake: Lake) -> None:
    forge_adds(lake, [f"scrape_date=2026-11-26/gone-{n}.parquet" for n in range(MAX_QUARANTINED_PER_OPEN + 1)])
    with pytest.raises(LakeDamagedError, match="more than one open repairs"):
        reader(lake)
    assert repairs(lake) == []


def test_a_file_that_cannot_be_reached_is_an_outage_not_a_loss(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    (lost,) = write_rows(lake, [row("3", 70)])
    Path(lost).unlink()

    info = lake.fs.info

    def denied(path: str, **kwargs: object) -> object:
        if path == lost:
            raise PermissionError(13, "Permission denied", path)
        return info(path, **kwargs)

    # as a stale mount or a file of another user answers: root reads any file here, so the answer is made
    monkeypatch.setattr(lake.fs, "info", denied)
    with pytest.raises(LakeDamagedError, match="cannot be reached"):
        find_damage(lake, ["enriched_jobs_history"], read=False)
    assert repairs(lake) == []


def test_lake_repair_lists_in_a_dry_run_then_repairs_then_finds_the_lake_clean(
    lake: Lake, victim: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_"))}
    env |= {"JOBPING_DATA_DIR": str(tmp_path / "data")}
    (lost,) = write_rows(lake, [row("3", 70)])
    (bad,) = write_rows(lake, [row("4", 70)])
    Path(lost).unlink()
    Path(bad).write_bytes(b"not parquet")
    forge_adds(lake, [os.path.relpath(victim, lake.history_uri)])

    def repair(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [JOBPING, "lake", "repair", *args],
            env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False, cwd=tmp_path,
        )  # fmt: skip

    listed = repair("--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert [line.split(" ", 1)[0] for line in listed.stdout.splitlines()] == ["would"] * 3 + ["3"]
    assert repairs(lake) == []
    assert Path(bad).exists()
    done = repair()
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[0] for line in done.stdout.splitlines()[:3]] == ["dropped", "dropped", "quarantined"]
    assert "3 of 5 data files of 1 tables repaired" in done.stdout
    assert len(repairs(lake)) == 3
    assert victim.read_bytes() == PRECIOUS
    clean = repair()
    assert clean.returncode == 0, clean.stderr
    assert "the lake is clean: 2 data files" in clean.stdout
    shutil.rmtree(tmp_path / "data")
    missing = repair()
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no lake at")
    assert len(missing.stderr.strip().splitlines()) == 1


def send(sqs: SQSClient, queues: Queues, jobs: list[str]) -> None:
    for job in jobs:
        posting = JobPosting(id=job, site="indeed", job_url=f"https://x.example/{job}", title="Data Engineer")
        sqs.send_message(QueueUrl=queues.url, MessageBody=envelope_for(posting, SCRAPED).model_dump_json())


@pytest.mark.usefixtures("prefect_api")
def test_an_analyse_run_repairs_a_lost_file_before_receiving_and_the_next_run_needs_no_repair(
    settings: Settings, sqs: SQSClient, queues: Queues
) -> None:
    lake = Lake(settings.lake_dir)
    write_rows(lake, [row("1", 80)])
    (lost,) = write_rows(lake, [row("2", 60)])
    Path(lost).unlink()
    forge_adds(lake, ["scrape_date=2026-11-26/never-written.parquet"])
    send(sqs, queues, ["10", "11", "12"])
    first = asyncio.run(analyse())
    assert (first.received, first.stored) == (3, 3)
    assert len(repairs(lake)) == 2
    send(sqs, queues, ["13"])
    second = asyncio.run(analyse())
    assert (second.received, second.stored) == (1, 1)
    assert len(repairs(lake)) == 2
    assert pl.scan_delta(lake.history_uri).collect().height == 5


def test_on_s3_a_forged_key_outside_the_table_and_a_deleted_object_are_dropped_and_nothing_else_moves(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="other/victim.parquet", Body=PRECIOUS)
    lake = Lake(f"s3://{bucket}/jobs", s3_endpoint_url=moto_url, region="us-east-1")
    write_rows(lake, [row("1", 80)])
    (lost,) = write_rows(lake, [row("2", 60)])
    write_rows(lake, [row("3", 60)])
    s3.delete_object(Bucket=bucket, Key=lost.split(f"{bucket}/", 1)[1])
    now = int(time.time() * 1000)
    added = {"partitionValues": {PARTITION: "2026-11-26"}, "size": 100, "modificationTime": now, "dataChange": True}
    forged = ["../../other/victim.parquet", f"s3://{bucket}/other/victim.parquet"]
    body = "".join(json.dumps({"add": {"path": p, **added}}) + "\n" for p in forged)
    s3.put_object(Bucket=bucket, Key="jobs/enriched_jobs_history/_delta_log/00000000000000000004.json", Body=body)
    assert job_ids(lake) == ["1", "3"]
    assert s3.get_object(Bucket=bucket, Key="other/victim.parquet")["Body"].read() == PRECIOUS
    assert lake.quarantined() == []
    assert sorted(item["why"] for item in repairs(lake)) == ["its path leaves the table's folder"] * 2 + [
        "the data file is gone"
    ]
