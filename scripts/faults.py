"""The fault-injection suite: real processes, real faults, and a table of what became of every posting.

Each case runs `jobping analyse` as its own process against a real moto server and the
local OpenAI stand-in, injects one kind of trouble, drains the queue to the end, and then
counts: published = distinct postings stored + in the DLQ + still on the queue, no job_key
stored twice, and for every run that finished, received = stored + skipped + DLQ + left.
Then every probe of scripts/boundaries/ (a module with ``probe(work) -> str``, raising
AssertionError when its trust boundary does not hold) runs in its own process and folder.
`make test-faults` runs it and writes docs/RELIABILITY.md; it exits non-zero if a case or a probe fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_LEVEL, temporary_settings
from prefect.testing.utilities import prefect_test_harness

if __package__ in (None, ""):
    # run as a file (`make test-faults`, and each probe's own process): import from the root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.fault_suite.case import Case, Outcome
from scripts.fault_suite.cases import CASES
from scripts.fault_suite.hostile import SECURITY
from scripts.fault_suite.probes import boundary_probes, probe_main, run_probe
from scripts.fault_suite.report import write_report
from standins.servers import PIDS, StandIn, moto_server, openai_standin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", help="run only cases and probes whose name contains this text")
    parser.add_argument("--probe", nargs=2, metavar=("PROBE", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe_main(Path(args.probe[0]), Path(args.probe[1]))

    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobping-faults-") as tmp:
        base = Path(tmp)
        with (
            moto_server(base / "moto.log") as moto,
            openai_standin(base / "standin.log") as standin_url,
            prefect_test_harness(server_startup_timeout=90),
            temporary_settings({PREFECT_LOGGING_LEVEL: "WARNING"}),
        ):
            api = str(PREFECT_API_URL.value())
            moto_pid = PIDS[moto]
            standin = StandIn(standin_url)
            for name, scenario in CASES.items():
                if args.only and args.only not in name:
                    continue
                standin.configure()
                case = Case(name, base, moto, standin, api, JOBPING_FAULTS_MOTO_PID=str(moto_pid))
                print(f"{name} ...", flush=True)
                try:
                    scenario(case)
                except Exception as exc:  # a crashed scenario is a failed case, reported in the table
                    case.outcome.problems.append(f"the scenario crashed: {exc!r}"[:300])
                outcome = case.audit()
                outcomes.append(outcome)
                print(f"  {'holds' if outcome.holds else 'FAILS: ' + '; '.join(outcome.problems)}", flush=True)
        boundaries = []
        for path in boundary_probes():
            if args.only and args.only not in path.stem:
                continue
            print(f"boundary {path.stem} ...", flush=True)
            boundaries.append(run_probe(path, base))
            print(f"  {'holds' if boundaries[-1].held else 'FAILS'}: {boundaries[-1].said}", flush=True)
    write_report(outcomes, boundaries, time.monotonic() - started, partial=bool(args.only), security=SECURITY)
    return 0 if all(o.holds for o in outcomes) and all(b.held for b in boundaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
