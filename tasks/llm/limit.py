"""One bound on LLM requests across every analyse process: a Prefect global concurrency limit.

Each request takes a slot of the limit for as long as it is in flight, so N consumers together
never have more requests out than the limit allows; each process's own semaphore
(``JOBPING_LLM_CONCURRENCY``) stays as the second bound. `make up` creates the limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency
from prefect.exceptions import ObjectNotFound

from jobping.analysis import Analyser, AnalysisResult
from jobping.contract import JobPosting
from jobping.errors import ConfigurationError, TransientError

# the name `make up` gives the limit, and the deployments' JOBPING_LLM_GLOBAL_LIMIT
GLOBAL_LIMIT_NAME = "jobping-llm"
# a slot is held at most this long if its process dies holding it (Prefect renews the lease meanwhile)
LEASE_SECONDS = 300
# requests one slot serves in a row before it goes back to Prefect for other consumers to take
SLOT_REUSES = 20


class SlotPool:
    """Slots of a Prefect global concurrency limit held by this process, passed from request to request.

    Taking a slot from Prefect for every request cost too much: Prefect hands out slots by
    polling (a refused request waits as long as the server's Retry-After says), so a saturated
    limit of 16 served one consumer 5.5 requests/s instead of the 31.6 it served with no
    global limit (measured on the local stack, 400 postings at 500 ms). Here a slot, once
    taken, is passed straight to the next waiting request of this process; it goes back to
    Prefect when no request waits, or after SLOT_REUSES requests, so that other consumers get
    their turn. Each slot is taken with Prefect's own lease, kept alive while held, so a
    process that dies gives its slots back.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.waiting: deque[asyncio.Future[asyncio.Future[None]]] = deque()
        # holders started that do not hold their slot yet
        self.acquiring = 0
        self.holders: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block."""
        grant: asyncio.Future[asyncio.Future[None]] = asyncio.get_running_loop().create_future()
        self.waiting.append(grant)
        self._start_holders()
        try:
            finished = await grant
        except asyncio.CancelledError:
            if grant.done() and not grant.cancelled():
                grant.result().set_result(None)  # granted as it was cancelled: hand the slot on
            raise
        try:
            yield
        finally:
            finished.set_result(None)

    def _start_holders(self) -> None:
        # one holder on its way to Prefect per request waiting beyond those already on their way
        while self.acquiring < sum(not grant.done() for grant in self.waiting):
            self.acquiring += 1
            holder = asyncio.create_task(self._hold())
            self.holders.add(holder)
            holder.add_done_callback(self.holders.discard)

    def _next(self) -> asyncio.Future[asyncio.Future[None]] | None:
        while self.waiting:
            grant = self.waiting.popleft()
            if not grant.done():
                return grant
        return None

    async def _hold(self) -> None:
        """Take one slot from Prefect, serve waiting requests with it one after another, then give it back."""
        held = False
        try:
            async with concurrency(self.name, occupy=1, lease_duration=LEASE_SECONDS, strict=True):
                held = True
                self.acquiring -= 1
                for _ in range(SLOT_REUSES):
                    grant = self._next()
                    if grant is None:
                        break
                    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    grant.set_result(finished)
                    await finished
        except ConcurrencySlotAcquisitionError as exc:
            # a missing limit fails every posting alike: the run stops, the messages stay
            self._fail(held, ConfigurationError(
                f"cannot take a slot of the global concurrency limit {self.name!r} "
                f"(JOBPING_LLM_GLOBAL_LIMIT): {exc}; `make up` creates it, or unset the variable"
            ))  # fmt: skip
            return
        # the Prefect API failing for a while: the posting is tried again later
        except Exception as exc:
            self._fail(held, TransientError(f"the global concurrency limit {self.name!r} failed: {exc}"))
            return
        # requests still waiting (this slot served its reuses) get holders of their own
        self._start_holders()

    def _fail(self, held: bool, error: Exception) -> None:
        if not held:
            self.acquiring -= 1
        grant = self._next()
        if grant is not None:
            grant.set_exception(error)


class GloballyLimited:
    """An analyser whose every request holds a slot of the Prefect global concurrency limit ``name``."""

    def __init__(self, analyser: Analyser, name: str) -> None:
        self.analyser = analyser
        self.slots = SlotPool(name)

    @property
    def model(self) -> str:
        return self.analyser.model

    @property
    def prompt_version(self) -> str:
        return self.analyser.prompt_version

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        async with self.slots.slot():
            return await self.analyser.analyse(posting)


async def ensure_global_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit ``name`` with ``limit`` slots, or set an existing one's to it."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        else:
            await client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
