"""The stack of `jobping stack up` as the end-to-end tests drive it: its runs, its lake, its queue."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from app.autoscale import AUTOSCALED_TAG
from standins.servers import received
from storage.reader import LakeEmptyError, reader
from tasks.sqs.client import EMULATOR_CREDENTIALS
from tests.waiting import wait_until

JOBPING = str(Path(sys.executable).parent / "jobping")
# the promise is four minutes from click to stored rows
RUN_DEADLINE_SECONDS = 240.0
POLL_SECONDS = 2


class Stack:
    """A running stack: its API with the password `stack up` generated, its data dir and lake."""

    def __init__(self, env: dict[str, str], data: Path) -> None:
        self.env = env
        self.data = data
        self.port = int(env["JOBPING_PREFECT_PORT"])
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.ui = f"http://127.0.0.1:{self.port}"
        # the password `stack up` generated, owner-only in the data dir
        self.auth = (data / "prefect" / "api-auth").read_text(encoding="ascii").strip()

    def client(self) -> Any:
        return SyncPrefectClient(self.api, auth_string=self.auth)

    def runs_of(self, deployment: str) -> list[Any]:
        not_scheduled = FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED]))
        )
        with self.client() as client:
            return list(
                client.read_flow_runs(
                    flow_run_filter=not_scheduled,
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                )
            )

    def wait_for(self, deployment: str, after: datetime, *, autoscaled: bool = False, artifact: str = "") -> Any:
        """The first finished run of ``deployment`` created after ``after`` (by the autoscaler, with ``artifact``)."""

        def finished() -> Any:
            for run in sorted(self.runs_of(deployment), key=lambda run: run.created):
                if run.created < after or (autoscaled and AUTOSCALED_TAG not in run.tags):
                    continue
                if run.state and run.state.is_final():
                    assert run.state.is_completed(), f"{run.name} ended {run.state.type}: {run.state.message}"
                    if not artifact or artifact in self.artifacts(run.id):
                        return run
            return None

        return wait_until(
            finished, timeout=RUN_DEADLINE_SECONDS, interval=POLL_SECONDS,
            what=f"a finished {deployment} run created after {after}" + (f" with {artifact}" if artifact else ""),
            seen=lambda: [(run.name, state_of(run), run.created) for run in self.runs_of(deployment)],
        )  # fmt: skip

    def created_since(self, deployment: str, after: datetime) -> list[Any]:
        """The runs of ``deployment`` created after ``after``, in any state (a new run is scheduled first)."""
        with self.client() as client:
            named = DeploymentFilter(name=DeploymentFilterName(any_=[deployment]))
            runs = client.read_flow_runs(deployment_filter=named)
        return [run for run in runs if run.created >= after]

    def wait_until_final(self, run_id: UUID, what: str) -> Any:
        """The run once it is in a final state, within RUN_DEADLINE_SECONDS; a timeout names the state it is in."""

        def read() -> Any:
            with self.client() as client:
                return client.read_flow_run(run_id)

        def final() -> Any:
            run = read()
            return run if run.state and run.state.is_final() else None

        return wait_until(final, timeout=RUN_DEADLINE_SECONDS, interval=POLL_SECONDS, what=f"{what} to end",
                          seen=lambda: state_of(read()))  # fmt: skip

    def run(self, deployment: str, parameters: dict[str, Any]) -> Any:
        with temporary_settings({PREFECT_API_URL: self.api, PREFECT_API_AUTH_STRING: self.auth}):
            return run_deployment(deployment, parameters=parameters, timeout=0)

    def artifacts(self, run_id: UUID) -> dict[str, Any]:
        with self.client() as client:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
        return {artifact.key: artifact for artifact in found}

    def stored(self) -> int:
        try:
            con = reader(self.data / "lake")
        except LakeEmptyError:
            return 0
        with con:
            return int(con.execute("SELECT count(*) FROM enriched_jobs").fetchall()[0][0])


def state_of(run: Any) -> str:
    """A run's state as a timeout names it: type, name and message."""
    return f"{run.state.type.value} ({run.state.name}: {run.state.message})" if run.state else "no state"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def digests(webhook: str) -> list[dict[str, Any]]:
    """The matches digests the receiver got, in order (alerts are other messages)."""
    bodies = [json.loads(record["body"]) for record in received(webhook)]
    return [body for body in bodies if isinstance(body, dict) and "matches" in body]


def status_of(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def published_by(stack: Stack, scrape_run: Any) -> int:
    """How many postings a scrape run published, from its summary artifact."""
    summary = stack.artifacts(scrape_run.id)["scrape-summary"].description
    published = int(re.search(r"(\d+) published", summary).group(1))  # type: ignore[union-attr]
    assert published > 0, summary
    return published


def sqs_of(stack: Stack) -> Any:
    # the queues exist once a flow or `queues ensure` has made them
    subprocess.run([JOBPING, "queues", "ensure"], env=stack.env, capture_output=True, timeout=120, check=True)
    endpoint = f"http://127.0.0.1:{stack.env['JOBPING_EMULATOR_PORT']}"
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **EMULATOR_CREDENTIALS)
    url = next(u for u in sqs.list_queues()["QueueUrls"] if not u.endswith("-dlq"))
    return sqs, url


def analyse_runs(stack: Stack) -> list[Any]:
    with stack.client() as client:
        return list(
            client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["analyse"])))
        )


def drained(stack: Stack, sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    queued = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    return queued == 0 and all(run.state.is_final() for run in analyse_runs(stack))
