"""JobSpy's search options: validated as JobSpy validates them, the country taken from the location, a pause
between a board's searches, and a blocked board retried with back-off while the others go on."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import jobspy
import pytest
import yaml
from jobspy.model import Country, JobPost, JobType, ScraperInput, Site
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter, TaskRunFilterFlowRunId
from prefect.exceptions import PrefectHTTPStatusError
from prefect.flows import load_flow_from_entrypoint
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError

from flows.scrape import SITE_RETRIES, fetch_site_postings, retry_delays, scrape
from jobping.errors import describe
from tasks.jobspy import source
from tasks.jobspy.search import JOBSPY_DEFAULT_COUNTRY, ScrapeParameters, country_of
from tasks.jobspy.source import pause_between_searches, scrape_site
from tests import jobspy_boards
from tests.waiting import wait_until

ROOT = Path(__file__).parent.parent
JOBSPY_COUNTRIES = [country.value for country in Country]


@pytest.fixture
def boards() -> Iterator[None]:
    with jobspy_boards.offline():
        yield


class RecordingBoard(jobspy_boards.OfflineBoard):
    """An offline board that keeps what JobSpy handed its scraper."""

    site = Site.INDEED
    received: ClassVar[list[ScraperInput]] = []

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        type(self).received.append(scraper_input)
        return super().scrape(scraper_input)


@pytest.fixture
def recording(boards: None) -> list[ScraperInput]:
    RecordingBoard.received = []
    jobspy.SCRAPER_MAPPING.update(dict.fromkeys([Site.INDEED, Site.LINKEDIN, Site.GLASSDOOR], RecordingBoard))
    return RecordingBoard.received


@pytest.mark.parametrize(
    ("location", "country"),
    [
        ("Berlin, Germany", Country.GERMANY),
        ("Austin, TX", Country.USA),
        ("London, United Kingdom", Country.UK),
        ("Zürich, switzerland", Country.SWITZERLAND),
        ("Istanbul, Turkey", Country.TURKEY),
        ("Remote", None),
        ("Berlin", None),
        ("Springfield, ZZ", None),
    ],
)
def test_a_location_s_country_is_read_as_jobspy_reads_countries(location: str, country: Country | None) -> None:
    assert country_of(location) == country


def test_every_jobspy_option_is_a_parameter_typed_as_jobspy_types_it() -> None:
    schema = ScrapeParameters.model_json_schema()
    # the form and the server's check offer exactly JobSpy's countries and job types
    assert schema["$defs"]["Country"]["enum"] == JOBSPY_COUNTRIES
    assert schema["$defs"]["JobType"]["enum"] == [job_type.value for job_type in JobType]
    options = set(ScrapeParameters.model_fields)
    jobspy_only = {"site_name", "search_term", "google_search_term", "location", "is_remote"}
    ours = {"proxies", "ca_cert", "description_format", "verbose"}  # set by jobping or its settings
    assert set(ScraperInput.model_fields) - jobspy_only - ours <= options
    for name, field in ScrapeParameters.model_fields.items():
        assert field.description, f"{name} has no help text"
    defaults = ScrapeParameters()
    assert defaults.linkedin_fetch_description is True
    assert "request per LinkedIn posting" in (
        ScrapeParameters.model_fields["linkedin_fetch_description"].description or ""
    )
    assert defaults.country_indeed is None


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"country_indeed": "germanyy"}, "country_indeed: Input should be 'argentina'"),
        ({"job_type": "fulltme"}, "job_type: Input should be 'fulltime'"),
        ({"distance": -1}, "distance"),
        ({"offset": -5}, "offset"),
        ({"linkedin_company_ids": ["acme"]}, "linkedin_company_ids"),
    ],
)
def test_a_search_jobspy_would_refuse_is_refused_when_the_parameters_are_made(
    given: dict[str, Any], refused: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ScrapeParameters(**given)
    assert refused in describe(caught.value)


def test_jobspy_s_own_spellings_of_a_country_are_taken() -> None:
    assert ScrapeParameters(country_indeed="Germany").country_indeed is Country.GERMANY  # type: ignore[arg-type]
    assert ScrapeParameters(country_indeed="united states").country_indeed is Country.USA  # type: ignore[arg-type]


def test_each_location_searches_indeed_in_its_own_country_unless_one_is_given(
    recording: list[ScraperInput],
) -> None:
    locations = ["Berlin, Germany", "Austin, TX", "Remote"]
    scrape_site("indeed", ScrapeParameters(locations=locations))
    got = {given.location: given.country_indeed for given in recording}
    assert got == {"Berlin, Germany": Country.GERMANY, "Austin, TX": Country.USA, "Remote": JOBSPY_DEFAULT_COUNTRY}
    recording.clear()
    scrape_site("indeed", ScrapeParameters(locations=locations, country_indeed="austria"))  # type: ignore[arg-type]
    assert {given.country_indeed for given in recording} == {Country.AUSTRIA}


def test_every_option_reaches_jobspy_s_scraper_and_linkedin_alone_fetches_descriptions(
    recording: list[ScraperInput],
) -> None:
    params = ScrapeParameters(
        distance=10,
        job_type="contract",  # type: ignore[arg-type]
        easy_apply=True,
        linkedin_company_ids=[1441, 2382910],
        offset=3,
        enforce_annual_salary=True,
        user_agent="jobping-test/1",
    )
    scrape_site("linkedin", params)
    scrape_site("glassdoor", params)
    linkedin, glassdoor = recording
    for given in (linkedin, glassdoor):
        assert (given.distance, given.job_type, given.easy_apply, given.offset) == (10, JobType.CONTRACT, True, 3)
        assert (given.linkedin_company_ids, given.enforce_annual_salary) == ([1441, 2382910], True)
        assert given.user_agent == "jobping-test/1"
    assert (linkedin.fetch_description, glassdoor.fetch_description) == (True, False)
    recording.clear()
    scrape_site("linkedin", ScrapeParameters(linkedin_fetch_description=False))
    scrape_site("glassdoor", ScrapeParameters(linkedin_fetch_description=False, fetch_description=True))
    assert [given.fetch_description for given in recording] == [False, True]


def test_a_pause_with_jitter_comes_between_a_board_s_searches_and_none_before_the_first(
    monkeypatch: pytest.MonkeyPatch, recording: list[ScraperInput]
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(source, "pause_between_searches", pauses.append)
    scrape_site(
        "indeed", ScrapeParameters(search_terms=["a", "b"], locations=["Berlin, Germany", "Wien, Austria"]), None, 7
    )
    assert len(recording) == 4
    assert pauses == [7, 7, 7]
    waits: list[float] = []
    for _ in range(200):
        pause_between_searches(4, waits.append)
    assert all(2 <= wait <= 6 for wait in waits)
    assert max(waits) - min(waits) > 1, "the pause has no jitter"
    pause_between_searches(0, waits.append)
    assert len(waits) == 200


@pytest.mark.usefixtures("prefect_api", "queues")
def test_the_flow_pauses_by_the_setting_between_live_searches_and_never_for_the_sample(
    monkeypatch: pytest.MonkeyPatch, recording: list[ScraperInput], caplog: pytest.LogCaptureFixture
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(source, "pause_between_searches", pauses.append)
    monkeypatch.setenv("JOBPING_SCRAPE_PAUSE_SECONDS", "2.5")
    # whatever level an earlier test in this process left the run loggers at
    caplog.set_level(logging.INFO, logger="prefect.flow_runs")
    scrape(ScrapeParameters(source="jobspy", sites=["indeed", "linkedin"], locations=["Berlin, Germany", "Remote"]))
    assert pauses == [2.5, 2.5]  # one between each board's two searches
    # the run's log says which Indeed each location searches, and when it is JobSpy's default
    assert "'Berlin, Germany': Indeed and Glassdoor search germany (the location's country)" in caplog.text
    assert "'Remote' names no country JobSpy knows: Indeed and Glassdoor search JobSpy's default, usa" in caplog.text
    pauses.clear()
    scrape(ScrapeParameters(source="sample", sites=["indeed"], locations=["Berlin, Germany", "Bonn, Germany"]))
    assert pauses == []


def test_a_failing_board_is_retried_three_times_with_growing_delays_and_jitter() -> None:
    assert retry_delays(60) == [60, 120, 240]
    assert fetch_site_postings.retries == SITE_RETRIES == 3
    assert fetch_site_postings.retry_jitter_factor == 0.5
    assert fetch_site_postings.retry_delay_seconds == [60, 120, 240]


class StubbornBoard(jobspy.model.Scraper):
    """A board that answers 429 every time; from its second attempt on it answers only once let through."""

    attempts: ClassVar[int] = 0
    gate: ClassVar[threading.Event] = threading.Event()

    def scrape(self, scraper_input: ScraperInput) -> list[JobPost]:
        type(self).attempts += 1
        if type(self).attempts > 1:
            type(self).gate.wait(timeout=120)
        self.fail("response status code 429 (blocked: use a proxy)")
        return []


def _task_states(term: str) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"scrape {term} from jobspy"]))
        )
        if not runs:
            return {}
        tasks = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[runs[0].id]))
        )
    return {task.name: task.state.type.value for task in tasks if task.state is not None}


@pytest.mark.timeout(180)
@pytest.mark.usefixtures("boards", "prefect_api", "queues")
def test_a_blocked_board_is_retried_while_the_other_boards_finish_without_it() -> None:
    StubbornBoard.attempts, StubbornBoard.gate = 0, threading.Event()
    jobspy.SCRAPER_MAPPING[Site.GLASSDOOR] = StubbornBoard
    term = f"engineer {uuid.uuid4().hex[:8]}"
    others = ["indeed", "linkedin", "zip_recruiter", "bayt"]
    params = ScrapeParameters(source="jobspy", sites=["glassdoor", *others], search_terms=[term])  # type: ignore[list-item]
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(scrape, params)
        try:
            # the blocked board is in its first retry while every other board's task has completed
            def others_done_while_glassdoor_retries() -> dict[str, str] | None:
                states = _task_states(term)
                done = all(states.get(f"fetch {other}") == "COMPLETED" for other in others)
                return states if done and StubbornBoard.attempts >= 2 else None

            states = wait_until(
                others_done_while_glassdoor_retries,
                timeout=90,
                what="the other boards to complete while glassdoor retries",
                seen=lambda: (StubbornBoard.attempts, _task_states(term)),
            )
            assert states["fetch glassdoor"] not in ("COMPLETED", "FAILED", "CRASHED")
        finally:
            StubbornBoard.gate.set()
        report = running.result(timeout=90)
    assert StubbornBoard.attempts == 1 + SITE_RETRIES
    assert list(report.site_errors) == ["glassdoor"]
    assert "blocked" in report.site_errors["glassdoor"]
    assert set(report.scraped) == set(others)


@pytest.mark.usefixtures("prefect_api")
def test_the_deployment_refuses_a_run_with_a_country_jobspy_does_not_know() -> None:
    deployed = {
        d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    }
    nightly = deployed["scrape"]
    flow = load_flow_from_entrypoint(str(ROOT / nightly["entrypoint"]))
    name = f"scrape-{uuid.uuid4().hex[:8]}"
    # the deployment as prefect.yaml declares it: its parameters pass the schema the server enforces
    deployment_id = flow.to_deployment(name=name, parameters=nightly["parameters"]).apply()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        assert deployment.enforce_parameter_schema
        assert deployment.parameters["params"]["linkedin_fetch_description"] is True
        wrong = {"params": {**nightly["parameters"]["params"], "country_indeed": "germanyy"}}
        with pytest.raises(PrefectHTTPStatusError, match=r"409|422") as refused:
            client.create_flow_run_from_deployment(deployment_id, parameters=wrong)
        assert "germanyy" in str(refused.value.response.text)
        right = {"params": {**nightly["parameters"]["params"], "country_indeed": "austria"}}
        assert client.create_flow_run_from_deployment(deployment_id, parameters=right).parameters == right


# the real jobping command in its own process, JobSpy's Indeed scraper replaced by one that says what it was given
RECORDING_CLI = """
import sys
from jobspy.model import Site
from tests import jobspy_boards
class Told(jobspy_boards.OfflineBoard):
    site = Site.INDEED
    def scrape(self, scraper_input):
        print(f"indeed searched {scraper_input.location} in {scraper_input.country_indeed.value}", file=sys.stderr)
        return super().scrape(scraper_input)
jobspy_boards.install({Site.INDEED: Told})
from app.cli import main
main(sys.argv[1:])
"""


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RECORDING_CLI, "scrape", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path, moto_url: str, prefect_api: None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_"))}
    return env | {
        # the test's Prefect API: the command starts no server of its own
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "JOBPING_DATA_DIR": str(tmp_path / "data"),
        "JOBPING_SQS_ENDPOINT_URL": moto_url,
        "JOBPING_QUEUE_NAME": f"jobs-{uuid.uuid4().hex[:12]}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "COLUMNS": "200",
    }


@pytest.mark.timeout(300)
def test_the_cli_searches_indeed_in_the_location_s_country_and_refuses_one_jobspy_does_not_know(
    cli_env: dict[str, str],
) -> None:
    refused = _cli(cli_env, "--source", "jobspy", "--site", "indeed", "--country-indeed", "germanyy")
    assert refused.returncode == 2, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: invalid search: country_indeed: Input should be 'argentina'")
    assert "germanyy" in lines[0]
    assert "indeed searched" not in refused.stderr + refused.stdout
    done = _cli(cli_env, "--source", "jobspy", "--location", "Berlin, Germany", "--site", "indeed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "indeed searched Berlin, Germany in germany" in done.stderr
    assert "3 published" in done.stdout
