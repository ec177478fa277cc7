"""A ``JOBPING_*`` variable that nothing reads is named, with the one meant, wherever it is set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

from flows.compact import compact_lake
from jobping.environment import READ_ELSEWHERE, settings_variables, unknown_variables
from jobping.settings import Settings
from tests.waiting import wait_until

ROOT = Path(__file__).parent.parent
# a value that must never be shown: a misspelt variable may well hold a key
SECRET_VALUE = "sk-misspelt-" + "5ecret" * 4
LOG_DEADLINE_SECONDS = 30.0
# where a JOBPING_* name can be read: code, deployments, compose files, the Makefile
READERS = ("*.py", "*.yaml", "*.yml", "Makefile", "Dockerfile", "*.sh", "*.toml")
SKIPPED = {".venv", ".git", "node_modules"}
# as a user might set them, and the name meant
TYPOS = {
    "scrape source": ("JOBPING_SCRAPE_SOURSE", "JOBPING_SCRAPE_SOURCE"),
    "lower case": ("jobping_prefect_prot", "JOBPING_PREFECT_PORT"),
    "a word short": ("JOBPING_NOTIFY_WEBHOOK", "JOBPING_NOTIFY_WEBHOOK_URL"),
    "one letter short": ("JOBPING_LLM_CONCURENCY", "JOBPING_LLM_CONCURRENCY"),
}
# misspelt on purpose, by the tests of the warning and the docstrings that show it
MISSPELT = {typo.upper() for typo, _ in TYPOS.values()} | {"JOBPING_QUEUE_NAM", "JOBPING_ZZZ"}
# no settings, made up by the tests of the rule that tells a secret by its name (JOBPING_SCRAPE_PROXIES
# is issue 28's, not read yet)
MADE_UP = {"JOBPING_SCRAPE_PROXIES", "JOBPING_SOME_FUTURE_TOKEN", "JOBPING_EXTRA_URL", "JOBPING_SOME_PASSWORD"}


def names_in_the_code() -> set[str]:
    found: set[str] = set()
    for pattern in READERS:
        for path in ROOT.rglob(pattern):
            if SKIPPED & set(path.relative_to(ROOT).parts):
                continue
            # in python a variable's name is a string (a constant such as JOBPING_FLOWS is not one);
            # a name ends in a letter or digit: JOBPING_LLM_ is a prefix being built, not a variable
            quoted = r"""(?<=["'`])""" if path.suffix == ".py" else r"\b"
            found |= set(re.findall(quoted + r"JOBPING_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    return found - MISSPELT - MADE_UP


def test_no_jobping_variable_the_code_reads_or_sets_is_called_unknown() -> None:
    named = names_in_the_code()
    assert {"JOBPING_AWS_CREDENTIALS_BLOCK", "JOBPING_LLM_GLOBAL_LIMIT", "JOBPING_SAVE_SCREENSHOTS"} <= named
    assert unknown_variables(dict.fromkeys(named, "1"), ROOT / "no.env") == []


def test_every_alias_of_a_setting_is_known() -> None:
    known = settings_variables()
    assert {"OPENAI_API_KEY", "JOBPING_OPENAI_API_KEY", "JOBPING_SQS_ENDPOINT_URL", "JOBPING_NOTIFY_BLOCK"} <= known
    # read by a tool beside jobping, not by the settings
    assert not READ_ELSEWHERE & known


@pytest.mark.parametrize(("set_as", "meant"), TYPOS.values(), ids=TYPOS.keys())
def test_a_misspelt_variable_is_named_with_the_nearest_known_one(set_as: str, meant: str, tmp_path: Path) -> None:
    (found,) = unknown_variables({set_as: SECRET_VALUE, "PATH": "/bin"}, tmp_path / ".env")
    assert (found.name, found.nearest) == (set_as, meant)
    assert found.line() == (
        f"{set_as} (set in the environment) is not a jobping setting and is ignored: did you mean {meant}?"
    )


def test_a_name_like_none_is_named_without_a_guess(tmp_path: Path) -> None:
    (found,) = unknown_variables({"JOBPING_ZZZ": "1"}, tmp_path / ".env")
    assert found.nearest is None


def test_a_misspelt_variable_in_dotenv_is_named_once_and_its_value_is_never_shown(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"JOBPING_QUEUE_NAM={SECRET_VALUE}\nJOBPING_QUEUE_NAME=ok\nOTHER=1\n", encoding="utf-8")
    found = unknown_variables({"JOBPING_QUEUE_NAM": SECRET_VALUE}, dotenv)
    assert [(u.name, u.where, u.nearest) for u in found] == [
        ("JOBPING_QUEUE_NAM", "the environment", "JOBPING_QUEUE_NAME")
    ]
    (in_file,) = unknown_variables({}, dotenv)
    assert (in_file.where, in_file.nearest) == (str(dotenv), "JOBPING_QUEUE_NAME")
    assert SECRET_VALUE not in repr(in_file) + in_file.line()


@pytest.mark.usefixtures("prefect_api")
def test_a_flow_run_warns_in_its_log_about_a_misspelt_variable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_SCRAPE_SOURSE", SECRET_VALUE)
    state = compact_lake(return_state=True)
    assert state.is_completed()
    APILogHandler().flush()  # the run's logs reach the API in batches
    only_this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))

    def warned() -> list[str]:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=only_this_run)
        assert not [log.message for log in logs if SECRET_VALUE in log.message]
        return [log.message for log in logs if "JOBPING_SCRAPE_SOURSE" in log.message]

    assert wait_until(warned, timeout=LOG_DEADLINE_SECONDS, what="the run's warning in its logs") == [
        "JOBPING_SCRAPE_SOURSE (set in the environment) is not a jobping setting and is ignored: "
        "did you mean JOBPING_SCRAPE_SOURCE?"
    ]


# where tests/ may sleep: the one polling helper with a deadline, and the fakes' simulated latency
SLEEPS_ALLOWED_IN = {"waiting.py", "fakes.py"}
SLEEP = re.compile(r"\b(?:time|asyncio)\.sleep\b|\bfrom\s+(?:time|asyncio)\s+import\b[^\n]*\bsleep\b")


def test_tests_wait_for_a_condition_with_a_deadline_and_sleep_only_in_the_polling_helper() -> None:
    sleeping = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name not in SLEEPS_ALLOWED_IN
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SLEEP.search(line)
    ]
    assert sleeping == [], "use tests.waiting.wait_until (or an Event) instead of sleeping:\n" + "\n".join(sleeping)
