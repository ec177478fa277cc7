"""Peak memory of an analyse run with a notifier and without, in turn: the "Pings" section of bench/RESULTS.md.

``make bench`` (bench/run.py) measures it with the rest; ``python -m bench.notify_peak`` measures it
alone, against servers of its own, and rewrites that section only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_LEVEL,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from bench.baseline import sample_bodies
from bench.harness import write_section
from bench.publish import PeakMemory, client, environment_for_child, jobping_analyse, peak_memory_mb
from jobping.settings import SqsSettings
from standins.servers import free_port, moto_server, received, webhook_receiver
from tasks.sqs.messages import send_entries
from tasks.sqs.queues import ensure_queues

HEADING = "## Pings"
POSTINGS = 1_000
# the acceptance: an analyse run that pings peaks within this much of one that does not
GOAL_RATIO = 1.1


@dataclass(frozen=True)
class NotifyPeaks:
    """Peak memory of analyse runs without a notifier and with one, and the matches each digest carried."""

    postings: int
    without: list[PeakMemory]
    notifying: list[PeakMemory]
    matches: list[int]

    @property
    def ratio(self) -> float:
        return _median(self.notifying) / _median(self.without)


def _median(runs: list[PeakMemory]) -> float:
    return statistics.median(mb.resident for mb in runs)


def analyse_peak(base: Path, moto: str, postings: int, webhook: str | None) -> PeakMemory:
    """Peak MB of one `jobping analyse` process draining ``postings`` queued at once, pinging ``webhook`` if set."""
    queue = SqsSettings(queue_name=f"ping-{uuid.uuid4().hex[:8]}")
    sqs = client(moto)
    url = ensure_queues(sqs, queue).url
    send_entries(sqs, url, [{"Id": str(n), "MessageBody": body} for n, body in enumerate(sample_bodies(postings))])
    env = environment_for_child(
        {
            **({"JOBPING_NOTIFY_WEBHOOK_URL": webhook} if webhook else {}),
            "JOBPING_DATA_DIR": str(base / uuid.uuid4().hex[:8]),
            "JOBPING_SQS_ENDPOINT_URL": moto,
            "JOBPING_QUEUE_NAME": queue.queue_name,
            "JOBPING_RECEIVE_WAIT_SECONDS": "1",
            # the harness's server lives in Prefect's settings, not in os.environ
            "PREFECT_API_URL": str(PREFECT_API_URL.value() or ""),
        }
    )
    return peak_memory_mb(env, jobping_analyse())


def measure_notify_peaks(base: Path, moto: str, runs: int, postings: int = POSTINGS) -> NotifyPeaks:
    """``runs`` analyse runs without a notifier and as many with a real webhook receiver, in turn."""
    without, notifying, matches = [], [], []
    port = free_port()
    with webhook_receiver(base / f"received-{port}.jsonl", port) as receiver:
        for run in range(runs):
            without.append(analyse_peak(base, moto, postings, None))
            path = f"/digest-{run}"
            notifying.append(analyse_peak(base, moto, postings, receiver + path))
            digests = [json.loads(record["body"]) for record in received(receiver) if record["path"] == path]
            if len(digests) != 1 or not digests[0]["matches"]:
                raise RuntimeError(f"the run with a notifier sent {len(digests)} digests, expected one with matches")
            matches.append(len(digests[0]["matches"]))
    return NotifyPeaks(postings, without, notifying, matches)


def pings_section(p: NotifyPeaks) -> list[str]:
    def row(name: str, runs: list[PeakMemory]) -> str:
        anonymous = statistics.median(mb.anonymous for mb in runs)
        return f"| {name} | {_median(runs):.0f} | {', '.join(f'{mb.resident:.0f}' for mb in runs)} | {anonymous:.0f} |"

    goal = "goal met" if p.ratio <= GOAL_RATIO else "goal NOT met"
    return [
        HEADING,
        "",
        f"Peak resident memory (VmHWM) of a `jobping analyse` process draining {p.postings:,} postings queued at once",
        "(the offline analyser, a fresh lake each run), without a notifier and with one, in turn. The notifier is",
        "`JOBPING_NOTIFY_WEBHOOK_URL` at a local webhook receiver (standins/webhook.py), which took one digest a run",
        f"({', '.join(str(n) for n in p.matches)} matches). Goal: with a notifier within {GOAL_RATIO}x of without.",
        "",
        "| notifier | peak MB (median) | runs | of it, anonymous (heap) MB |",
        "|---|---|---|---|",
        row("none", p.without),
        row("webhook", p.notifying),
        "",
        f"Ratio: {p.ratio:.2f}x ({goal}). The ping reads the ledger and the history rows analysed since the last",
        "digest with delta-rs and polars, which the run has loaded for its drain; it never loads DuckDB.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs with a notifier and without; the median is reported")
    parser.add_argument("--postings", type=int, default=POSTINGS, help="postings per analyse run")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="jobping-bench-") as tmp,
        moto_server(Path(tmp) / "moto.log") as moto,
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_LEVEL: "WARNING"}),
    ):
        peaks = measure_notify_peaks(Path(tmp), moto, args.runs, args.postings)
    lines = pings_section(peaks)
    lines[2] = f"Measured on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.notify_peak`. " + lines[2]
    write_section(lines, after="## Memory")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
