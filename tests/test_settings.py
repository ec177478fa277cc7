"""The settings tree reads the variables the README documents, each into one field of one section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobping.profile import Profile
from jobping.settings import LlmSettings, Settings
from tasks.llm.factory import make_analyser, prompt_version

README = Path(__file__).parent.parent / "README.md"
# a value each documented variable accepts, other than its default
VALUES = {
    "JOBPING_DATA_DIR": "/tmp/jobping-settings-test",
    "JOBPING_LAKE_URL": "s3://bucket/prefix",
    "JOBPING_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "JOBPING_S3_MAX_RETRIES": "2",
    "JOBPING_SQS_ENDPOINT_URL": "http://127.0.0.1:9324",
    "JOBPING_AWS_CREDENTIALS_BLOCK": "my-aws",
    "JOBPING_AWS_REGION": "eu-central-1",
    "JOBPING_QUEUE_NAME": "other-queue",
    "JOBPING_VISIBILITY_TIMEOUT_SECONDS": "90",
    "JOBPING_RECEIVE_WAIT_SECONDS": "5",
    "JOBPING_SCRAPE_SOURCE": "sample",
    "JOBPING_SCRAPE_PAUSE_SECONDS": "2.5",
    "JOBPING_SCRAPE_RETRY_SECONDS": "30",
    "JOBPING_PROFILE_PATH": "/tmp/profile.toml",
    "JOBPING_EMULATOR_PORT": "9400",
    "JOBPING_PREFECT_PORT": "4300",
    "JOBPING_TIMEZONE": "Europe/Berlin",
    "JOBPING_WORKER_QUERY_SECONDS": "2",
    "JOBPING_RETENTION_DAYS": "7",
    "JOBPING_LOG_MAX_BYTES": "65536",
    "JOBPING_LOG_BACKUPS": "2",
    "OPENAI_API_KEY": "sk-settings-test",
    "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
    "JOBPING_OPENAI_SECRET_BLOCK": "my-openai",
    "JOBPING_LLM_MODEL": "gpt-5-mini",
    "JOBPING_LLM_TEMPERATURE": "0.5",
    "JOBPING_LLM_TIMEOUT_SECONDS": "12",
    "JOBPING_LLM_MAX_RETRIES": "4",
    "JOBPING_LLM_CONCURRENCY": "3",
    "JOBPING_LLM_DESCRIPTION_CHARS": "1000",
    "JOBPING_LLM_MAX_OUTPUT_TOKENS": "300",
    "JOBPING_LLM_PRICES": '{"my-model": {"input_per_million": 1, "output_per_million": 2}}',
    "JOBPING_NOTIFY_BLOCK": "slack-webhook/jobping",
    "JOBPING_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/jobping",
    "JOBPING_NOTIFY_MIN_SCORE": "70",
    "JOBPING_NOTIFY_TIMEOUT_SECONDS": "3",
    "JOBPING_BOARD_ALERT_RUNS": "5",
    "JOBPING_SCRAPE_PROXIES": "user:pass@proxy.example:3128",
    "JOBPING_SCRAPE_PROXIES_BLOCK": "jobping-proxies",
    "JOBPING_SCRAPE_CA_CERT": "/etc/ssl/proxy-ca.pem",
}


def documented() -> list[str]:
    return re.findall(r"^\| `((?:JOBPING|OPENAI)_[A-Z_0-9]+)` \|", README.read_text(encoding="utf-8"), re.MULTILINE)


def flat(settings: Settings) -> dict[str, object]:
    """Every field of every section, by its dotted path."""
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if hasattr(type(value), "model_fields"):
            values.update({f"{name}.{field}": getattr(value, field) for field in type(value).model_fields})
        else:
            values[name] = value
    return values


def test_every_documented_variable_has_a_value_to_try() -> None:
    assert sorted(documented()) == sorted(VALUES)


@pytest.mark.parametrize("variable", sorted(VALUES))
def test_each_documented_variable_sets_exactly_one_field(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VALUES:
        monkeypatch.delenv(name, raising=False)
    before = flat(Settings())
    monkeypatch.setenv(variable, VALUES[variable])
    after = flat(Settings())
    changed = [path for path in before if before[path] != after[path]]
    assert len(changed) == 1, (variable, changed)


def test_the_scrape_flow_s_prompt_version_is_the_analyser_s_without_building_it() -> None:
    profile = Profile(wanted_titles=["data engineer"])
    offline, llm = LlmSettings(), LlmSettings(api_key="sk-x", model="gpt-5-mini")
    assert not offline.configured
    assert prompt_version(offline, profile) == make_analyser(offline, profile).prompt_version
    assert prompt_version(llm, profile) == make_analyser(llm, profile).prompt_version
    assert prompt_version(llm, profile) != prompt_version(offline, profile)
