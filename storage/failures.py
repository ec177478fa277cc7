"""Which failures of a lake write pass by themselves: those the engine may retry, as a TransientError."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from deltalake.exceptions import CommitFailedError, DeltaError

from jobping.errors import TransientError
from jobping.text import one_line

# what object_store (delta-rs's S3 client) says of a request that S3 may answer on a later try
PASSING = re.compile(
    r"status code: (5\d\d|429)\b|\b(SlowDown|Throttl\w*|RequestTimeout|ServiceUnavailable|InternalError)\b"
    r"|\b(timed out|timeout)\b|connection (reset|closed|aborted|refused)|broken pipe|error sending request",
    re.IGNORECASE,
)


def passing(error: BaseException) -> bool:
    """True when a lake write that raised ``error`` may succeed if the batch is written again.

    Passing: a 5xx or 429 answer from the store, throttling (SlowDown), a timeout, a connection
    reset, closed or refused (the store restarting), and a commit race delta-rs gave up on
    (CommitFailedError: other writers kept taking the next version). Anything else fails fast,
    because writing again meets it again: a schema error, a file where a folder should be,
    permission denied, a full disk, a missing bucket, and every error of our own code.
    """
    if isinstance(error, CommitFailedError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, DeltaError | OSError):
        return PASSING.search(str(error)) is not None
    return False


@contextmanager
def transient_when_passing() -> Iterator[None]:
    """Raise a write's passing failure as a TransientError (from it); every other error as it is."""
    try:
        yield
    except (DeltaError, OSError) as exc:
        if not passing(exc):
            raise
        # object_store's errors come as indented trees, with colours
        raise TransientError(one_line(f"the lake write failed for a passing reason: {exc}")) from exc
