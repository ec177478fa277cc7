"""How many analyse runs a queue's depth calls for: KEDA's aws-sqs-queue rule, as plain arithmetic.

``desired = min(max_consumers, ceil((visible + in flight) / messages_per_consumer))``, and none
below the activation threshold: an idle queue scales to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobping.engine.ports import QueueDepth
from jobping.settings import ACTIVATION_MESSAGES, MAX_CONSUMERS, MESSAGES_PER_CONSUMER


@dataclass(frozen=True)
class ScalePolicy:
    max_consumers: int = MAX_CONSUMERS
    messages_per_consumer: int = MESSAGES_PER_CONSUMER
    activation_messages: int = ACTIVATION_MESSAGES

    def __post_init__(self) -> None:
        if min(self.max_consumers, self.messages_per_consumer, self.activation_messages) < 1:
            raise ValueError(f"every figure of a scale policy is at least 1: {self}")

    def desired(self, depth: QueueDepth) -> int:
        """Analyse runs wanted for ``depth``: in-flight messages count, being work a run has in hand."""
        queued = depth.visible + depth.in_flight
        if queued < self.activation_messages:
            return 0
        return min(self.max_consumers, math.ceil(queued / self.messages_per_consumer))

    def to_start(self, depth: QueueDepth, active: int) -> int:
        """New runs to create beside the ``active`` ones (scheduled, waiting for a slot, or running)."""
        return max(0, self.desired(depth) - active)
