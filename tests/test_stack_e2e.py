"""The stack as users run it: `jobping stack up`, deployments, a worker, the UI in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from prefect_aws import AwsCredentials

from app.autoscale import AUTOSCALED_TAG
from bench.baseline import sample_bodies
from standins.servers import free_port, webhook_receiver
from tests.e2e_stack import (
    JOBPING,
    POLL_SECONDS,
    RUN_DEADLINE_SECONDS,
    Stack,
    analyse_runs,
    digests,
    drained,
    port_open,
    published_by,
    sqs_of,
    state_of,
    status_of,
)
from tests.waiting import holds_for, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# JOBPING_SAVE_SCREENSHOTS=1 refreshes the README's pictures
DOCS_IMG = Path(__file__).parent.parent / "docs" / "img"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

MAX_CONSUMERS = 3
MESSAGES_PER_CONSUMER = 20
WEBHOOK_TOKEN = "T0001/B0001/XoXSECRETtoken123"
# the promise: a posting sent by any producer is stored within a minute
PICKUP_DEADLINE_SECONDS = 60.0
# a click on Quick run creates its flow run at once: past this the click did not land (however slow the run)
CLICK_DEADLINE_SECONDS = 30.0
KILLED_DEADLINE_SECONDS = 30.0

# a test's deadline, its share of the module's stack up included: measured up to 236 s a test (three
# `stack up`s) and 145 s to start the stack, on a machine running 40 to 70 processes for its 2 cores;
# the waits inside (RUN_DEADLINE_SECONDS each) fail first and say what they waited for
TEST_TIMEOUT_SECONDS = 900

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real webhook receiver process: the user's channel for matches and alerts."""
    with webhook_receiver(tmp_path_factory.mktemp("webhook") / "received.jsonl", free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: str) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("stack") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
    env |= {
        "JOBPING_NOTIFY_WEBHOOK_URL": f"{webhook}/hooks/{WEBHOOK_TOKEN}",
        "JOBPING_DATA_DIR": str(data),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "JOBPING_EMULATOR_PORT": str(free_port()),
        "JOBPING_SCRAPE_SOURCE": "sample",
        "JOBPING_RECEIVE_WAIT_SECONDS": "1",
        "JOBPING_WORKER_QUERY_SECONDS": "2",
        # the autoscaler looks every 2 s, wants a run per 20 queued messages, three at most
        "JOBPING_SCALE_POLL_SECONDS": str(POLL_SECONDS),
        "JOBPING_MESSAGES_PER_CONSUMER": str(MESSAGES_PER_CONSUMER),
        "JOBPING_MAX_CONSUMERS": str(MAX_CONSUMERS),
    }
    up = subprocess.run([JOBPING, "stack", "up"], env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        started = Stack(env, data)
        assert started.ui in up.stdout
        assert f"owner-only in {data / 'prefect' / 'api-auth'}" in up.stdout
        assert started.auth not in up.stdout + up.stderr
        yield started
    finally:
        down = subprocess.run(
            [JOBPING, "stack", "down"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert down.returncode == 0, down.stderr
    assert not port_open(int(env["JOBPING_PREFECT_PORT"])), "the Prefect server still listens after `stack down`"
    assert not port_open(int(env["JOBPING_EMULATOR_PORT"])), "the emulator still listens after `stack down`"


def test_the_local_api_asks_for_the_generated_password_kept_owner_only(stack: Stack) -> None:
    secret = stack.data / "prefect" / "api-auth"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    assert len(stack.auth.partition(":")[2]) >= 32
    # health stays open for probes; everything else wants the password
    assert status_of(f"{stack.api}/health") == 200
    assert status_of(f"{stack.api}/admin/version") == 401
    assert status_of(f"{stack.api}/blocks/documents/filter") in {401, 405}
    assert status_of(f"{stack.api}/admin/version", "jobping:guess") == 401
    assert status_of(f"{stack.api}/admin/version", stack.auth) == 200


def open_paths_in_the_readme() -> set[str]:
    """The paths the README says answer without the password."""
    text = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    sentence = text.partition("Without it the server answers only")[2].partition("A server")[0]
    return set(re.findall(r"`(/[^`]*)`", sentence))


def test_what_answers_without_the_password_is_what_the_readme_lists(stack: Stack) -> None:
    # every operation of the API the server itself describes, asked without the password
    with urllib.request.urlopen(f"{stack.ui}/openapi.json", timeout=10) as response:
        spec = json.load(response)
    answered = set()
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]*\}", "00000000-0000-0000-0000-000000000000", path)
        for method in operations:
            request = urllib.request.Request(
                f"{stack.api}{concrete}", method=method.upper(), headers={"Content-Type": "application/json"},
                data=b"{}" if method in {"post", "put", "patch"} else None,
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    code = int(response.status)
            except urllib.error.HTTPError as error:
                code = int(error.code)
            if code != 401:
                answered.add(f"/api{path}")
    # and what the server serves beside the API (the UI, FastAPI's docs)
    beside = ["/", "/docs", "/redoc", "/openapi.json", "/ui-settings", "/api/docs", "/api/openapi.json"]
    answered |= {path for path in beside if status_of(f"{stack.ui}{path}") == 200}
    assert len(spec["paths"]) > 100
    assert answered == open_paths_in_the_readme()


def test_a_command_with_another_password_is_refused_with_what_to_do(stack: Stack) -> None:
    other = stack.env | {"PREFECT_SERVER_API_AUTH_STRING": "admin:not-the-one"}
    done = subprocess.run(
        [JOBPING, "scrape", "--source", "sample", "--site", "google"],
        env=other, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "refuses jobping's password" in done.stderr, done.stderr
    assert "not-the-one" not in done.stdout + done.stderr


def test_a_scrape_run_of_the_deployment_completes_after_the_emulator_was_killed_and_its_postings_are_stored(
    stack: Stack,
) -> None:
    pid_file = stack.data / "run" / f"emulator-{stack.env['JOBPING_EMULATOR_PORT']}.pid"
    # the pid leads the emulator's process group (its log pipe and moto): all of it dies, as in a crash
    os.killpg(int(pid_file.read_text(encoding="ascii").split()[0]), signal.SIGKILL)
    wait_until(lambda: not port_open(int(stack.env["JOBPING_EMULATOR_PORT"])), timeout=KILLED_DEADLINE_SECONDS,
               what="the killed emulator to stop listening")  # fmt: skip

    before = stack.stored()
    scrape_run = stack.run("scrape/scrape", {"params": {"source": "sample", "sites": ["google"]}})
    finished = stack.wait_for("scrape", scrape_run.created)
    published = published_by(stack, finished)
    wait_until(lambda: stack.stored() >= before + published, timeout=RUN_DEADLINE_SECONDS, interval=POLL_SECONDS,
               what=f"the {published} postings published stored",
               seen=lambda: f"{stack.stored() - before} stored")  # fmt: skip
    assert stack.stored() == before + published
    # the burst's end: the next test's burst is one of its own
    stack.wait_for("notify", scrape_run.created, autoscaled=True)


def test_a_burst_drained_by_several_autoscaled_runs_brings_exactly_one_digest_and_one_top_matches(
    stack: Stack, webhook: str
) -> None:
    sent_before, stored_before = len(digests(webhook)), stack.stored()
    scrape_run = stack.run("scrape/scrape", {"params": {"source": "sample", "sites": ["google", "glassdoor"]}})
    finished = stack.wait_for("scrape", scrape_run.created)
    assert finished.id == scrape_run.id
    published = published_by(stack, finished)
    notified = stack.wait_for("notify", scrape_run.created, autoscaled=True, artifact="top-matches")
    analysed = [run for run in analyse_runs(stack) if run.created >= scrape_run.created]
    # how many runs the autoscaler starts depends on how fast they drain: more than one
    assert len(analysed) >= 2, "the burst was drained by one run: raise it or lower JOBPING_MESSAGES_PER_CONSUMER"
    assert all(run.state.is_completed() and run.created < notified.created for run in analysed)
    assert all("top-matches" not in stack.artifacts(run.id) for run in analysed)
    # what the scrape published (google's sample, stored by the test before, is not published again)
    assert stack.stored() == stored_before + published
    # the notify run sent before it completed
    assert len(digests(webhook)) == sent_before + 1
    assert len(stack.runs_of("notify")) == len({run.id for run in stack.runs_of("notify")})


def test_the_scrape_deployment_shows_its_nightly_schedule_and_refuses_wrong_parameters(stack: Stack) -> None:
    with stack.client() as client:
        deployment = client.read_deployment_by_name("scrape/scrape")
        crons = [getattr(s.schedule, "cron", None) for s in deployment.schedules]
        assert "0 2 * * *" in crons
        assert deployment.enforce_parameter_schema
        with pytest.raises(PrefectHTTPStatusError, match=r"409|422"):
            client.create_flow_run_from_deployment(deployment.id, parameters={"params": {"results_wanted": "lots"}})


def test_quick_run_in_the_ui_runs_scrape_then_analyse_and_leaves_artifacts(stack: Stack, tmp_path: Path) -> None:
    clicked, stored_before = datetime.now().astimezone(), stack.stored()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(stack.ui + "/deployments")
            # the UI asks for the password first, as a new user sees it
            password = page.get_by_placeholder("admin:pass")
            password.wait_for(timeout=30_000)
            password.fill(stack.auth)
            page.get_by_role("button", name="Login").click()
            page.wait_for_url(lambda url: "login" not in url, timeout=30_000)
            page.goto(stack.ui + "/deployments")
            page.get_by_role("link", name="scrape", exact=True).first.click()
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=30_000)
            run.click()
            page.get_by_text("Quick run", exact=True).click()

            # the click landed: the UI created a run, seen on the API at once, however slow the run is then
            (created, *_) = wait_until(
                lambda: stack.created_since("scrape", clicked), timeout=CLICK_DEADLINE_SECONDS, interval=0.5,
                what="the scrape run the Quick run click creates",
                seen=lambda: [(run.name, state_of(run), run.created) for run in stack.runs_of("scrape")],
            )  # fmt: skip
            scraped = stack.wait_until_final(created.id, f"the Quick run's scrape run {created.name}")
            assert scraped.state.is_completed(), f"{scraped.name} ended {state_of(scraped)}"
            analysed = stack.wait_for("analyse", scraped.created, autoscaled=True, artifact="analyse-summary")
            notified = stack.wait_for("notify", scraped.created, autoscaled=True, artifact="top-matches")
            assert stack.stored() == stored_before + published_by(stack, scraped)

            pictures = DOCS_IMG if os.environ.get("JOBPING_SAVE_SCREENSHOTS") == "1" else tmp_path
            open_artifacts_tab(page, f"{stack.ui}/runs/flow-run/{analysed.id}", "analyse-summary")
            page.screenshot(path=str(pictures / "prefect-ui-analyse-run.png"))
            open_artifacts_tab(page, f"{stack.ui}/runs/flow-run/{notified.id}", "top-matches")
            page.get_by_text("top-matches").first.click()
            page.get_by_role("columnheader", name="verdict").wait_for(timeout=30_000)
            page.screenshot(path=str(pictures / "prefect-ui-top-matches.png"))
        finally:
            browser.close()


def open_artifacts_tab(page: Any, run_url: str, artifact: str, attempts: int = 3) -> None:
    """Open a run's Artifacts tab until ``artifact`` shows.

    The run page sometimes renders its tabs before its data, so a click that lands then shows
    an empty tab; the page is loaded afresh and the tab clicked again.
    """

    for attempt in range(1, attempts + 1):
        page.goto(run_url, wait_until="networkidle")
        tab = page.get_by_text("Artifacts", exact=True).first
        tab.wait_for(timeout=20_000)
        tab.click()
        try:
            page.get_by_text(artifact).first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts:
                raise


def test_a_cli_scrape_runs_on_the_stack_s_server_and_the_stack_shows_every_part_running(stack: Stack) -> None:
    started = datetime.now().astimezone()
    scraped = subprocess.run(
        [JOBPING, "scrape", "--source", "sample", "--site", "google"],
        env=stack.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert scraped.returncode == 0, scraped.stdout + scraped.stderr
    assert "started a local Prefect server" not in scraped.stderr

    with stack.client() as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["scrape"])))
    mine = [run for run in runs if run.created >= started and run.deployment_id is None]
    assert len(mine) == 1, "the CLI's scrape run is not on the stack's server"
    # what it published (google's sample, if an earlier test has not) the autoscaler's runs analyse
    status = subprocess.run([JOBPING, "stack", "status"], env=stack.env, capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("not running") == 0, status.stdout
    assert "autoscaler" in status.stdout


def test_stack_up_with_other_settings_restarts_the_worker_and_shows_what_it_has(stack: Stack) -> None:
    def up(source: str) -> str:
        done = subprocess.run(
            [JOBPING, "stack", "up"], env=stack.env | {"JOBPING_SCRAPE_SOURCE": source},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    changed = up("jobspy")
    assert "restarted the worker" in changed
    assert "JOBPING_SCRAPE_SOURCE=jobspy" in changed
    back = up("sample")
    assert "JOBPING_SCRAPE_SOURCE=sample" in back
    again = up("sample")
    assert "restarted the worker" not in again


def test_the_autoscaler_picks_up_any_producer_s_message_scales_with_a_backlog_and_back_to_zero(stack: Stack) -> None:
    sqs, url = sqs_of(stack)
    wait_until(lambda: drained(stack, sqs, url), timeout=RUN_DEADLINE_SECONDS, what="the queue drained before the test")

    # one posting from outside jobping (a bare JSON posting sent with boto3) is stored within a minute
    before = stack.stored()
    sqs.send_message(QueueUrl=url, MessageBody=sample_bodies(1_000)[-1].replace("bench-", "outside-"))
    wait_until(lambda: stack.stored() > before, timeout=PICKUP_DEADLINE_SECONDS,
               what="the posting sent with boto3 stored")  # fmt: skip
    assert stack.stored() == before + 1

    # a backlog of 400 (twenty runs' worth at 20 each) starts more than one run, never more than three at once
    wait_until(lambda: drained(stack, sqs, url), timeout=RUN_DEADLINE_SECONDS, what="the queue drained after it")
    known, before = {run.id for run in analyse_runs(stack)}, stack.stored()
    bodies = [body.replace("bench-", "backlog-") for body in sample_bodies(400)]
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    most_running = [0]

    def backlog_drained() -> bool:
        new = [run for run in analyse_runs(stack) if run.id not in known]
        most_running[0] = max(most_running[0], sum(run.state.type == StateType.RUNNING for run in new))
        return bool(new) and drained(stack, sqs, url)

    wait_until(backlog_drained, timeout=RUN_DEADLINE_SECONDS, interval=0.5, what="the backlog drained",
               seen=lambda: [state_of(run) for run in analyse_runs(stack) if run.id not in known])  # fmt: skip
    # the states as they are now: those above were read before drained() saw every run final
    new = [run for run in analyse_runs(stack) if run.id not in known]
    assert stack.stored() == before + len(bodies)
    assert len(new) > 1, "a backlog of 400 started only one analyse run"
    assert all(AUTOSCALED_TAG in run.tags for run in new)
    assert all(run.state.is_completed() for run in new), [
        (run.state.type, run.state.name, run.state.message) for run in new
    ]
    # how many ran at once depends on how fast each started: more than one, never more than the cap
    assert 1 < most_running[0] <= MAX_CONSUMERS, most_running[0]

    # an empty queue creates no run for several poll periods
    settled = {run.id for run in analyse_runs(stack)}
    holds_for(lambda: {run.id for run in analyse_runs(stack)} == settled, seconds=4 * POLL_SECONDS,
              what="no new analyse run on an empty queue")  # fmt: skip


def test_make_up_again_keeps_an_edited_sqs_block_and_every_pid(stack: Stack) -> None:
    def up() -> dict[str, int]:
        done = subprocess.run([JOBPING, "stack", "up"], env=stack.env, capture_output=True, text=True, timeout=300,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads((stack.data / "run" / "stack.json").read_text(encoding="utf-8"))["pids"])

    with temporary_settings({PREFECT_API_URL: stack.api, PREFECT_API_AUTH_STRING: stack.auth}):
        block = AwsCredentials.load("jobping-sqs", _sync=True)  # type: ignore[call-arg]
        # what a user changes when pointing the deployments at aws, short of the endpoint this stack needs
        block.aws_session_token = "edited-in-the-ui"  # type: ignore[union-attr]
        block.save("jobping-sqs", overwrite=True)  # type: ignore[union-attr]
    first = up()
    second = up()
    assert second == first
    assert all(pid > 0 for pid in second.values())
    with temporary_settings({PREFECT_API_URL: stack.api, PREFECT_API_AUTH_STRING: stack.auth}):
        kept = AwsCredentials.load("jobping-sqs", _sync=True)  # type: ignore[call-arg]
        assert kept.aws_session_token == "edited-in-the-ui"  # type: ignore[union-attr]
        kept.aws_session_token = None  # type: ignore[union-attr]
        kept.save("jobping-sqs", overwrite=True)  # type: ignore[union-attr]
