"""Proxies for the live scrape: read once a run, checked, carried by JobSpy's own LinkedIn scraper, never shown.

The LinkedIn board is JobSpy's real scraper; only the network is local: an authenticating proxy
(standins/linkedin_proxy.py) that terminates TLS with a CA made for the test and answers
LinkedIn's guest search and posting pages. A search card count below JobSpy's page size means
one search page, so JobSpy's pause between pages never runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jobspy
import pytest
from jobspy.model import Site
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL
from typer.testing import CliRunner

from app.cli import app
from flows.analyse import analyse
from flows.scrape import AllSitesFailedError, scrape
from jobping.errors import ConfigurationError
from jobping.proxies import Proxies, check_ca_cert, parse_proxies
from jobping.settings import Settings
from standins.linkedin_proxy import SEARCH_PATH, VIEW_PATH, LinkedInProxy, Posting, linkedin_proxy
from standins.servers import free_port
from storage.reader import reader
from tasks.jobspy.search import ScrapeParameters
from tests.jobspy_boards import ProxyRaisingBoard, ProxyRefusedBoard

USER, PASSWORD = "jobping-proxy-user-7f3a", "hunter2-Pr0xy-pass-91c"
# a second user of the same proxy: a list of two proxies is rotated through, one a request
OTHER_USER, OTHER_PASSWORD = "second-proxy-user-c21d", "0ther-Pr0xy-pass-5e8"
CREDENTIALS = {USER: PASSWORD, OTHER_USER: OTHER_PASSWORD}
SECRETS = (USER, PASSWORD, OTHER_USER, OTHER_PASSWORD)
POSTINGS = [
    Posting(
        "4101", "Senior Data Engineer", "Acme Daten GmbH", "Berlin, Berlin, Germany", "<p>We use <b>Spark</b>.</p>"
    ),
    Posting("4102", "Analytics Engineer", "Beta Analytics AG", "Munich, Bavaria, Germany", page="error"),
    Posting("4103", "Data Platform Engineer", "Gamma Logistik", "Hamburg, Germany", page="empty"),
]
DESCRIBED = {"4101": "Spark"}
# JobSpy's LinkedIn scraper with jobping's defaults: each posting's own page fetched for its description
LINKEDIN = ScrapeParameters(source="jobspy", sites=["linkedin"], hours_old=None)
CLI_SCRAPE = ["scrape", "--source", "jobspy", "--site", "linkedin"]


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LinkedInProxy]:
    """The stand-in proxy, its CA trusted through JOBPING_SCRAPE_CA_CERT."""
    folder = tmp_path / "proxy"
    folder.mkdir()
    with linkedin_proxy(folder, CREDENTIALS, POSTINGS) as running:
        monkeypatch.setenv("JOBPING_SCRAPE_CA_CERT", str(running.ca_cert))
        yield running


@pytest.fixture
def echoing_boards() -> Iterator[None]:
    """Glassdoor and Indeed fail with their proxy's url, credentials and all, in the message."""
    saved = dict(jobspy.SCRAPER_MAPPING)
    jobspy.SCRAPER_MAPPING[Site.GLASSDOOR] = ProxyRefusedBoard
    jobspy.SCRAPER_MAPPING[Site.INDEED] = ProxyRaisingBoard
    yield
    jobspy.SCRAPER_MAPPING.clear()
    jobspy.SCRAPER_MAPPING.update(saved)


def lake_rows(settings: Settings, query: str) -> list[dict[str, Any]]:
    with reader(settings.lake_dir) as con:
        result = con.execute(query)
        names = [column[0] for column in result.description or []]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def files_holding_secrets(folder: Path) -> list[str]:
    """Every file under ``folder`` (the lake's too) that holds a user or a password, in any encoding we write."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {secret}" for secret in SECRETS if secret.encode() in data]
    return found


def run_log_lines() -> list[str]:
    APILogHandler().flush()  # the run's logs reach the API in batches
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs()]


def prefect_records() -> list[str]:
    """The run's artifacts, and the Prefect database's files themselves (runs, states, task runs, events)."""
    with get_client(sync_client=True) as client:
        texts = [f"{artifact.data} {artifact.description}" for artifact in client.read_artifacts()]
    database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().partition(":///")[2])
    files = list(database.parent.glob(f"{database.name}*"))
    assert files, database
    return texts + [path.read_bytes().decode(errors="replace") for path in files]


def shown_secrets(*texts: str) -> list[str]:
    return [secret for secret in SECRETS for text in texts if secret in text]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("host.example:8080", ["http://host.example:8080"]),
        (f"{USER}:{PASSWORD}@10.0.0.7:3128, socks5://{USER}:{PASSWORD}@[::1]:1080", None),
        (f'["{USER}:{PASSWORD}@p1.example:1", "https://p2.example:2"]', None),
    ],
    ids=["host-port", "comma-separated-with-schemes", "json-list"],
)
def test_proxies_are_read_as_jobspy_writes_them(value: str, expected: list[str] | None) -> None:
    proxies = Proxies(parse_proxies(value, "JOBPING_SCRAPE_PROXIES"))
    assert proxies.for_jobspy() == [entry.strip() for entry in value.strip("[]").replace('"', "").split(",")]
    if expected is not None:
        assert proxies.shown() == ", ".join(expected)
    assert not shown_secrets(repr(proxies), proxies.shown())


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (
            f"ok.example:1,{USER}:{PASSWORD}@p.example",
            "proxy 2 of 2 is not 'host:port' or 'user:pass@host:port': it has no port",
        ),
        (f"{USER}:{PASSWORD}@p.example:99999", "proxy 1 of 1 is not .*: its port is not a number from 1 to 65535"),
        (f"ftp://{USER}:{PASSWORD}@p.example:21", "proxy 1 of 1 is not .*: 'ftp' is not one of http, https"),
        (f"{USER}:{PASSWORD}@p.example:80/{PASSWORD}", "proxy 1 of 1 is not .*: it has a path after host:port"),
        (f":{PASSWORD}@p.example:80", "proxy 1 of 1 is not .*: its credentials have no user"),
        (f"{USER} {PASSWORD}@p.example:80", "proxy 1 of 1 is not .*: it contains a space"),
        (f'["{USER}:{PASSWORD}@p.example:80"', "the proxies are not a valid JSON list"),
    ],
    ids=["no-port", "port-out-of-range", "unknown-scheme", "path", "no-user", "space", "broken-json"],
)
def test_a_bad_proxy_is_named_by_its_position_never_by_its_credentials(value: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^JOBPING_SCRAPE_PROXIES: {why}") as caught:
        parse_proxies(value, "JOBPING_SCRAPE_PROXIES")
    assert not shown_secrets(str(caught.value))
    assert "\n" not in str(caught.value)


def test_a_proxy_ca_that_is_missing_or_no_certificate_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^JOBPING_SCRAPE_CA_CERT=.*missing\.pem cannot be read \(No such file"
    ):
        check_ca_cert(tmp_path / "missing.pem")
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ConfigurationError, match="holds no PEM certificate"):
        check_ca_cert(tmp_path / "key.pem")


@pytest.mark.usefixtures("prefect_api", "queues")
def test_a_missing_proxy_ca_fails_the_run_before_any_board_is_asked(
    proxy: LinkedInProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES", proxy.proxy(USER))
    monkeypatch.setenv("JOBPING_SCRAPE_CA_CERT", str(tmp_path / "no-such-ca.pem"))
    with pytest.raises(ConfigurationError, match=r"JOBPING_SCRAPE_CA_CERT=.*no-such-ca\.pem cannot be read"):
        scrape(LINKEDIN)
    assert (proxy.carried, proxy.refused) == ([], [])


@pytest.mark.usefixtures("prefect_api", "queues")
def test_a_missing_secret_block_or_a_bad_proxy_in_it_fails_the_run_before_any_board_is_asked(
    proxy: LinkedInProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES_BLOCK", "jobping-no-such-proxies")
    with pytest.raises(ConfigurationError, match=r"the Secret block 'jobping-no-such-proxies' .* could not be loaded"):
        scrape(LINKEDIN)
    Secret(value=f"{proxy.proxy(USER)},{USER}:{PASSWORD}@{OTHER_USER}").save("jobping-bad-proxies", overwrite=True)
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES_BLOCK", "jobping-bad-proxies")
    with pytest.raises(ConfigurationError, match=r"'jobping-bad-proxies': proxy 2 of 2 .*: it has no port$") as caught:
        scrape(LINKEDIN)
    assert not shown_secrets(str(caught.value))
    assert (proxy.carried, proxy.refused) == ([], [])


@pytest.mark.usefixtures("prefect_api", "queues")
def test_proxies_from_the_environment_carry_linkedin_and_its_description_pages_and_are_never_shown(
    proxy: LinkedInProxy, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES", proxy.proxy(USER))
    caplog.set_level(logging.DEBUG)
    report = scrape(LINKEDIN)
    assert report.scraped == {"linkedin": len(POSTINGS)}
    assert report.published == len(POSTINGS)
    # the search page and every posting's own page went through the proxy, as the proxy's user
    expected = [SEARCH_PATH, *(f"{VIEW_PATH}{posting.job_id}" for posting in POSTINGS)]
    assert sorted(proxy.paths()) == sorted(expected)
    assert {(seen.host, seen.user) for seen in proxy.carried} == {("www.linkedin.com", USER)}
    assert proxy.refused == []

    assert asyncio.run(analyse()).stored == len(POSTINGS)
    query = "SELECT job_id, description, description_missing FROM enriched_jobs"
    stored = {row["job_id"]: row for row in lake_rows(settings, query)}
    for posting in POSTINGS:
        row = stored[f"li-{posting.job_id}"]
        if posting.job_id in DESCRIBED:
            assert DESCRIBED[posting.job_id] in row["description"]
            assert row["description_missing"] is False
        else:  # its page failed (500) or held no description: stored without one, and marked so
            assert (row["description"], row["description_missing"]) == (None, True), posting
    assert files_holding_secrets(settings.data_dir) == []
    assert not shown_secrets(caplog.text, *run_log_lines(), *prefect_records())


@pytest.mark.usefixtures("prefect_api", "queues")
def test_proxies_from_a_secret_block_win_are_rotated_and_never_shown_by_the_cli(
    proxy: LinkedInProxy, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the block's two proxies (a JSON list) win over the environment's, whose password the proxy refuses
    Secret(value=[proxy.proxy(USER), proxy.proxy(OTHER_USER)]).save("jobping-test-proxies", overwrite=True)
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES_BLOCK", "jobping-test-proxies")
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES", proxy.proxy(USER, "a-wrong-password"))
    caplog.set_level(logging.DEBUG)
    assert scrape(LINKEDIN).published == len(POSTINGS)
    assert proxy.refused == []
    # jobspy rotates through the list, one proxy a request: the search page, then each posting's page
    assert [seen.user for seen in proxy.carried] == [USER, OTHER_USER, USER, OTHER_USER]
    ran = CliRunner().invoke(app, CLI_SCRAPE, env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output
    assert "linkedin" in ran.output
    assert proxy.refused == []
    assert not shown_secrets(ran.output, caplog.text, *run_log_lines(), *prefect_records())
    assert files_holding_secrets(settings.data_dir) == []


@pytest.mark.usefixtures("prefect_api", "queues")
def test_a_board_failing_through_a_dead_proxy_names_the_proxy_s_host_never_its_credentials(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES", f"{USER}:{PASSWORD}@{dead}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AllSitesFailedError) as caught:
        scrape(ScrapeParameters(source="jobspy", sites=["linkedin"]))
    error = caught.value.report.site_errors["linkedin"]
    assert f"through http://{dead}" in error
    assert "proxy" in error.lower()
    ran = CliRunner().invoke(app, CLI_SCRAPE, env={"COLUMNS": "200"})
    assert ran.exit_code != 0
    assert f"http://{dead}" in ran.output
    assert not shown_secrets(error, str(caught.value), ran.output, caplog.text, *run_log_lines())
    assert files_holding_secrets(settings.data_dir) == []


@pytest.mark.usefixtures("prefect_api", "queues", "echoing_boards")
def test_a_proxy_url_in_a_board_s_error_is_shown_without_its_credentials_in_the_report_logs_and_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    proxies = f"{USER}:{PASSWORD}@proxy-a.example:3128,{OTHER_USER}:{OTHER_PASSWORD}@proxy-b.example:1080"
    monkeypatch.setenv("JOBPING_SCRAPE_PROXIES", proxies)
    caplog.set_level(logging.INFO)
    with pytest.raises(AllSitesFailedError) as caught:
        scrape(ScrapeParameters(source="jobspy", sites=["glassdoor", "indeed"]))
    errors = caught.value.report.site_errors
    through = "through http://proxy-a.example:3128, http://proxy-b.example:1080"
    assert through in errors["glassdoor"]
    assert "Cannot connect to proxy http://***@proxy-a.example:3128: 407" in errors["glassdoor"]
    assert "OSError: Tunnel connection failed through socks5://***@proxy-b.example:1080" in errors["indeed"]
    ran = CliRunner().invoke(app, ["scrape", "--source", "jobspy", "--site", "glassdoor"], env={"COLUMNS": "300"})
    assert ran.exit_code != 0
    assert "http://***@proxy-a.example:3128" in ran.output
    shown = shown_secrets(str(errors), str(caught.value), ran.output, caplog.text, *run_log_lines(), *prefect_records())
    assert not shown
    assert files_holding_secrets(settings.data_dir) == []
