"""One settings tree for every entry point, read from ``JOBPING_*`` variables and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from jobping.scrape_settings import ScrapeSettings
from jobping.settings_base import Section

DEFAULT_QUEUE_NAME = "jobping-jobs-to-filter"
DLQ_SUFFIX = "-dlq"
# sqs allows 80 characters in a queue name, and the dlq name adds a suffix
MAX_QUEUE_NAME_CHARS = 80 - len(DLQ_SUFFIX)
AWS_ENDPOINT = "aws"
EMULATOR_DEFAULT_PORT = 9330
# the stack's own logs under <data>/run rotate at this size (10 MiB); bounds of the setting
LOG_MAX_BYTES = 10 * 1024 * 1024
MIN_LOG_BYTES = 1024
MAX_LOG_BYTES = 1024 * 1024 * 1024
# defaults that code outside the settings falls back on too (the engine's options, the autoscaler's
# policy, the queue's attributes): declared here once, read there
VISIBILITY_TIMEOUT_SECONDS = 60
RECEIVE_WAIT_SECONDS = 20
# sqs's longest long poll
MAX_RECEIVE_WAIT_SECONDS = 20
LLM_CONCURRENCY = 16
MAX_CONSUMERS = 4
MESSAGES_PER_CONSUMER = 200
ACTIVATION_MESSAGES = 1
NOTIFY_MIN_SCORE = 80


DEFAULT_LLM_MODEL = "gpt-4.1-mini"


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens."""

    input_per_million: float = Field(ge=0, le=10_000)
    output_per_million: float = Field(ge=0, le=10_000)


# list prices of small current models; override with JOBPING_LLM_PRICES (JSON)
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4.1-mini": ModelPrice(input_per_million=0.40, output_per_million=1.60),
    "gpt-4.1-nano": ModelPrice(input_per_million=0.10, output_per_million=0.40),
    "gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.60),
    "gpt-5-mini": ModelPrice(input_per_million=0.25, output_per_million=2.00),
    "gpt-5-nano": ModelPrice(input_per_million=0.05, output_per_million=0.40),
}


# the lake is read through glob patterns: these in its path would match other folders
GLOB_CHARACTERS = frozenset("[]*?{}")


def _no_glob(path: str) -> None:
    found = sorted(GLOB_CHARACTERS & set(path))
    if found:
        raise ValueError(f"{path!r} contains {' '.join(found)}: the lake's path may not hold glob characters")


def _http_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not value.strip().startswith(("http://", "https://")):
        raise ValueError(f"must be unset or an http(s) URL, not {value!r}")
    return value.strip()


HttpUrlText = Annotated[str | None, AfterValidator(_http_url)]


class SqsSettings(Section):
    """The queue, its DLQ, and the embedded emulator that stands in for SQS by default."""

    endpoint_url: str | None = Field(
        default=None,
        validation_alias="JOBPING_SQS_ENDPOINT_URL",
        description=(
            "Unset: the embedded SQS emulator on 127.0.0.1. A URL: that endpoint "
            "(ElasticMQ, LocalStack). 'aws': real AWS SQS."
        ),
    )
    region: str = Field(
        default="us-east-1",
        min_length=1,
        validation_alias="JOBPING_AWS_REGION",
        description="AWS region of the queues.",
    )
    credentials_block: str | None = Field(
        default=None,
        validation_alias="JOBPING_AWS_CREDENTIALS_BLOCK",
        description="Name of a prefect-aws AwsCredentials block used to reach SQS.",
    )
    queue_name: str = Field(
        default=DEFAULT_QUEUE_NAME,
        pattern=r"^[A-Za-z0-9_-]+$",
        min_length=1,
        max_length=MAX_QUEUE_NAME_CHARS,
        description="Main queue name; the dead-letter queue is '<name>-dlq'.",
    )
    visibility_timeout_seconds: int = Field(
        default=VISIBILITY_TIMEOUT_SECONDS,
        ge=1,
        le=43_200,
        description="How long a received message stays hidden before redelivery.",
    )
    receive_wait_seconds: int = Field(
        default=RECEIVE_WAIT_SECONDS,
        ge=0,
        le=MAX_RECEIVE_WAIT_SECONDS,
        description="Long-poll wait of each receive; the drain ends on an empty receive.",
    )
    emulator_host: str = Field(default="127.0.0.1", description="Address the embedded SQS emulator binds.")
    emulator_port: int = Field(
        default=EMULATOR_DEFAULT_PORT, ge=1, le=65_535, description="Port of the embedded SQS emulator."
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value != AWS_ENDPOINT and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be unset, '{AWS_ENDPOINT}', or an http(s) URL, not {value!r}")
        return value

    @property
    def dlq_name(self) -> str:
        return self.queue_name + DLQ_SUFFIX

    @property
    def uses_emulator(self) -> bool:
        return self.endpoint_url is None

    @property
    def emulator_url(self) -> str:
        return f"http://{self.emulator_host}:{self.emulator_port}"


class LlmSettings(Section):
    """Which LLM judges the postings, and how it is asked; unset, the offline analyser does."""

    model_config = SettingsConfigDict(env_prefix="JOBPING_LLM_")

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "JOBPING_OPENAI_API_KEY"),
        description="OpenAI API key (OPENAI_API_KEY). Never logged or stored.",
    )
    base_url: HttpUrlText = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "JOBPING_OPENAI_BASE_URL"),
        description="An OpenAI-compatible server (Ollama, vLLM, llama.cpp), e.g. http://127.0.0.1:11434/v1.",
    )
    secret_block: str | None = Field(
        default=None,
        validation_alias="JOBPING_OPENAI_SECRET_BLOCK",
        description="Name of a Prefect Secret block holding the OpenAI API key.",
    )
    model: str = Field(default=DEFAULT_LLM_MODEL, min_length=1, max_length=200, description="Chat model to ask.")
    temperature: float | None = Field(
        default=0.0, ge=0, le=2, description="Sampling temperature; empty for models that refuse one."
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="Timeout of one LLM request.")
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries of one LLM request inside the SDK.")
    concurrency: int = Field(
        default=LLM_CONCURRENCY,
        ge=1,
        le=512,
        description="LLM requests in flight at once: per analyse process, and with `make up` across all of them.",
    )
    global_limit: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A Prefect global concurrency limit every LLM request takes a slot of (`make up` sets it).",
    )
    description_chars: int = Field(
        default=6_000, ge=200, le=200_000, description="Characters of a description sent to the LLM."
    )
    max_output_tokens: int = Field(default=800, ge=100, le=16_000, description="Cap on one answer's tokens.")
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description='USD per million tokens by model, JSON: {"my-model": {"input_per_million": 1, ...}}.',
    )

    @field_validator("global_limit", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # JOBPING_LLM_GLOBAL_LIMIT= (empty) turns the global limit off, as for the stack's runs
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("prices", mode="after")
    @classmethod
    def _with_defaults(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        # an override adds or replaces models, it does not forget the others
        return {**DEFAULT_PRICES, **value}

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.base_url or self.secret_block)


class LakeSettings(Section):
    """Where the enriched jobs are stored, when not in the data dir."""

    s3_endpoint_url: HttpUrlText = Field(
        default=None,
        description="Unset: AWS S3. An http(s) URL: an S3-compatible store for the lake (MinIO, moto).",
    )
    s3_max_retries: int = Field(
        default=10,
        ge=0,
        le=100,
        description=(
            "Retries of one request of a batch's write to an S3 lake (5xx, throttling, timeouts, resets), with "
            "exponential backoff, before the write fails; Prefect then retries the batch whole."
        ),
    )
    url: str | None = Field(
        default=None,
        validation_alias="JOBPING_LAKE_URL",
        description="Unset: the folder <data>/lake. s3://bucket/prefix: object storage, shared by workers anywhere.",
    )

    @field_validator("url")
    @classmethod
    def _lake_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ValueError(f"must be unset or s3://bucket/prefix, not {value!r}")
        _no_glob(value)
        return value


class StackSettings(Section):
    """The local Prefect server, UI and worker that `make up` starts."""

    prefect_port: int = Field(
        default=4200, ge=1, le=65_535, description="Port of the Prefect server and UI that `make up` starts."
    )
    timezone: str = Field(default="UTC", description="Timezone of the nightly schedule, e.g. Europe/Berlin.")
    worker_query_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often the worker that `make up` starts looks for runs."
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        le=3_650,
        description=(
            "jobping's Prefect flow runs (with their task runs, logs and artifacts) that ended longer ago than "
            "this are deleted by the hourly maintenance (the compact deployment). The lake keeps every analysis."
        ),
    )
    log_max_bytes: int = Field(
        default=LOG_MAX_BYTES,
        ge=MIN_LOG_BYTES,
        le=MAX_LOG_BYTES,
        description="Size in bytes at which a stack process's log under <data>/run is rotated.",
    )
    log_backups: int = Field(
        default=5, ge=1, le=100, description="Rotated logs kept per stack process (<name>.log.1 the newest)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}, use an IANA name such as Europe/Berlin") from exc
        return value


# a count of queued messages the autoscaler acts on
Messages = Annotated[int, Field(ge=1, le=1_000_000)]


class ScaleSettings(Section):
    """How many analyse runs the autoscaler keeps going for the queue's depth."""

    max_consumers: int = Field(default=MAX_CONSUMERS, ge=1, le=1_000, description="Analyse runs at most, at once.")
    messages_per_consumer: Messages = Field(
        default=MESSAGES_PER_CONSUMER, description="Queued messages (visible and in flight) per analyse run."
    )
    scale_poll_seconds: float = Field(default=10.0, gt=0, le=3_600, description="How often the queue is looked at.")
    scale_activation_messages: Messages = Field(
        default=ACTIVATION_MESSAGES, description="Below this many queued messages, no analyse run is started."
    )


class NotifySettings(Section):
    """Pings: where a digest of new fitting jobs goes after each analyse run, and what fits."""

    model_config = SettingsConfigDict(env_prefix="JOBPING_NOTIFY_")

    min_score: int = Field(
        default=NOTIFY_MIN_SCORE, ge=0, le=100, description="A job fits at this fit_score or above (and apply)."
    )
    block: str | None = Field(
        default=None,
        min_length=3,
        max_length=300,
        description="A Prefect notification block, as '<block type>/<name>' (e.g. slack-webhook/jobping).",
    )
    webhook_url: SecretStr | None = Field(
        default=None, description="Without a block: the digest's JSON is POSTed here (http or https)."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, description="How long one send may take.")

    @property
    def configured(self) -> bool:
        """A block or a webhook is set: there is somewhere to send pings."""
        return self.block is not None or self.webhook_url is not None

    @field_validator("block", "webhook_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("JOBPING_NOTIFY_WEBHOOK_URL must start with http:// or https://")
        return value


class Settings(Section):
    """Everything jobping reads from its environment, built once at the edge, one section per part."""

    data_dir: Path = Field(
        default=Path("data"),
        description="Folder for the lake (<data>/lake, Delta tables), the DuckDB catalog and the local stack's state.",
    )
    scrape_source: Literal["jobspy", "sample"] = Field(
        default="jobspy",
        description="Where postings come from: live job boards or the bundled sample.",
    )
    profile_path: Path | None = Field(
        default=None,
        description="The user's profile (TOML). Unset: ./profile.toml if present, else the bundled example profile.",
    )
    # each section reads the environment itself, under the variable names above
    sqs: SqsSettings = Field(default_factory=SqsSettings, description="The queue, its DLQ and the emulator.")
    llm: LlmSettings = Field(default_factory=LlmSettings, description="The LLM and how it is asked.")
    lake: LakeSettings = Field(default_factory=LakeSettings, description="Where the lake is, if not in data_dir.")
    stack: StackSettings = Field(default_factory=StackSettings, description="What `make up` starts.")
    scale: ScaleSettings = Field(default_factory=ScaleSettings, description="The autoscaler of analyse runs.")
    notify: NotifySettings = Field(default_factory=NotifySettings, description="Pings of new fitting jobs.")
    scrape: ScrapeSettings = Field(default_factory=ScrapeSettings, description="Proxies and pauses of the live scrape.")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # the catalog's views hold absolute paths so it opens from any directory
        resolved = value.expanduser().resolve()
        _no_glob(str(resolved))
        return resolved

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def lake_location(self) -> str:
        """Where the lake is: s3://bucket/prefix, or the absolute path of <data>/lake."""
        return self.lake.url or str(self.lake_dir)

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "jobping.duckdb"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"
