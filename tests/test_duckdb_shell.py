"""The catalog file opens in the DuckDB shell from PyPI.

The README tells users to run `duckdb data/jobping.duckdb` and load the delta extension; the
shell they get from PyPI (duckdb-cli, a dev dependency) is a 1.5 release, and the catalog is
written in a storage version it reads. Offline, as here, the extension is loaded from the
duckdb-extension-delta package's file, as the README says. These tests run that very
executable, never skip: without it they fail.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from storage.catalog import refresh_catalog
from storage.lake import DELTA, Lake, extension_path
from storage.maintenance import maintain
from storage.views import HISTORY_VIEW, LATEST_VIEW
from tests.lakes import write_rows
from tests.test_storage import SCRAPED, row

SHELL = Path(sys.executable).parent / "duckdb"
SHELL_SERIES = "v1.5."
CASES = Path(__file__).parent / "cases"


def shell(*args: str) -> subprocess.CompletedProcess[str]:
    assert SHELL.exists(), (
        f"the DuckDB shell {SHELL} is missing: install the dev dependencies "
        "(`make install`, or `.venv/bin/python -m pip install -e '.[dev]'`), which bring duckdb-cli"
    )
    return subprocess.run([str(SHELL), *args], capture_output=True, text=True, timeout=60, check=False)


def shell_query(catalog: Path, query: str) -> list[str]:
    # what the README tells a shell user to run first, offline
    load = f"LOAD '{extension_path(DELTA)}';"
    done = shell("-readonly", str(catalog), "-csv", "-noheader", "-c", f"{load} {query}")
    assert done.returncode == 0, f"the shell failed on {query!r}: {done.stderr}"
    return done.stdout.split()


def test_the_catalog_opens_in_the_duckdb_shell_from_pypi(tmp_path: Path) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "jobping.duckdb"
    write_rows(lake, [row("1", 40), row("2", 50)])
    write_rows(lake, [row("1", 90, analysed=SCRAPED + timedelta(hours=1))])
    assert refresh_catalog(catalog, lake)
    version = shell("--version")
    # the shell from PyPI, e.g. "v1.5.5 (Variegata) d8cdaa33fd"
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(SHELL_SERIES), f"expected a DuckDB {SHELL_SERIES}x shell: {version.stdout}"
    assert shell_query(catalog, f"SELECT count(*), max(fit_score) FROM {LATEST_VIEW}") == ["2,90"]
    assert shell_query(catalog, f"SELECT count(*) FROM {HISTORY_VIEW}") == ["3"]


def test_the_views_over_a_maintained_lake_run_in_the_duckdb_shell_from_pypi(tmp_path: Path) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "jobping.duckdb"
    write_rows(lake, [row("1", 40), row("2", 50)])
    maintain(Lake(lake), timedelta(0))
    write_rows(lake, [row("1", 90, analysed=SCRAPED + timedelta(hours=1)), row("3", 10)])
    assert refresh_catalog(catalog, lake)
    assert shell_query(catalog, f"SELECT job_id, fit_score FROM {LATEST_VIEW} ORDER BY job_id") == [
        "1,90",
        "2,50",
        "3,10",
    ]
    assert shell_query(catalog, f"SELECT count(*) FROM {HISTORY_VIEW}") == ["4"]


def test_a_catalog_an_older_jobping_wrote_with_duckdb_2_is_rebuilt_once(tmp_path: Path) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "jobping.duckdb"
    write_rows(lake, [row("1", 40)])
    # written by DuckDB 2.0.1's package, which jobping used before it pinned DuckDB 1.5 for the delta extension
    catalog.write_bytes(gzip.decompress((CASES / "catalog-written-by-duckdb-2.0.duckdb.gz").read_bytes()))
    catalog.with_suffix(".version").write_text(f"3 0 {Lake.of(lake).url}/enriched_jobs/*", encoding="utf-8")
    assert shell("-readonly", str(catalog), "-c", "SELECT 1").returncode != 0

    assert refresh_catalog(catalog, lake)
    assert shell_query(catalog, f"SELECT job_id, fit_score FROM {LATEST_VIEW}") == ["1,40"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".wal"))]
    modified = catalog.stat().st_mtime_ns
    assert refresh_catalog(catalog, lake)
    assert catalog.stat().st_mtime_ns == modified
