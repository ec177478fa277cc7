"""The Kubernetes variant of prefect.yaml deploys the same flows, on the same terms, as the local one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.autoscale import ANALYSE_DEPLOYMENT

ROOT = Path(__file__).parent.parent


def deployments(path: Path) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]}


def test_the_kubernetes_variant_has_the_same_deployments_entrypoints_schedules_and_limits() -> None:
    local, kubernetes = deployments(ROOT / "prefect.yaml"), deployments(ROOT / "deploy" / "prefect.kubernetes.yaml")
    assert local.keys() == kubernetes.keys()
    for name, ours in local.items():
        theirs = kubernetes[name]
        assert theirs["entrypoint"] == ours["entrypoint"], name
        assert theirs.get("concurrency_limit") == ours.get("concurrency_limit"), name
        crons = [s.get("cron") for s in ours.get("schedules", [])]
        assert [s.get("cron") for s in theirs.get("schedules", [])] == crons, name
        assert theirs["work_pool"]["name"] == "jobping-k8s"
        variables = theirs["work_pool"]["job_variables"]
        assert variables["env"]["JOBPING_LLM_GLOBAL_LIMIT"] == "jobping-llm"
        assert "OPENAI_API_KEY" not in variables["env"], "the key comes from a Secret block"
    assert ANALYSE_DEPLOYMENT.split("/")[1] in local


def test_the_autoscaler_manifest_runs_jobping_autoscale_once() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "autoscaler.yaml").read_text(encoding="utf-8"))
    assert manifest["spec"]["replicas"] == 1
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["jobping", "autoscale"]
    names = {e["name"] for e in container["env"]}
    assert {"PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "JOBPING_MAX_CONSUMERS"} <= names
    assert "OPENAI_API_KEY" not in names
