"""docker-compose.yml as Debian's docker-compose reads it: pinned images, a password, keys only where needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
# the services that reach SQS or the LLM: only the worker runs the flows
NEEDS_KEYS = {"worker"}
# the autoscaler reads the queue's depth, and never calls the LLM
NEEDS_AWS_KEYS = {"autoscaler"}
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY")

pytestmark = pytest.mark.skipif(COMPOSE is None, reason="Debian's docker-compose is not installed")


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")} | env
    return subprocess.run(
        [str(COMPOSE), "config"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = compose_config(PREFECT_SERVER_API_AUTH_STRING="admin:chosen", AWS_SECRET_ACCESS_KEY="host-secret")
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout)["services"])


def test_without_a_password_compose_refuses_to_start_and_says_what_to_set() -> None:
    done = compose_config()
    assert done.returncode != 0
    assert "set PREFECT_SERVER_API_AUTH_STRING=admin:<a password>" in done.stderr


def test_the_server_asks_for_the_password_and_the_worker_and_deploy_send_it(services: dict[str, Any]) -> None:
    assert services["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"] == "admin:chosen"
    for name in ("worker", "deploy", "autoscaler"):
        assert services[name]["environment"]["PREFECT_API_AUTH_STRING"] == "admin:chosen"
    # published ports reach this machine only
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_every_image_is_pinned_and_prefect_s_matches_the_lock(services: dict[str, Any]) -> None:
    locked = re.search(r"^prefect==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert locked is not None
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name} has an image without a tag: {image}"
        assert tag not in {"", "latest"}, f"{name} uses a floating image: {image}"
        if repository == "prefecthq/prefect":
            assert tag.startswith(locked.group(1) + "-"), f"{image} is not prefect {locked.group(1)}"


def test_only_the_worker_gets_keys_and_our_images_run_as_an_unprivileged_user(services: dict[str, Any]) -> None:
    for name, service in services.items():
        environment = service.get("environment", {})
        given = {key for key in KEYS if key in environment}
        wanted = set(KEYS) if name in NEEDS_KEYS else set(AWS_KEYS) if name in NEEDS_AWS_KEYS else set()
        assert given == wanted, f"{name} gets {sorted(given)}"
    assert services["worker"]["environment"]["AWS_SECRET_ACCESS_KEY"] == "host-secret"
    ours = [name for name, service in services.items() if service["image"].startswith("jobping:")]
    assert sorted(ours) == ["autoscaler", "deploy", "worker"]
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users, "the Dockerfile sets no USER"
    assert users[-1] not in {"root", "0"}
    for name in ours:
        assert services[name].get("user") == users[-1], f"{name} does not run as {users[-1]}"
