"""The messages a drain holds invisible, from their receive until their batch settles them.

The heartbeat extends what is held; a batch lets its messages go before it deletes, releases or
re-times any of them. Both happen under one lock, so an extension is never sent for a message
already deleted (SQS would refuse its receipt handle: a wasted request), nor sent after a
release and so hiding again a message made visible on purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from jobping.engine.ports import Queue, ReceivedMessage


class Holding:
    """Messages held by this drain, by receipt handle. Thread-safe: batches settle in threads."""

    def __init__(self) -> None:
        self._held: dict[str, ReceivedMessage] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, messages: Iterable[ReceivedMessage]) -> None:
        with self._lock:
            self._held.update((message.receipt_handle, message) for message in messages)

    def let_go(self, messages: Iterable[ReceivedMessage]) -> None:
        """No extension of ``messages`` is sent from now on; one being sent is finished when this returns."""
        with self._lock:
            for message in messages:
                self._held.pop(message.receipt_handle, None)

    def extend(self, queue: Queue, seconds: int) -> int:
        """Keep every held message invisible for ``seconds`` more; how many were extended."""
        with self._lock:
            # held through the request: a batch letting go waits for it, then settles
            held = list(self._held.values())
            return queue.extend(held, seconds) if held else 0
