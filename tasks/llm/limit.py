"""One bound on LLM requests across every analyse process: a Prefect global concurrency limit.

Each request takes a slot of the limit for as long as it is in flight, so N consumers together
never have more requests out than the limit allows; each process's own semaphore
(``JOBPING_LLM_CONCURRENCY``) stays as the second bound. `make up` creates the limit.

A slot per request is exact but slow when the limit is saturated: Prefect hands out slots by
polling (a refused acquisition waits as long as the server's Retry-After says), and a limit of
16 served one consumer 5.5 requests/s where 31.6 were possible without it (400 postings at
500 ms on the local stack, measured side by side outside the bench; bench/RESULTS.md, Autoscaling,
has the 2,000-posting figures). Passing a held slot straight to the next request of the same
process is the fix under work; a first try leaked slots, since Prefect releases the leases taken inside a
task run when that task run ends.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency
from prefect.exceptions import ObjectNotFound

from jobping.analysis import Analyser, AnalysisResult
from jobping.contract import JobPosting
from jobping.errors import ConfigurationError

# the name `make up` gives the limit, and the deployments' JOBPING_LLM_GLOBAL_LIMIT
GLOBAL_LIMIT_NAME = "jobping-llm"
# a request's slot is held at most this long if its process dies holding it
LEASE_SECONDS = 300


class GloballyLimited:
    """An analyser whose every request holds a slot of the Prefect global concurrency limit ``name``."""

    def __init__(self, analyser: Analyser, name: str) -> None:
        self.analyser = analyser
        self.name = name

    @property
    def model(self) -> str:
        return self.analyser.model

    @property
    def prompt_version(self) -> str:
        return self.analyser.prompt_version

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        try:
            slot = concurrency(self.name, occupy=1, lease_duration=LEASE_SECONDS, strict=True)
            async with slot:
                return await self.analyser.analyse(posting)
        except ConcurrencySlotAcquisitionError as exc:
            # a missing limit or an unreachable server fails every posting alike: the run stops, messages stay
            raise ConfigurationError(
                f"cannot take a slot of the global concurrency limit {self.name!r} "
                f"(JOBPING_LLM_GLOBAL_LIMIT): {exc}; `make up` creates it, or unset the variable"
            ) from exc


async def ensure_global_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit ``name`` with ``limit`` slots, or set an existing one's to it."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        else:
            await client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
