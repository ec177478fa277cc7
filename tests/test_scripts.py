"""The scripts beside jobping: the sample they bundle is theirs byte for byte; every module (product, scripts,
bench) stays one idea."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
SCRIPTS = ROOT / "scripts"
BUNDLED_SAMPLE = ROOT / "jobping" / "sample" / "postings.json"
# issue 27: a module past this is usually two ideas; tables belong in data files
MAX_MODULE_LINES = 400


def test_the_generator_run_as_its_note_says_writes_the_bundled_sample_byte_for_byte(tmp_path: Path) -> None:
    written = tmp_path / "postings.json"
    # the sample's note says `python scripts/generate_sample.py`: run as a file, from another folder
    subprocess.run(
        [sys.executable, str(SCRIPTS / "generate_sample.py"), "--out", str(written)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert written.read_bytes() == BUNDLED_SAMPLE.read_bytes()


def test_no_module_of_the_product_scripts_or_bench_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for folder in ("app", "flows", "tasks", "storage", "jobping", "standins", "scripts", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert {"scripts/faults.py", "scripts/generate_sample.py", "app/cli/__init__.py", "bench/run.py"} <= sizes.keys()
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
