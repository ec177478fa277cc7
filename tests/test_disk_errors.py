"""Read-only and full disks, made real with tmpfs mounts: errors say what happened, nothing is half-written."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flows.preflight import check_writable
from jobping.errors import ConfigurationError
from storage.catalog import refresh_catalog
from tests.lakes import write_rows
from tests.test_storage import row

# a few KiB: room for a small file, no room for a catalog or a batch
FULL_DISK_BYTES = 64 * 1024
HELD = "held by another process"


@contextmanager
def tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``where`` for the block, unmounted after it."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "jobping-test", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """A lake with one batch, on the normal disk."""
    lake = tmp_path / "lake"
    write_rows(lake, [row("1", 80), row("2", 60)])
    return lake


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "read-only", "size=1m") as where:
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "full", f"size={FULL_DISK_BYTES}") as where:
        with pytest.raises(OSError, match="No space left on device"), open(where / "filler", "wb") as out:  # noqa: PT012
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        yield where


def test_a_catalog_on_a_read_only_disk_says_read_only_not_held(
    lake: Path, read_only: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert refresh_catalog(read_only / "jobping.duckdb", lake) is False
    assert "Read-only file system" in caplog.text
    assert HELD not in caplog.text


def test_a_catalog_on_a_full_disk_says_so_and_leaves_no_temp_file(
    lake: Path, full: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert refresh_catalog(full / "jobping.duckdb", lake) is False
    assert "No space left on device" in caplog.text
    assert HELD not in caplog.text
    assert sorted(p.name for p in full.iterdir()) == ["filler"]


def test_a_batch_on_a_full_disk_fails_saying_so_and_leaves_no_part_of_a_file(full: Path) -> None:
    lake = full / "lake"
    with pytest.raises(OSError, match="No space left on device"):
        write_rows(lake, [row(str(n), 50) for n in range(200)])
    assert [p for p in lake.rglob("*") if p.is_file()] == []


def test_the_cli_check_names_a_read_only_lake_before_any_work(read_only: Path) -> None:
    with pytest.raises(ConfigurationError, match="not writable \\(Read-only file system\\)"):
        check_writable(read_only / "lake")
