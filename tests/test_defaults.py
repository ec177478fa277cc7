"""Each default is declared once, in jobping/settings.py: code falls back on it, files that cannot import it agree."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobping.engine.drain import DrainOptions
from jobping.scaling import ScalePolicy
from jobping.settings import LlmSettings, ScaleSettings, Settings, SqsSettings
from tasks.sqs.messages import receive

ROOT = Path(__file__).resolve().parent.parent
FALLBACK = re.compile(r"^\$\{(?P<name>\w+):-(?P<value>[^}]*)\}$")
# prefect.yaml's schedules read JOBPING_TIMEZONE through a template, which needs a value
NEEDS_A_VALUE = {("deploy", "JOBPING_TIMEZONE")}


def default(section: type[Any], field: str) -> Any:
    return section.model_fields[field].default


def settings_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str]) -> dict[str, Any]:
    """The settings a process gets with exactly these jobping variables set."""
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("JOBPING_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
                patch.delenv(name)
        for name, value in variables.items():
            patch.setenv(name, value)
        patch.chdir(tmp_path)
        return Settings().model_dump()


def test_code_that_falls_back_on_a_default_falls_back_on_the_settings_one() -> None:
    options = DrainOptions()
    assert options.receive_wait_seconds == default(SqsSettings, "receive_wait_seconds")
    assert options.visibility_timeout_seconds == default(SqsSettings, "visibility_timeout_seconds")
    assert options.concurrency == default(LlmSettings, "concurrency")
    assert ScalePolicy() == ScalePolicy(
        default(ScaleSettings, "max_consumers"),
        default(ScaleSettings, "messages_per_consumer"),
        default(ScaleSettings, "scale_activation_messages"),
    )
    assert inspect.signature(receive).parameters["wait_seconds"].default == default(SqsSettings, "receive_wait_seconds")


def test_compose_passes_jobping_variables_on_and_never_writes_a_setting_s_default_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    defaults = settings_with(monkeypatch, tmp_path, {})
    checked = 0
    for service, spec in services.items():
        for name, value in dict(spec.get("environment") or {}).items():
            if not name.startswith("JOBPING_") or value is None:
                # no value: the host's variable when set, else the setting's own default
                continue
            fallback = FALLBACK.match(str(value))
            given = fallback.group("value") if fallback else str(value)
            repeats = settings_with(monkeypatch, tmp_path, {name: given}) == defaults
            assert repeats == ((service, name) in NEEDS_A_VALUE), f"{service}: {name}: {value}"
            checked += 1
    assert checked >= len(NEEDS_A_VALUE)


def test_prefect_yaml_limits_analyse_runs_to_the_settings_default_of_max_consumers() -> None:
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    (analyse,) = [deployment for deployment in deployments if deployment["name"] == "analyse"]
    assert analyse["concurrency_limit"] == default(ScaleSettings, "max_consumers")


def test_the_defaults_the_readme_and_docs_quote_are_the_settings_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # the README's table of variables, and a variable's default quoted in prose: `JOBPING_<NAME>` (10)
    quoted = re.findall(r"^\| `((?:JOBPING|OPENAI)_[A-Z_0-9]+)` \| `([^`]*)` \|", readme, re.MULTILINE)
    for page in [readme, *(path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md")))]:
        quoted += re.findall(r"\b((?:JOBPING|OPENAI)_[A-Z_0-9]+)`?,? \(([0-9][0-9,.]*)\)", page)
    assert len(quoted) >= 30
    defaults = settings_with(monkeypatch, tmp_path, {})
    for name, value in quoted:
        given = value.replace(",", "")
        assert settings_with(monkeypatch, tmp_path, {name: given}) == defaults, f"{name} quoted as {value}"
