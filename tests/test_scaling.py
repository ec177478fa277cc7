"""The autoscaler's arithmetic: runs in proportion to the queue's depth, capped, zero when idle."""

from __future__ import annotations

import pytest

from jobping.engine.ports import QueueDepth
from jobping.scaling import ScalePolicy


def depth(visible: int, in_flight: int = 0) -> QueueDepth:
    return QueueDepth("jobping-postings", visible=visible, in_flight=in_flight, delayed=0)


@pytest.mark.parametrize(
    ("visible", "in_flight", "desired"),
    [(0, 0, 0), (1, 0, 1), (200, 0, 1), (201, 0, 2), (150, 100, 2), (0, 5, 1), (10_000, 0, 4)],
)
def test_desired_runs_follow_the_depth_counting_in_flight_and_are_capped(
    visible: int, in_flight: int, desired: int
) -> None:
    assert ScalePolicy(max_consumers=4, messages_per_consumer=200).desired(depth(visible, in_flight)) == desired


def test_below_the_activation_threshold_nothing_runs() -> None:
    policy = ScalePolicy(messages_per_consumer=10, activation_messages=5)
    assert policy.desired(depth(4)) == 0
    assert policy.desired(depth(3, 2)) == 1


def test_only_the_missing_runs_are_started() -> None:
    policy = ScalePolicy(max_consumers=4, messages_per_consumer=100)
    assert policy.to_start(depth(350), active=1) == 3
    assert policy.to_start(depth(350), active=4) == 0
    # more active than wanted (the queue shrank): none started, none stopped; each run ends when the queue is empty
    assert policy.to_start(depth(50), active=3) == 0


def test_a_policy_of_zeros_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ScalePolicy(max_consumers=0)
