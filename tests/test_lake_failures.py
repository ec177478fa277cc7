"""Which failures of a lake write are passing (Prefect retries the batch) and which fail fast."""

from __future__ import annotations

import errno

import pytest
from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError

from jobping.errors import TransientError
from storage.failures import passing, transient_when_passing

# what delta-rs and object_store raised here, each in the shape they raise it
S3_PUT = "Failed to parse parquet: External: Generic S3 error: Error performing PUT http://127.0.0.1:44519/lake/t/part-0.zstd.parquet in 102ms, after 1 retries, max_retries: 1, retry_timeout: 180s  - "  # noqa: E501
PASSING = {
    "S3 503 SlowDown": DeltaError(
        S3_PUT + "Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>"
    ),
    "S3 500 InternalError": DeltaError(S3_PUT + "Server returned non-2xx status code: 500 Internal Server Error: "),
    "S3 429": DeltaError(S3_PUT + "Server returned non-2xx status code: 429 Too Many Requests: "),
    "a timeout": DeltaError("Generic S3 error: Error performing PUT http://s3/x - HTTP error: operation timed out"),
    "a connection reset": DeltaError("Generic S3 error: HTTP error: error sending request: connection reset by peer"),
    "the store restarting": OSError(
        "Kernel error -> Generic S3 error\n  \x1b[31m↳\x1b[0m error sending request\n   \x1b[31m↳\x1b[0m "
        "tcp connect error\n    \x1b[31m↳\x1b[0m Connection refused (os error 111)\n"
    ),
    "a commit race delta-rs gave up on": CommitFailedError("Transaction failed: Max commit attempts (15) exceeded"),
    "a reset socket": ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    "a socket timeout": TimeoutError("timed out"),
}
FAILING_FAST = {
    "a file where a folder should be": DeltaError(
        "Failed to parse parquet: External: Generic LocalFileSystem error: Unable to open file: Not a directory (os error 20)"  # noqa: E501
    ),
    "a full disk": DeltaError(
        "Failed to parse parquet: External: Generic LocalFileSystem error: Unable to copy data to file: "
        "No space left on device (os error 28)"
    ),
    "permission denied": PermissionError(errno.EACCES, "Permission denied", "/lake/enriched_jobs_history"),
    "S3 access denied": DeltaError(S3_PUT + "Server returned non-2xx status code: 403 Forbidden: <Code>AccessDenied"),
    "a missing bucket": DeltaError(S3_PUT + "Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket"),
    "a schema error": SchemaMismatchError("Cannot cast schema, number of fields does not match: 3 vs 2"),
    "our own bug": ValueError("the frame has no column job_key; timeout while reading it is no excuse"),
}


@pytest.mark.parametrize("error", PASSING.values(), ids=PASSING.keys())
def test_a_passing_storage_failure_becomes_a_transient_error_raised_from_it(error: Exception) -> None:
    assert passing(error)
    with pytest.raises(TransientError, match="passing reason") as raised, transient_when_passing():
        raise error
    assert raised.value.__cause__ is error
    assert "\n" not in str(raised.value)
    assert "\x1b" not in str(raised.value)


@pytest.mark.parametrize("error", FAILING_FAST.values(), ids=FAILING_FAST.keys())
def test_damage_and_bugs_are_raised_as_they_are_so_the_run_fails_fast(error: Exception) -> None:
    assert not passing(error)
    with pytest.raises(type(error)) as raised, transient_when_passing():
        raise error
    assert raised.value is error
