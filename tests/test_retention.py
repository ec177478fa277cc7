"""Prefect's memory of jobping's runs stays bounded: runs that ended long ago go, with their artifacts."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.exceptions import ObjectNotFound

from flows.retention import JOBPING_FLOWS, forget_old_runs
from flows.scrape import scrape
from tasks.jobspy.search import ScrapeParameters

ROOT = Path(__file__).parent.parent


@flow(name="someone-else-s-flow")
def someone_else_s_flow() -> int:
    return 1


def test_the_flows_retention_knows_are_exactly_those_prefect_yaml_deploys() -> None:
    deployed = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    names = set()
    for deployment in deployed:
        module, _, function = deployment["entrypoint"].partition(":")
        names.add(getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), function).name)
    assert names == set(JOBPING_FLOWS)


@pytest.mark.usefixtures("prefect_api", "env")
def test_runs_that_ended_before_the_retention_go_with_their_artifacts_and_no_one_else_s_run_goes() -> None:
    ours = scrape(ScrapeParameters(source="sample", sites=["google"]), return_state=True)
    theirs = someone_else_s_flow(return_state=True)
    ours_id, theirs_id = ours.state_details.flow_run_id, theirs.state_details.flow_run_id
    assert ours_id is not None
    assert theirs_id is not None
    with get_client(sync_client=True) as client:
        artifacts = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[ours_id]))
        assert client.read_artifacts(artifact_filter=artifacts), "the scrape run left no artifact to delete"

        # ended a moment ago: within an hour's retention, kept
        forget_old_runs(timedelta(hours=1))
        assert client.read_flow_run(ours_id).id == ours_id

        # the session's other tests' runs go too: how many depends on which ran before in this worker
        assert forget_old_runs(timedelta(0)) >= 1
        with pytest.raises(ObjectNotFound):
            client.read_flow_run(ours_id)
        assert client.read_artifacts(artifact_filter=artifacts) == []
        assert client.read_flow_run(theirs_id).id == theirs_id
