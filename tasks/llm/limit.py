"""One bound on LLM requests across every analyse process: a Prefect global concurrency limit.

Each request in flight holds a slot of the limit, so N consumers together never have more
requests out than the limit allows; each process's own semaphore (``JOBPING_LLM_CONCURRENCY``)
stays as the second bound. `make up` creates the limit.

The slots are taken from Prefect's API directly, each on its own lease, and a process passes a
slot it holds from one of its requests to the next. Taking one through ``prefect.concurrency``
for every request cost most of the throughput: Prefect's client serialises a process's
acquisitions and sleeps the server's Retry-After on each refusal, so a saturated limit served one
consumer a fraction of what concurrency / latency allows. A held slot goes back to Prefect once
no request of the process has wanted it for ``LINGER_SECONDS``, and after ``HOLD_SECONDS`` in any
case, so that other consumers get their turn. A process that dies holding slots loses them when their lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectNotFound

from jobping.analysis import Analyser, AnalysisResult
from jobping.contract import JobPosting
from jobping.errors import ConfigurationError, TransientError

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

logger = logging.getLogger(__name__)

# the name `make up` gives the limit, and the deployments' JOBPING_LLM_GLOBAL_LIMIT
GLOBAL_LIMIT_NAME = "jobping-llm"
# a slot is held at most this long after its process dies (Prefect's shortest lease); renewed meanwhile
LEASE_SECONDS = 60.0
RENEW_EVERY_SECONDS = LEASE_SECONDS / 3
# a slot serves requests of one process at most this long before it goes back for the others
HOLD_SECONDS = 10.0
# a slot no request wants goes back after this long: the next request of a batch is usually this close
LINGER_SECONDS = 0.25
# a refused acquisition is tried again after the server's Retry-After, but never later than this
MAX_POLL_SECONDS = 0.5
HTTP_LOCKED = 423
# jitter from a generator of our own: the global one belongs to whoever seeds it
_JITTER = random.Random()  # noqa: S311


@dataclass
class _Lease:
    id: UUID
    taken: float
    idle_since: float = 0.0


class SlotLeases:
    """Slots of the Prefect global concurrency limit ``name`` held by this process for its requests.

    A request takes an idle held slot, or waits while one acquirer asks Prefect for another;
    a finished request passes its slot to the next waiting one. Use it within one event loop
    and close it with ``aclose`` to give back what it holds.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.held: dict[UUID, _Lease] = {}
        self.idle: list[_Lease] = []
        self.waiters: deque[asyncio.Future[_Lease]] = deque()
        self._client: PrefectClient | None = None
        self._acquirer: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._background_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block."""
        lease = await self._take()
        try:
            yield
        finally:
            self._give_back(lease)

    async def aclose(self) -> None:
        """Give every held slot back to Prefect and close the client."""
        self._closed = True
        for task in (self._acquirer, self._renewer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.idle.clear()
        # a slot given back while closing may be taken again by its cycle: release until none is left
        while True:
            for lease in list(self.held.values()):
                self._release(lease)
            if not self._background_tasks:
                break
            await asyncio.gather(*self._background_tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def _take(self) -> _Lease:
        if self.idle:
            return self.idle.pop()
        waiter: asyncio.Future[_Lease] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self._start_acquirer()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # granted as it was cancelled: pass the slot on
                self._give_back(waiter.result())
            raise

    def _next_waiter(self) -> asyncio.Future[_Lease] | None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    def _give_back(self, lease: _Lease) -> None:
        now = time.monotonic()
        if self._closed:
            self._release(lease)
            return
        if now - lease.taken >= HOLD_SECONDS:
            self._background(self._cycle(lease))
            return
        waiter = self._next_waiter()
        if waiter is not None:
            waiter.set_result(lease)
            return
        lease.idle_since = now
        self.idle.append(lease)
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self._drop_idle)

    async def _cycle(self, lease: _Lease) -> None:
        """Give a slot held for its turn back to Prefect, then ask for one again if a request here waits.

        Asking right away, rather than through the acquirer's polling, keeps the slot's gap short;
        another consumer polling meanwhile may take it, which is the point of giving it back.
        """
        if self.held.pop(lease.id, None) is not None:
            await self._decrement(lease)
        if self._closed or not any(not waiter.done() for waiter in self.waiters):
            return
        try:
            again = await self._increment(wait=False)
        except Exception:  # the acquirer asks again, and reports what fails
            again = None
        if again is None:
            self._start_acquirer()
        else:
            self._hand_on(again)

    def _hand_on(self, lease: _Lease) -> None:
        """A slot just taken from Prefect: to the request waiting longest, or idle if none waits anymore."""
        waiter = self._next_waiter()
        if waiter is None:
            self._give_back(lease)
        else:
            waiter.set_result(lease)

    def _drop_idle(self) -> None:
        now = time.monotonic()
        for lease in [lease for lease in self.idle if now - lease.idle_since >= LINGER_SECONDS]:
            self.idle.remove(lease)
            self._release(lease)

    def _start_acquirer(self) -> None:
        if not self._closed and (self._acquirer is None or self._acquirer.done()):
            self._acquirer = asyncio.create_task(self._acquire())

    async def _acquire(self) -> None:
        """Take slots from Prefect, one at a time, while requests of this process wait for one."""
        try:
            while any(not waiter.done() for waiter in self.waiters):
                lease = await self._increment()
                if lease is not None:
                    self._hand_on(lease)
        except ConfigurationError as exc:
            self._fail_waiters(exc)
        except (httpx.HTTPError, OSError) as exc:
            # the Prefect API away for a while: the postings are tried again later
            logger.warning("cannot take a slot of the global concurrency limit %r: %s", self.name, exc)
            self._fail_waiters(TransientError(f"the global concurrency limit {self.name!r} failed: {exc}"))

    def _fail_waiters(self, error: Exception) -> None:
        while (waiter := self._next_waiter()) is not None:
            waiter.set_exception(error)

    async def _increment(self, *, wait: bool = True) -> _Lease | None:
        """One slot from Prefect, or None after a refusal (waited out unless ``wait`` is False)."""
        client = await self._open()
        try:
            response = await client.increment_concurrency_slots_with_lease(
                names=[self.name], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != HTTP_LOCKED:
                raise
            if not wait:
                return None
            retry_after = float(exc.response.headers.get("Retry-After", MAX_POLL_SECONDS))
            await asyncio.sleep(min(retry_after, MAX_POLL_SECONDS) * _JITTER.uniform(0.5, 1.0))
            return None
        granted = response.json()
        if not granted.get("limits"):
            # a missing limit fails every posting alike: the run stops, the messages stay
            raise ConfigurationError(
                f"cannot take a slot of the global concurrency limit {self.name!r} (JOBPING_LLM_GLOBAL_LIMIT): "
                "no such limit; `make up` creates it, or unset the variable"
            )
        lease = _Lease(UUID(granted["lease_id"]), time.monotonic())
        self.held[lease.id] = lease
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())
        return lease

    async def _open(self) -> PrefectClient:
        if self._client is None:
            client = get_client()
            await client.__aenter__()
            self._client = client
        return self._client

    def _release(self, lease: _Lease) -> None:
        if self.held.pop(lease.id, None) is not None:
            self._background(self._decrement(lease))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        # kept until done, and awaited by aclose: a release must reach Prefect before the client closes
        task = asyncio.get_running_loop().create_task(work)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _decrement(self, lease: _Lease) -> None:
        try:
            client = await self._open()
            await client.release_concurrency_slots_with_lease(lease_id=lease.id)
        except Exception:
            logger.exception("could not give back a slot of %r; it returns when its lease ends", self.name)

    async def _renew(self) -> None:
        """Keep the leases of held slots alive: a request may take longer than one lease."""
        while self.held:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            client = await self._open()
            for lease_id in list(self.held):
                try:
                    await client.renew_concurrency_lease(lease_id=lease_id, lease_duration=LEASE_SECONDS)
                except Exception as exc:  # a lease given back meanwhile is no loss
                    if lease_id in self.held:
                        logger.warning("could not renew a lease on a slot of %r: %s", self.name, exc)


class GloballyLimited:
    """An analyser whose every request holds a slot of the Prefect global concurrency limit ``name``."""

    def __init__(self, analyser: Analyser, name: str) -> None:
        self.analyser = analyser
        self.slots = SlotLeases(name)

    @property
    def model(self) -> str:
        return self.analyser.model

    @property
    def prompt_version(self) -> str:
        return self.analyser.prompt_version

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        async with self.slots.slot():
            return await self.analyser.analyse(posting)

    async def aclose(self) -> None:
        await self.slots.aclose()


async def ensure_global_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit ``name`` with ``limit`` slots, or set an existing one's to it."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        else:
            await client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
