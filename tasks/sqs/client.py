"""Building an SQS client for the configured endpoint, and mapping its errors to ours."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from jobping.errors import ConfigurationError, TransientError
from jobping.settings import AWS_ENDPOINT, MAX_RECEIVE_WAIT_SECONDS, Settings, SqsSettings
from tasks.sqs import emulator

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
READ_MARGIN_SECONDS = 10
BOTO_MAX_ATTEMPTS = 4
# the emulator accepts any credentials; never used against AWS
EMULATOR_CREDENTIALS = {"aws_access_key_id": "jobping-emulator", "aws_secret_access_key": "jobping-emulator"}
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "RequestThrottled",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
        "AWS.SimpleQueueService.NonExistentQueue",
    }
)


class QueueUnavailableError(TransientError):
    """SQS could not be reached or answered with a retryable error."""


class QueueConfigurationError(ConfigurationError):
    """SQS refused a request in a way no retry fixes (credentials, permissions, names)."""


def _config() -> Config:
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        # a long poll may hold the connection for its whole wait, which a call that names none
        # takes from the queue's own default
        read_timeout=MAX_RECEIVE_WAIT_SECONDS + READ_MARGIN_SECONDS,
        retries={"mode": "standard", "max_attempts": BOTO_MAX_ATTEMPTS},
    )


def make_sqs_client(settings: Settings, *, start_emulator: bool = True) -> SQSClient:
    """An SQS client for the configured endpoint; starts the embedded emulator when unset.

    With ``start_emulator=False`` (commands that only read) the emulator is used only if it
    already runs; the caller checks :func:`emulator.answers` first.
    """
    if settings.sqs.credentials_block:
        # prefect-aws is imported only when a block is named: importing it slows every start-up
        from prefect_aws import AwsCredentials  # noqa: PLC0415

        block = AwsCredentials.load(settings.sqs.credentials_block, _sync=True)  # type: ignore[call-arg]
        # only get_client honours the block's endpoint_url, a boto3 session's client does not
        client: SQSClient = block.get_client("sqs")  # type: ignore[union-attr]
        return client
    if settings.sqs.uses_emulator:
        if start_emulator:
            emulator.ensure_running(settings)
        return _client(settings.sqs, settings.sqs.emulator_url, EMULATOR_CREDENTIALS)
    return _endpoint_client(settings.sqs)


def _endpoint_client(sqs: SqsSettings, config: Config | None = None) -> SQSClient:
    """A client for JOBPING_SQS_ENDPOINT_URL: AWS through the standard chain, or another endpoint."""
    if sqs.endpoint_url == AWS_ENDPOINT:
        return _client(sqs, None, None, config)
    # a local endpoint needs some credentials, but never the user's real ones by surprise
    has_own = boto3.Session().get_credentials() is not None
    return _client(sqs, sqs.endpoint_url, None if has_own else EMULATOR_CREDENTIALS, config)


def _client(
    sqs: SqsSettings, endpoint_url: str | None, credentials: dict[str, str] | None, config: Config | None = None
) -> SQSClient:
    keys = credentials or {}
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=sqs.region,
        config=config or _config(),
        aws_access_key_id=keys.get("aws_access_key_id"),
        aws_secret_access_key=keys.get("aws_secret_access_key"),
    )


def translate(exc: Exception, doing: str) -> Exception:
    """Our error for a boto error: transient ones may be retried, the rest are configuration."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = f"SQS refused {doing}: {code} {error.get('Message', '')}".strip()
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return QueueUnavailableError(message)
        return QueueConfigurationError(message)
    if isinstance(exc, EndpointConnectionError | BotoCoreError):
        return QueueUnavailableError(f"SQS unreachable while {doing}: {exc}")
    return exc


# a configured endpoint that does not answer in this long is reported at once, before any work
REACHABLE_TIMEOUT_SECONDS = 5


def ensure_reachable(settings: Settings) -> str:
    """Make sure SQS answers within seconds, healing what can be healed; say where it is.

    The embedded emulator (named directly, or through the stack's credentials block while that
    block still points at it) is started when it does not answer, as `make demo` does; any
    other endpoint that does not answer raises :class:`QueueUnavailableError` in one line.
    """
    if settings.sqs.credentials_block:
        endpoint = _block_endpoint(settings.sqs.credentials_block)
        if endpoint is not None and endpoint.rstrip("/") == settings.sqs.emulator_url:
            emulator.ensure_running(settings)
            return endpoint
        # a block of the user's own (AWS, or another endpoint): only the flow's client can tell
        return endpoint or "AWS (block " + settings.sqs.credentials_block + ")"
    if settings.sqs.uses_emulator:
        emulator.ensure_running(settings)
        return settings.sqs.emulator_url
    check_reachable(settings.sqs)
    return settings.sqs.endpoint_url or "AWS"


def _block_endpoint(block_name: str) -> str | None:
    """The endpoint URL the prefect-aws credentials block names (None: AWS itself)."""
    from prefect_aws import AwsCredentials  # noqa: PLC0415

    try:
        block = AwsCredentials.load(block_name, _sync=True)  # type: ignore[call-arg]
    except ValueError as exc:
        raise QueueConfigurationError(
            f"no AwsCredentials block {block_name!r} (JOBPING_AWS_CREDENTIALS_BLOCK): create it, or `make up`"
        ) from exc
    endpoint = block.aws_client_parameters.endpoint_url  # type: ignore[union-attr]
    return str(endpoint) if endpoint else None


def check_reachable(settings: SqsSettings) -> None:
    """Raise within seconds when the configured SQS endpoint does not answer or has no credentials."""
    config = Config(
        connect_timeout=REACHABLE_TIMEOUT_SECONDS,
        read_timeout=REACHABLE_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": 1},
    )
    sqs = _endpoint_client(settings, config)
    where = settings.endpoint_url or "AWS"
    try:
        sqs.get_queue_url(QueueName=settings.queue_name)
    except ClientError:
        return  # it answered: a missing queue or a refusal is for the flow to handle
    except NoCredentialsError as exc:
        raise QueueConfigurationError(f"no AWS credentials for SQS at {where}: set them up (aws configure)") from exc
    except (EndpointConnectionError, BotoCoreError) as exc:
        raise QueueUnavailableError(
            f"SQS at {where} does not answer ({type(exc).__name__}): start it, or fix JOBPING_SQS_ENDPOINT_URL"
        ) from exc
