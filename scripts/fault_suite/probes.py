"""The trust-boundary probes of scripts/boundaries/, each run in its own process and folder."""

from __future__ import annotations

import runpy
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.fault_suite.case import ROOT

BOUNDARIES = ROOT / "scripts" / "boundaries"
# the suite's entry point, which runs one probe when given --probe
FAULTS = ROOT / "scripts" / "faults.py"


PROBE_TIMEOUT_SECONDS = 240.0


@dataclass(frozen=True)
class Boundary:
    """What one probe of scripts/boundaries/ found: a trust boundary tried as an attacker would."""

    name: str
    held: bool
    said: str
    seconds: float


def boundary_probes() -> list[Path]:
    return sorted(BOUNDARIES.glob("*.py"))


def run_probe(path: Path, base: Path) -> Boundary:
    """Run one probe in its own process and folder, so that a probe that hangs or leaks stops no other."""
    work = Path(tempfile.mkdtemp(prefix=f"{path.stem}-", dir=base))
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(FAULTS), "--probe", str(path), str(work)],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False, cwd=ROOT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Boundary(path.stem, False, f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s", PROBE_TIMEOUT_SECONDS)
    lines = (done.stdout if done.returncode == 0 else done.stderr).strip().splitlines()
    said = lines[-1] if lines else f"exit status {done.returncode}, nothing said"
    return Boundary(path.stem, done.returncode == 0, said[:400], time.monotonic() - started)


def probe_main(path: Path, work: Path) -> int:
    """The child side of :func:`run_probe`: the probe's line on stdout, or what broke on stderr."""
    sys.path.insert(0, str(ROOT))
    probe = runpy.run_path(str(path))["probe"]
    try:
        print(" ".join(str(probe(work)).split()))
    except AssertionError as exc:
        print(f"broken: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0
