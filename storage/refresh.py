"""The catalog's refresh as an analyse run makes it: only when the catalog is stale, in a short child process.

Writing the catalog file takes DuckDB and its delta extension, memory that an analyse process
otherwise never maps (bench/RESULTS.md, Memory). The run reads the lake's state through
delta-rs, which it loads anyway, and compares it with the catalog's sidecar version: when they
agree and the file is a DuckDB file, there is nothing to do; otherwise a child process
(storage.catalog's ``refresh_main``) runs its refresh_catalog, and its warnings are logged here.
``jobping compact`` refreshes in its own process, reading the file whole.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from storage.delta import LakeSnapshot, Merged
from storage.lake import Lake

logger = logging.getLogger(__name__)

# the views' definition; a catalog stamped with another is rebuilt ("7": first_seen and last_seen over the
# history and the sightings)
CATALOG_VERSION = "7"
# a DuckDB database file says so at this offset of its first block
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
# a refresh writes a small file of views; one that takes longer is stuck on the filesystem
CHILD_TIMEOUT_SECONDS = 300


def catalog_stamp(lake: Lake, merged: Merged | None, *, sightings: bool = False) -> str:
    """What the catalog's views depend on: their definition, the last merge, whether sightings exist, the lake."""
    seen = " sightings" if sightings else ""
    return f"{CATALOG_VERSION} {merged.analysed_up_to.isoformat() if merged else '-'}{seen} {lake.url}"


def sidecar(catalog: Path) -> Path:
    """The file beside the catalog holding the stamp its views were written for."""
    return catalog.with_suffix(".version")


def refresh_catalog(catalog: Path, lake: Lake | Path | str) -> bool:
    """storage.catalog.refresh_catalog, run in a child process unless the catalog is current.

    False when there is nothing to view yet or the catalog could not be written; the run goes on either way.
    """
    lake = Lake.of(lake)
    snapshot = LakeSnapshot.of(lake)
    if snapshot is None:
        return False
    if _current(catalog, catalog_stamp(lake, snapshot.merged, sightings=snapshot.sightings_version is not None)):
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
    # the child runs the code this process runs, whatever the working directory holds
    root = str(Path(__file__).resolve().parent.parent)
    script = "import sys; sys.path.insert(0, sys.argv[1]); import storage.catalog as c; c.refresh_main(sys.argv[2:])"
    arguments = [root, str(catalog), lake.url, lake.region, lake.s3_endpoint_url or ""]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, paths as arguments
            [sys.executable, "-c", script, *arguments],
            capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("the catalog %s could not be refreshed (%s); the lake itself is intact", catalog, exc)
        return False
    lines = done.stderr.splitlines()
    if done.returncode != 0:
        why = lines[-1] if lines else f"exit {done.returncode}"
        logger.warning("the catalog %s could not be refreshed (%s); the lake itself is intact", catalog, why)
        return False
    for line in lines:
        logger.warning("%s", line)
    return done.stdout.strip() == "1"
