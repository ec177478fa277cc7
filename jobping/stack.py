"""The local stack behind `make up` / `make down`: emulator, Prefect server, deployments, worker.

Every process it starts runs in its own session with its pid recorded, so that `make down`
stops exactly those and nothing else. Running `up` again reuses what is still running.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jobping.errors import ConfigurationError
from jobping.processes import alive, stop_group
from jobping.settings import Settings

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORK_POOL = "jobping"
WORKER_NAME = "jobping-worker"
AWS_BLOCK = "jobping-sqs"
SERVER_START_SECONDS = 90.0
WORKER_START_SECONDS = 60.0
STOP_SECONDS = 15.0
POLL_SECONDS = 0.5


@dataclass
class StackState:
    """What `up` started, by pid; `down` stops these and nothing else."""

    pids: dict[str, int] = field(default_factory=dict)
    api_url: str = ""
    # the JOBPING_* settings the running worker was started with
    worker_env: dict[str, str] = field(default_factory=dict)
    restarted: bool = False

    @classmethod
    def load(cls, path: Path) -> StackState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(
            pids={str(k): int(v) for k, v in data.get("pids", {}).items()},
            api_url=str(data.get("api_url", "")),
            worker_env={str(k): str(v) for k, v in data.get("worker_env", {}).items()},
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"pids": self.pids, "api_url": self.api_url, "worker_env": self.worker_env}
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _state_path(settings: Settings) -> Path:
    return settings.run_dir / "stack.json"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http url
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _prefect_bin() -> str:
    return str(Path(sys.executable).parent / "prefect")


def prefect_env(settings: Settings) -> dict[str, str]:
    """The environment every stack process shares: the server's home and API, our settings."""
    # the CLI's one-line console is for a person at a terminal; the stack's logs keep tracebacks
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING_HANDLERS_CONSOLE_")}
    env.update(
        {
            "PREFECT_HOME": str(settings.data_dir / "prefect"),
            "PREFECT_API_URL": api_url(settings),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # the ui shows what the runs log at info
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_WORKER_QUERY_SECONDS": f"{settings.worker_query_seconds:g}",
            "JOBPING_DATA_DIR": str(settings.data_dir),
            "JOBPING_TIMEZONE": settings.timezone,
        }
    )
    if settings.uses_emulator and not settings.aws_credentials_block:
        # the deployments reach sqs through a block, as a prefect user would point them at aws
        env["JOBPING_AWS_CREDENTIALS_BLOCK"] = AWS_BLOCK
    return env


def _spawn(name: str, args: list[str], env: dict[str, str], settings: Settings) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own executables and fixed arguments
            args,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own session: it outlives this command, and `down` can end its whole group
            start_new_session=True,
        )
    return process.pid


def _wait(what: str, ready: object, pid: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if not alive(pid):
            raise ConfigurationError(f"the {what} exited while starting; see {log}")
        if time.monotonic() > deadline:
            raise ConfigurationError(f"the {what} was not ready within {timeout:.0f} s; see {log}")
        time.sleep(POLL_SECONDS)


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise ConfigurationError(f"{what} failed: {(done.stderr or done.stdout)[-2000:]}")


def _save_aws_block(settings: Settings) -> None:
    from prefect_aws import AwsClientParameters, AwsCredentials

    from tasks.sqs.client import EMULATOR_CREDENTIALS

    AwsCredentials(
        aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        region_name=settings.aws_region,
        aws_client_parameters=AwsClientParameters(endpoint_url=settings.emulator_url),
    ).save(AWS_BLOCK, overwrite=True)


def _worker_online() -> bool:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(WORK_POOL)
    # any failure here means "not ready yet"; the caller's deadline bounds the wait
    except Exception:
        return False
    return any(worker.name == WORKER_NAME and str(worker.status).upper().endswith("ONLINE") for worker in workers)


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prefect_port}/api"


@contextmanager
def _server_lock(settings: Settings) -> Iterator[None]:
    """One command at a time decides whether to start the server: two would race for the port."""
    import fcntl

    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / "prefect-server.lock", "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_server(settings: Settings) -> tuple[str, int | None]:
    """The local Prefect server's API URL, started on 127.0.0.1 when none answers; and its pid if started.

    The server keeps running between commands (its database under the data dir), shared by
    the CLI, the UI and `make up`'s worker; `jobping stack down` stops it.
    """
    url = api_url(settings)
    if _healthy(url + "/health"):
        return url, None
    with _server_lock(settings):
        if _healthy(url + "/health"):
            return url, None
        if not _port_free(settings.prefect_port):
            raise ConfigurationError(
                f"port {settings.prefect_port} is taken by something that is not a healthy Prefect server: "
                "stop it or set JOBPING_PREFECT_PORT"
            )
        path = _state_path(settings)
        args = [_prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(settings.prefect_port)]
        pid = _spawn("prefect-server", args, prefect_env(settings), settings)
        state = StackState.load(path)
        state.pids["server"], state.api_url = pid, url
        state.save(path)
        _wait("Prefect server", lambda: _healthy(url + "/health"), pid, SERVER_START_SECONDS,
              settings.run_dir / "prefect-server.log")  # fmt: skip
    return url, pid


def up(settings: Settings) -> StackState:
    """Start (or reuse) the emulator, the server and a worker; create the pool; deploy.

    A worker started with other JOBPING_* settings than this command's is restarted, so that
    runs from the UI use what this command says they use.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from tasks.sqs import emulator

    if not (PROJECT_ROOT / "prefect.yaml").is_file():
        raise ConfigurationError(f"no prefect.yaml in {PROJECT_ROOT}: run `make up` from a jobping checkout")
    path = _state_path(settings)
    if settings.uses_emulator:
        started = emulator.ensure_running(settings)
        if started.started_here and started.pid:
            state = StackState.load(path)
            state.pids["emulator"] = started.pid
            state.save(path)
    url, _ = ensure_server(settings)
    state = StackState.load(path)
    state.api_url = url
    env = prefect_env(settings)
    # the JOBPING_* environment a worker started now gets: what runs from the UI will use
    wanted = {k: v for k, v in sorted(env.items()) if k.startswith("JOBPING_")}
    state.restarted = False

    with temporary_settings({PREFECT_API_URL: url, PREFECT_HOME: Path(env["PREFECT_HOME"])}):
        if "JOBPING_AWS_CREDENTIALS_BLOCK" in env and env["JOBPING_AWS_CREDENTIALS_BLOCK"] == AWS_BLOCK:
            _save_aws_block(settings)
        _run([_prefect_bin(), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env,
             "creating the work pool")  # fmt: skip
        _run([_prefect_bin(), "--no-prompt", "deploy", "--all"], env, "deploying")
        worker = state.pids.get("worker")
        if worker is not None and alive(worker) and state.worker_env != wanted:
            stop_group(worker, STOP_SECONDS)
            state.restarted = True
            worker = None
        if worker is None or not alive(worker):
            args = [_prefect_bin(), "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", WORKER_NAME]
            state.pids["worker"] = _spawn("prefect-worker", args, env, settings)
            state.worker_env = wanted
            state.save(path)
        _wait("Prefect worker", _worker_online, state.pids["worker"], WORKER_START_SECONDS,
              settings.run_dir / "prefect-worker.log")  # fmt: skip
    state.save(path)
    return state


@dataclass(frozen=True)
class Part:
    """One process of the local stack, as `jobping stack status` shows it."""

    name: str
    where: str
    running: bool
    pid: int | None


def status(settings: Settings) -> list[Part]:
    """What of the local stack runs, where, with which pids."""
    from tasks.sqs import emulator

    state = StackState.load(_state_path(settings))
    parts = []
    if settings.uses_emulator:
        found = emulator.status(settings)
        parts.append(Part("SQS emulator", found.url, found.running, found.pid))
    else:
        parts.append(Part("SQS", str(settings.sqs_endpoint_url), True, None))
    url = api_url(settings)
    server = state.pids.get("server")
    parts.append(Part("Prefect server", url.removesuffix("/api"), _healthy(url + "/health"),
                      server if server and alive(server) else None))  # fmt: skip
    worker = state.pids.get("worker")
    parts.append(Part("Prefect worker", f"pool {WORK_POOL}", bool(worker and alive(worker)),
                      worker if worker and alive(worker) else None))  # fmt: skip
    return parts


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def down(settings: Settings) -> list[str]:
    """Stop what jobping started for this data dir (worker, server, emulator), and nothing else."""
    from tasks.sqs import emulator

    path = _state_path(settings)
    state = StackState.load(path)
    stopped = []
    for name in ("worker", "server"):
        pid = state.pids.get(name)
        if pid is not None and alive(pid):
            stop_group(pid, STOP_SECONDS)
            stopped.append(name)
    # the emulator this data dir started, whether by `up` or by a flow command
    if emulator.stop(settings):
        stopped.append("emulator")
    path.unlink(missing_ok=True)
    return stopped
