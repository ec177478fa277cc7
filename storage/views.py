"""The catalog's refresh as the analyse process runs it: in a short child process, and only when needed.

Writing the catalog file takes DuckDB and its delta extension, ~60 MB of an analyse process
that otherwise needs neither (bench/RESULTS.md, Memory). The analyse process reads the lake's
state through delta-rs, which it loads anyway, and compares it with the catalog's sidecar
version: when they agree and the file is a DuckDB file, there is nothing to do; otherwise
a child process (storage/refresh.py) runs storage.catalog's refresh_catalog, and its warnings are
logged here. ``jobping compact`` refreshes in its own process, checking the file whole.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from storage.delta import DeltaHistory, DeltaLatest, Merged
from storage.lake import Lake

logger = logging.getLogger(__name__)

# "6": the jobs view, one row per job group
CATALOG_VERSION = "6"
# a DuckDB database file says so at this offset of its first block
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
# a refresh writes a small file of views; one that takes longer is stuck on the filesystem
CHILD_TIMEOUT_SECONDS = 300
# the child's module: it imports storage.catalog, which imports this one
CHILD = "storage.refresh"


@dataclass(frozen=True)
class LakeState:
    """What the views need to know of the lake: whether it holds rows, and up to where the latest table does."""

    stored: bool
    merged: Merged | None

    @classmethod
    def of(cls, lake: Lake) -> LakeState:
        if not DeltaHistory(lake).exists():
            return cls(stored=False, merged=None)
        return cls(stored=True, merged=DeltaLatest(lake).merged())

    def stamp(self, lake: Lake) -> str:
        merged = self.merged.analysed_up_to.isoformat() if self.merged else "-"
        return f"{CATALOG_VERSION} {merged} {lake.url}"


def sidecar(catalog: Path) -> Path:
    return catalog.with_suffix(".version")


def refresh_catalog(catalog: Path, lake: Lake | Path | str) -> bool:
    """storage.catalog.refresh_catalog, run in a child process unless the catalog is current.

    False when there is nothing to view yet or the catalog could not be written; the run goes on either way.
    """
    lake = Lake.of(lake)
    state = LakeState.of(lake)
    if not state.stored:
        return False
    if _current(catalog, state.stamp(lake)):
        return True
    return _refresh_in_child(catalog, lake)


def _current(catalog: Path, stamp: str) -> bool:
    try:
        with catalog.open("rb") as file:
            head = file.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
        return head[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC and sidecar(catalog).read_text(encoding="utf-8") == stamp
    except OSError:
        return False


def _refresh_in_child(catalog: Path, lake: Lake) -> bool:
    # the child runs the code this process runs, wherever the working directory is
    root = str(Path(__file__).resolve().parent.parent)
    script = f"import sys; sys.path.insert(0, sys.argv[1]); from {CHILD} import main; sys.exit(main(sys.argv[2:]))"
    arguments = [root, str(catalog), lake.url, lake.region, lake.s3_endpoint_url or ""]
    command = [sys.executable, "-c", script, *arguments]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, paths as arguments
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("the catalog %s could not be refreshed (%s); the lake itself is intact", catalog, exc)
        return False
    lines = done.stderr.splitlines()
    if done.returncode != 0:
        logger.warning(
            "the catalog %s could not be refreshed (%s); the lake itself is intact",
            catalog, lines[-1] if lines else f"exit {done.returncode}",
        )  # fmt: skip
        return False
    for line in lines:
        logger.warning("%s", line)
    return done.stdout.strip() == "1"
