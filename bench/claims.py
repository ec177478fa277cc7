"""What the claims shared by all consumers cost: claims per second on a local lake, and the drain with and without.

The drain is the engine's own, with the real parts the analyse flow builds (SQS on moto, the Delta
lake, the OpenAI client against the stand-in); with claims and without, run after run in turn.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jobping.engine.claims import SharedClaims, StoredElsewhere
from jobping.engine.ports import StoredVersion
from storage.claims import LocalClaims

LEASE_SECONDS = 60


@dataclass(frozen=True)
class ClaimRates:
    """Per second on a local lake: claims taken (created), stored, and checked by another consumer."""

    created: float
    stored: float
    checked: float
    files: int


def measure_claim_rates(folder: Path, count: int) -> ClaimRates:
    record = LocalClaims(folder)
    now = datetime.now(UTC)
    versions = [StoredVersion(f"bench:{n}", f"{n:064x}", "p") for n in range(count)]
    first = SharedClaims(record, lease_seconds=LEASE_SECONDS, known_since=now)
    started = time.perf_counter()
    for version in versions:
        first.claim(version)
    created = time.perf_counter() - started
    started = time.perf_counter()
    first.stored(versions)
    stored = time.perf_counter() - started
    other = SharedClaims(record, lease_seconds=LEASE_SECONDS, known_since=now)
    started = time.perf_counter()
    skipped = sum(isinstance(other.claim(version), StoredElsewhere) for version in versions)
    checked = time.perf_counter() - started
    if skipped != count:
        raise RuntimeError(f"{skipped} of {count} stored claims seen as stored")
    return ClaimRates(count / created, count / stored, count / checked, len(list(record.folder.iterdir())))


@dataclass(frozen=True)
class WithAndWithout:
    postings: int
    latency_ms: int
    concurrency: int
    with_claims: list[float]
    without: list[float]
    rates: list[ClaimRates]

    @property
    def ratio(self) -> float:
        return statistics.median(self.with_claims) / statistics.median(self.without)


def claims_section(result: WithAndWithout) -> list[str]:
    rates = result.rates

    def median(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f}"

    return [
        "## Claims shared by all consumers",
        "",
        "Every posting is claimed in the lake's `claims/` before it costs anything, so that a posting delivered",
        "twice, to any number of consumers, is analysed and stored once. On a local lake, one process,",
        f"{rates[0].files:,} claims per run ({len(rates)} runs, medians):",
        "",
        "| what | per second |",
        "|---|---|",
        f"| claims taken (an exclusive create: a temporary file hard-linked) | {median([r.created for r in rates])} |",
        f"| claims marked stored (replaced whole) | {median([r.stored for r in rates])} |",
        f"| claims checked by another consumer (found stored) | {median([r.checked for r in rates])} |",
        "",
        f"The analyse drain with claims and without, {result.postings} postings per run, the stand-in answering "
        f"after {result.latency_ms} ms, concurrency {result.concurrency}, runs in turn:",
        "",
        "| what | postings/s (median) | runs |",
        "|---|---|---|",
        f"| with claims | {statistics.median(result.with_claims):.1f} "
        f"| {', '.join(f'{v:.1f}' for v in result.with_claims)} |",
        f"| without claims | {statistics.median(result.without):.1f} "
        f"| {', '.join(f'{v:.1f}' for v in result.without)} |",
        "",
        f"With claims the drain runs at {result.ratio:.2f} of its speed without: three small writes per posting",
        "(taken, answered, stored) beside a request that takes hundreds of milliseconds.",
        "",
    ]
