"""Forged ``add`` paths in the history's log: ``..``, encoded ``..``, absolute, ``file://``, a symlink out, the log.

Anyone able to write to the lake's log can name any file as a data file of the history. A read-only
command (`jobping sql`) must then read, move and delete nothing outside the table, and drop the
forged entries from the table by a repair commit that says which path and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from deltalake import DeltaTable

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting, envelope_for
from jobping.stored import to_row
from storage.delta import DeltaHistory
from storage.lake import Lake
from storage.repair import REPAIR_RECORD
from storage.rows import PARTITION

JOBPING = str(Path(sys.executable).parent / "jobping")
CLI_TIMEOUT_SECONDS = 60
PRECIOUS = b"the user's own file, not Parquet: nothing of jobping may move it"


def stored(lake: Lake, job: str) -> list[str]:
    """One analysis of job ``job``, appended as a batch appends it; the data files it added."""
    posting = JobPosting(id=job, site="indeed", job_url=f"https://x.example/{job}", title="Data Engineer")
    analysis = JobAnalysis(
        fit_score=50, verdict="maybe", seniority="mid", remote_policy="remote", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="ok",
    )  # fmt: skip
    now = datetime.now(UTC)
    history = DeltaHistory(lake)
    history.ensure()
    before = set(history.table().file_uris())
    result = AnalysisResult(analysis=analysis, model="probe", prompt_version="p1")
    history.append([to_row(envelope_for(posting, now), result, now, f"m-{job}")])
    return sorted(set(history.table().file_uris()) - before)


def forge(lake: Lake, paths: list[str]) -> None:
    log = Path(lake.history_uri) / "_delta_log"
    version = max(int(p.stem) for p in log.glob("*.json")) + 1
    now = int(time.time() * 1000)
    added = {"partitionValues": {PARTITION: "2026-11-26"}, "size": 100, "modificationTime": now, "dataChange": True}
    actions = [{"commitInfo": {"timestamp": now}}, *({"add": {"path": p, **added}} for p in paths)]
    (log / f"{version:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions), encoding="utf-8")


def snapshot_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def probe(work: Path) -> str:
    data = work / "data"
    lake = Lake(data / "lake")
    stored(lake, "1")
    stored(lake, "2")
    table = Path(lake.history_uri)
    # outside the lake: a plain file, and a real Parquet data file of another table with a row of its own
    victims = work / "victim"
    victims.mkdir()
    (victims / "data.parquet").write_bytes(PRECIOUS)
    (foreign,) = stored(Lake(work / "elsewhere"), "stolen")
    os.symlink(Path(foreign).parent, table / "link")
    forged = {
        "..": os.path.relpath(victims / "data.parquet", table),
        "encoded ..": os.path.relpath(victims / "data.parquet", table).replace("..", "%2E%2E"),
        "absolute": str(victims / "data.parquet"),
        "file://": (victims / "data.parquet").as_uri(),
        "symlink out": f"link/{Path(foreign).name}",
        "the log": "_delta_log/00000000000000000000.json",
    }
    forge(lake, list(forged.values()))
    outside = {"victim": snapshot_of(victims), "elsewhere": snapshot_of(work / "elsewhere")}
    log_zero = (table / "_delta_log" / "00000000000000000000.json").read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_"))}
    env |= {"JOBPING_DATA_DIR": str(data), "PREFECT_HOME": str(work / "prefect")}
    done = subprocess.run(
        [JOBPING, "sql", "SELECT count(*), count(*) FILTER (job_id = 'stolen') FROM enriched_jobs_history"],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False, cwd=work,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"jobping sql failed on the forged log: {' '.join(done.stderr.split())[-300:]}")
    cells = [line for line in done.stdout.splitlines() if "│" in line and any(c.isdigit() for c in line)]
    counted = [int(c) for c in cells[-1].replace("│", " ").split()] if cells else []
    if counted != [2, 0]:
        raise AssertionError(f"jobping sql read rows from outside the table: {counted} (rows, stolen rows)")
    moved = [name for name, files in outside.items() if snapshot_of(work / name) != files]
    if moved:
        raise AssertionError(f"files outside the table changed: {moved}")
    if (table / "_delta_log" / "00000000000000000000.json").read_bytes() != log_zero or lake.quarantined():
        raise AssertionError("the table's log was moved or a file was quarantined")
    history = DeltaTable(lake.history_uri).history()
    dropped = {item["path"] for commit in history for item in commit.get(REPAIR_RECORD, [])}
    if dropped != set(forged.values()):
        raise AssertionError(f"repair commits dropped {len(dropped)} of {len(forged)} forged paths: {sorted(dropped)}")
    left = set(DeltaTable(lake.history_uri).get_add_actions().column("path").to_pylist()) & set(forged.values())
    if left:
        raise AssertionError(f"forged paths still in the table: {sorted(left)}")
    return (
        f"{len(forged)} forged add paths ({', '.join(forged)}) read by jobping sql: 0 files outside the table moved "
        f"or read (2 rows, 0 from the foreign Parquet file), {len(dropped)} dropped by a repair commit"
    )
