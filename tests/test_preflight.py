"""A flow checks what it needs before any slow work: it heals the embedded emulator, or fails in one line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect_aws import AwsClientParameters, AwsCredentials

from flows.scrape import scrape
from jobping.settings import Settings
from standins.servers import free_port
from tasks.jobspy.search import ScrapeParameters
from tasks.sqs import emulator
from tasks.sqs.client import EMULATOR_CREDENTIALS, QueueUnavailableError, ensure_reachable

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def own_emulator(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on the embedded default, with an emulator port of this test's own (nothing runs there yet)."""
    monkeypatch.delenv("JOBPING_SQS_ENDPOINT_URL")
    monkeypatch.setenv("JOBPING_EMULATOR_PORT", str(free_port()))
    settings = Settings()
    yield settings
    emulator.stop(settings)


def test_a_stopped_emulator_named_by_the_stack_s_block_is_started_again(
    own_emulator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = f"jobping-sqs-{uuid.uuid4().hex[:8]}"
    AwsCredentials(
        aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        region_name=own_emulator.sqs.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=own_emulator.sqs.emulator_url),
    ).save(block)
    monkeypatch.setenv("JOBPING_AWS_CREDENTIALS_BLOCK", block)
    assert not emulator.answers(own_emulator)

    assert ensure_reachable(Settings()) == own_emulator.sqs.emulator_url
    assert emulator.answers(own_emulator)


def test_a_block_of_the_user_s_own_is_not_healed_by_starting_an_emulator(
    own_emulator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = f"users-sqs-{uuid.uuid4().hex[:8]}"
    elsewhere = f"http://127.0.0.1:{free_port()}"
    AwsCredentials(region_name="eu-west-1", aws_client_parameters=AwsClientParameters(endpoint_url=elsewhere)).save(
        block
    )
    monkeypatch.setenv("JOBPING_AWS_CREDENTIALS_BLOCK", block)
    assert ensure_reachable(Settings()) == elsewhere
    assert not emulator.answers(own_emulator)


def test_a_scrape_run_that_cannot_reach_sqs_fails_in_one_line_before_asking_any_board(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_SQS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    state = scrape(ScrapeParameters(source="sample", sites=["google", "indeed"]), return_state=True)

    assert state.is_failed()
    assert state.message is not None
    assert "\n" not in state.message
    assert "does not answer" in state.message
    assert "JOBPING_SQS_ENDPOINT_URL" in state.message
    with pytest.raises(QueueUnavailableError):
        state.result()
    # no board was asked: the run has no task run at all
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert tasks == []
