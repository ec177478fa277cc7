"""One settings tree for every entry point, read from ``JOBPING_*`` variables and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_QUEUE_NAME = "jobping-jobs-to-filter"
DLQ_SUFFIX = "-dlq"
# sqs allows 80 characters in a queue name, and the dlq name adds a suffix
MAX_QUEUE_NAME_CHARS = 80 - len(DLQ_SUFFIX)
AWS_ENDPOINT = "aws"
EMULATOR_DEFAULT_PORT = 9330


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


class Settings(BaseSettings):
    """Everything jobping reads from its environment, built once at the edge."""

    model_config = SettingsConfigDict(
        env_prefix="JOBPING_",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="Folder for the Parquet lake (<data>/lake) and the DuckDB catalog.",
    )
    lake_url: str | None = Field(
        default=None,
        description=(
            "Unset: the lake is the folder <data>/lake. 's3://bucket/prefix': a lake on object storage, "
            "which analyse workers on several machines can share."
        ),
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Unset: AWS S3. An http(s) URL: an S3-compatible store for the lake (MinIO, moto).",
    )
    sqs_endpoint_url: str | None = Field(
        default=None,
        description=(
            "Unset: the embedded SQS emulator on 127.0.0.1. A URL: that endpoint "
            "(ElasticMQ, LocalStack). 'aws': real AWS SQS."
        ),
    )
    aws_region: str = Field(default="us-east-1", min_length=1, description="AWS region of the queues.")
    aws_credentials_block: str | None = Field(
        default=None,
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
        default=60,
        ge=1,
        le=43_200,
        description="How long a received message stays hidden before redelivery.",
    )
    receive_wait_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        description="Long-poll wait of each receive; the drain ends on an empty receive.",
    )
    scrape_source: Literal["jobspy", "sample"] = Field(
        default="jobspy",
        description="Where postings come from: live job boards or the bundled sample.",
    )
    profile_path: Path | None = Field(
        default=None,
        description=("The user's profile (TOML). Unset: ./profile.toml if present, else the bundled example profile."),
    )
    emulator_host: str = Field(default="127.0.0.1", description="Address the embedded SQS emulator binds.")
    emulator_port: int = Field(
        default=EMULATOR_DEFAULT_PORT,
        ge=1,
        le=65_535,
        description="Port of the embedded SQS emulator.",
    )

    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "JOBPING_OPENAI_API_KEY"),
        description="OpenAI API key (OPENAI_API_KEY). Never logged or stored.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "JOBPING_OPENAI_BASE_URL"),
        description="An OpenAI-compatible server (Ollama, vLLM, llama.cpp), e.g. http://127.0.0.1:11434/v1.",
    )
    openai_secret_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the OpenAI API key."
    )
    llm_model: str = Field(default=DEFAULT_LLM_MODEL, min_length=1, max_length=200, description="Chat model to ask.")
    llm_temperature: float | None = Field(
        default=0.0, ge=0, le=2, description="Sampling temperature; empty for models that refuse one."
    )
    llm_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="Timeout of one LLM request.")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries of one LLM request inside the SDK.")
    llm_concurrency: int = Field(default=16, ge=1, le=512, description="LLM requests in flight at once.")
    llm_description_chars: int = Field(
        default=6_000, ge=200, le=200_000, description="Characters of a description sent to the LLM."
    )
    llm_max_output_tokens: int = Field(default=800, ge=100, le=16_000, description="Cap on one answer's tokens.")
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description='USD per million tokens by model, JSON: {"my-model": {"input_per_million": 1, ...}}.',
    )

    prefect_port: int = Field(
        default=4200, ge=1, le=65_535, description="Port of the Prefect server and UI that `make up` starts."
    )
    timezone: str = Field(default="UTC", description="Timezone of the nightly schedule, e.g. Europe/Berlin.")
    worker_query_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often the worker that `make up` starts looks for runs."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}, use an IANA name such as Europe/Berlin") from exc
        return value

    @field_validator("openai_base_url", "s3_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.strip().startswith(("http://", "https://")):
            raise ValueError(f"must be unset or an http(s) URL, not {value!r}")
        return value.strip()

    @field_validator("llm_prices", mode="after")
    @classmethod
    def _with_defaults(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        # an override adds or replaces models, it does not forget the others
        return {**DEFAULT_PRICES, **value}

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url or self.openai_secret_block)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # the catalog's views hold absolute paths so it opens from any directory
        resolved = value.expanduser().resolve()
        _no_glob(str(resolved))
        return resolved

    @field_validator("lake_url")
    @classmethod
    def _lake_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ValueError(f"must be unset or s3://bucket/prefix, not {value!r}")
        _no_glob(value)
        return value

    @field_validator("sqs_endpoint_url")
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
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def lake_location(self) -> str:
        """Where the lake is: s3://bucket/prefix, or the absolute path of <data>/lake."""
        return self.lake_url or str(self.lake_dir)

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "jobping.duckdb"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def uses_emulator(self) -> bool:
        return self.sqs_endpoint_url is None

    @property
    def emulator_url(self) -> str:
        return f"http://{self.emulator_host}:{self.emulator_port}"
