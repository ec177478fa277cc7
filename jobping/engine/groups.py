"""Job groups while draining: which stored posting a new one is the same job as, and whose analysis it reuses.

The lake says once per drain which group keys it holds, and, for the keys a batch meets, their
members' descriptions and analyses (one read per such batch). A posting this drain places joins
its key's members at once, its analysis still to come: a cross-post in a later batch waits for
that analysis instead of paying for a second one. A drain holds at most MAX_HELD_MEMBERS members
of keys whose members are all in the lake (or whose batches wrote no row for them): past that, it
forgets the keys met least recently, and reads them back from the lake when a later batch meets
them. jobping/grouping.py decides; this keeps the members.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from jobping.analysis import AnalysisResult
from jobping.contract import Envelope
from jobping.engine.ports import AnalysisStore, Grouping, StoredMember
from jobping.grouping import Member, assign, fingerprint, fingerprints, group_key

SHINGLE_TYPECODE = "I"
# members of settled keys a drain holds before it forgets the least recently met: a night of the default
# searches holds them all, since a re-read scans every file of the history; they take a few megabytes,
# as the bench's memory harness measures them
MAX_HELD_MEMBERS = 2_000


@dataclass
class _Known:
    job_key: str
    job_group: str
    # the description's shingles as 4-byte values: a frozenset of Python ints costs several times as
    # much per posting, which a long drain holds for every member (bench/RESULTS.md, Memory)
    shingles: array[int]
    # its own analysis under the current prompt: resolved when known, None when it has none
    result: asyncio.Future[AnalysisResult | None]
    # it reuses another member's analysis: it will have none of its own
    reusing: bool = False
    # True: its row is in the lake; False: its batch is over with no row for it; None: its batch is not over
    stored: bool | None = None
    # our scrape flow sent it: only then does it lend its analysis to a scraped posting
    scraped: bool = False

    def member(self) -> Member:
        pending = not self.result.done()
        own = not self.reusing and (pending or (not self.result.cancelled() and self.result.result() is not None))
        return Member(self.job_key, self.job_group, frozenset(self.shingles), analysed=own, scraped=self.scraped)


def _compact(fp: frozenset[int]) -> array[int]:
    # crc32 values: unsigned, 32 bits
    return array(SHINGLE_TYPECODE, sorted(fp))


@dataclass
class Placement:
    """A posting placed in its group; it settles with its analysis (or None when it got none)."""

    grouping: Grouping
    source: _Known | None = None
    own: _Known | None = None

    async def reusable(self) -> AnalysisResult | None:
        """The analysis of the near-identical member, at no cost; None when there is none to reuse."""
        if self.source is None:
            return None
        result = await asyncio.shield(self.source.result)
        if result is None:
            return None
        return result.model_copy(update={"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0})

    def settle(self, result: AnalysisResult | None, *, reused: bool) -> Grouping:
        """Record this posting's analysis for the postings placed after it; the grouping its row keeps."""
        if self.own is not None and not self.own.result.done():
            self.own.result.set_result(None if reused else result)
        if reused:
            return self.grouping
        return Grouping(self.grouping.group_key, self.grouping.job_group)

    def give_up(self) -> None:
        """This posting gets no row from its batch: no analysis to reuse, nothing to keep once its key is forgotten."""
        self.settle(None, reused=False)
        if self.own is not None:
            self.own.stored = False


@dataclass
class Groups:
    """The members of the group keys a drain has met and not forgotten: stored before it, and placed by it.

    A key is settled once none of its members is in a batch still running: the lake holds them all.
    Past ``max_held`` members, the settled keys met least recently are forgotten, and the lake gives
    them back (with ``stored_keys``) when a later batch meets them.
    """

    source: AnalysisStore
    prompt_version: str
    # read with the first batch that has a key: a run that receives nothing reads nothing
    stored_keys: set[str] | None = None
    members: dict[str, list[_Known]] = field(default_factory=dict)
    max_held: int = field(default_factory=lambda: MAX_HELD_MEMBERS)
    # the settled keys, least recently met first: forgotten from the front
    _settled: dict[str, None] = field(default_factory=dict, init=False, repr=False)
    _held: int = field(default=0, init=False, repr=False)
    # held across the lake reads of place_all and by forget: a batch meeting a key whose members another
    # batch is reading waits for them, and no key is forgotten between a read and the placements after it
    _changing: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def place_all(self, todo: Sequence[tuple[str, Envelope]]) -> dict[str, Placement]:
        """Each posting (by message id) placed in its group, after one read of the stored members of
        the keys these postings have that are not held: met by no earlier batch, or forgotten since."""
        keys = {message_id: key_of(envelope) for message_id, envelope in todo}
        wanted = {key for key in keys.values() if key is not None}
        async with self._changing:
            if wanted and self.stored_keys is None:
                self.stored_keys = await asyncio.to_thread(self.source.group_keys)
            missing = sorted(key for key in wanted - self.members.keys() if key in (self.stored_keys or set()))
            for key in wanted - self.members.keys():
                self.members[key] = []
            if missing:
                for stored in await asyncio.to_thread(self.source.group_members, missing):
                    self._add_stored(stored)
            return {message_id: self.place(envelope, keys[message_id]) for message_id, envelope in todo}

    async def forget(self, placements: Iterable[Placement]) -> None:
        """The batch of ``placements`` is over and its rows are durably written: each of their keys
        none of whose members is pending (its analysis, or its batch's write) is settled, and past
        ``max_held`` members the settled keys met least recently are forgotten, to be read back from
        the lake when a later posting meets them."""
        keys: set[str] = set()
        for placement in placements:
            if placement.own is not None and placement.own.stored is None:
                # the batch gave up on the postings it wrote no row for: the others are written
                placement.own.stored = True
            if placement.grouping.group_key is not None:
                keys.add(placement.grouping.group_key)
        async with self._changing:
            for key in keys:
                if any(known.stored is None or not known.result.done() for known in self.members.get(key, [])):
                    continue
                self._settled.pop(key, None)
                self._settled[key] = None
            while self._held > self.max_held and self._settled:
                key = next(iter(self._settled))
                del self._settled[key]
                members = self.members.pop(key, [])
                self._held -= len(members)
                # no keys read yet: the drain's first read of them finds this one
                if self.stored_keys is not None and any(known.stored for known in members):
                    self.stored_keys.add(key)

    def _add_stored(self, stored: StoredMember) -> None:
        result: asyncio.Future[AnalysisResult | None] = asyncio.get_running_loop().create_future()
        # only a member's own analysis, under today's prompt and profile, is reused
        current = stored.result is not None and stored.result.prompt_version == self.prompt_version
        result.set_result(stored.result if current and stored.analysis_of is None else None)
        shingles = _compact(fingerprint(stored.description))
        known = _Known(stored.job_key, stored.job_group, shingles, result, stored=True, scraped=stored.scraped)
        self._join(stored.group_key, known)

    def place(self, envelope: Envelope, key: str | None) -> Placement:
        """The posting's group among the members of its ``key`` known now; it joins them before this returns."""
        fp, read = fingerprints(envelope.posting.description)
        members = [known for known in self.members.get(key, []) if known.job_key != envelope.job_key] if key else []
        scraped = envelope.scraped
        placed = [known.member() for known in members]
        chosen = assign(envelope.job_key, key, fp, placed, scraped=scraped, read=read)
        source = next((known for known in members if known.job_key == chosen.analysis_of), None)
        future: asyncio.Future[AnalysisResult | None] = asyncio.get_running_loop().create_future()
        reusing = source is not None
        own = _Known(envelope.job_key, chosen.job_group, _compact(fp), future, reusing=reusing, scraped=scraped)
        if key is not None:
            self._join(key, own)
        return Placement(Grouping(key, chosen.job_group, chosen.analysis_of), source=source, own=own)

    def _join(self, key: str, known: _Known) -> None:
        self.members.setdefault(key, []).append(known)
        self._held += 1
        # met again: pending until its batch is over
        self._settled.pop(key, None)


def key_of(envelope: Envelope) -> str | None:
    posting = envelope.posting
    return group_key(posting.company, posting.title, posting.location, posting.is_remote)
