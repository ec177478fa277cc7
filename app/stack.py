"""The local stack behind `make up` / `make down`: emulator, Prefect server, deployments, worker.

Every process it starts runs in its own session with its pid and start time recorded in
stack.json (app/stack_state.py), so that `make down` stops exactly those and nothing else.
Running `up` again reuses what is still running. No secret reaches a file or the console:
every part gets them from the environment when it starts.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_HOME, temporary_settings

from app.alerts import ensure_alerts
from app.autoscale import STATUS_FILE, prepare
from app.health import FAILING, PartStatus
from app.port_owner import refused
from app.prefect_server import AUTH_ENV, Auth, api_url, auth, healthy, http_status
from app.stack_state import StackState, ours, state_path
from jobping import logpipe, private
from jobping.errors import ConfigurationError
from jobping.processes import alive, stop_group
from jobping.settings import Settings
from tasks.llm.limit import GLOBAL_LIMIT_NAME
from tasks.sqs import emulator
from tasks.sqs.client import EMULATOR_CREDENTIALS

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORK_POOL = "jobping"
WORKER_NAME = "jobping-worker"
AWS_BLOCK = "jobping-sqs"
SERVER_START_SECONDS = 90.0
WORKER_START_SECONDS = 60.0
STOP_SECONDS = 15.0
POLL_SECONDS = 0.5


def _prefect_bin() -> str:
    return str(Path(sys.executable).parent / "prefect")


def prefect_env(settings: Settings) -> dict[str, str]:
    """The environment every stack process shares: the server's home, API and auth, our settings."""
    # the CLI's one-line console is for a person at a terminal; the stack's logs keep tracebacks
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING_HANDLERS_CONSOLE_")}
    secret = auth(settings).string
    # the server's database: owner-only also when the password comes from the environment
    private.folder(settings.data_dir / "prefect")
    env.update(
        {
            "PREFECT_HOME": str(settings.data_dir / "prefect"),
            "PREFECT_API_URL": api_url(settings),
            # the server asks for it, the worker and `prefect deploy` send it
            AUTH_ENV: secret,
            "PREFECT_API_AUTH_STRING": secret,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # the ui shows what the runs log at info
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_WORKER_QUERY_SECONDS": f"{settings.stack.worker_query_seconds:g}",
            "JOBPING_DATA_DIR": str(settings.data_dir),
            "JOBPING_TIMEZONE": settings.stack.timezone,
        }
    )
    # every consumer's LLM requests share one bound (JOBPING_LLM_CONCURRENCY), which `up` creates
    env.setdefault("JOBPING_LLM_GLOBAL_LIMIT", GLOBAL_LIMIT_NAME)
    if settings.sqs.uses_emulator and not settings.sqs.credentials_block:
        # the deployments reach sqs through a block, as a prefect user would point them at aws
        env["JOBPING_AWS_CREDENTIALS_BLOCK"] = AWS_BLOCK
    return env


def _spawn(name: str, args: list[str], env: dict[str, str], settings: Settings) -> int:
    """Start ``args`` in its own session through the log pipe; its pid (record it with its start time)."""
    private.folder(settings.run_dir)
    # through the log pipe: the process's log rotates (JOBPING_LOG_MAX_BYTES, JOBPING_LOG_BACKUPS)
    piped = logpipe.command(settings.run_dir / f"{name}.log", settings.stack.log_max_bytes,
                            settings.stack.log_backups, args)  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own executables and fixed arguments
        piped,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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


def _ensure_aws_block(settings: Settings) -> bool:
    """Create the deployments' SQS block, pointing at the emulator, unless it exists; True when created.

    An existing block is the user's to edit (pointing the deployments at AWS is one edit of it
    in the UI): `up` never writes it back.
    """
    # prefect-aws only here, for `make up`: every flow command imports this module, and prefect-aws is slow to import
    from prefect_aws import AwsClientParameters, AwsCredentials  # noqa: PLC0415

    try:
        AwsCredentials.load(AWS_BLOCK, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        pass
    else:
        return False
    AwsCredentials(
        aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        region_name=settings.sqs.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=settings.sqs.emulator_url),
    ).save(AWS_BLOCK)
    return True


def _worker_online() -> bool:
    try:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(WORK_POOL)
    # any failure here means "not ready yet"; the caller's deadline bounds the wait
    except Exception:
        return False
    return any(worker.name == WORKER_NAME and str(worker.status).upper().endswith("ONLINE") for worker in workers)


@contextmanager
def _server_lock(settings: Settings) -> Iterator[None]:
    """One command at a time decides whether to start the server: two would race for the port."""

    with private.open_file(settings.run_dir / "prefect-server.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_server(settings: Settings) -> tuple[str, int | None]:
    """The local Prefect server's API URL, started on 127.0.0.1 when none answers; and its pid if started.

    The server keeps running between commands (its database under the data dir), shared by
    the CLI, the UI and `make up`'s worker; `jobping stack down` stops it.
    """
    url = api_url(settings)
    secret = auth(settings)
    if healthy(settings) and _reusable(url, secret, settings):
        return url, None
    with _server_lock(settings):
        if healthy(settings) and _reusable(url, secret, settings):
            return url, None
        if not _port_free(settings.stack.prefect_port):
            raise ConfigurationError(
                f"port {settings.stack.prefect_port} is taken by something that is not a healthy Prefect server: "
                "stop it or set JOBPING_PREFECT_PORT"
            )
        path = state_path(settings)
        pid = _spawn("prefect-server", server_command(settings), prefect_env(settings), settings)
        state = StackState.load(path)
        state.record("server", pid)
        state.api_url = url
        state.save(path)
        _wait("Prefect server", lambda: healthy(settings), pid, SERVER_START_SECONDS,
              settings.run_dir / "prefect-server.log")  # fmt: skip
    return url, pid


def _reusable(url: str, secret: Auth, settings: Settings) -> bool:
    """Whether the healthy server on our port takes our auth string; an open one we started is stopped.

    An open server is one an older jobping started without authentication: it is restarted with
    it. A server of someone else's is theirs to secure, and is used as it is.
    """
    version = url + "/admin/version"
    if http_status(version, secret.header) == HTTPStatus.UNAUTHORIZED:
        where = f"{AUTH_ENV}" if secret.path is None else f"{secret.path}"
        raise ConfigurationError(refused(settings.stack.prefect_port, settings.data_dir, where, AUTH_ENV))
    if http_status(version, {}) != HTTPStatus.OK:
        return True
    state = StackState.load(state_path(settings))
    pid = state.pids.get("server")
    if pid is None or not ours("server", state, settings):
        return True
    logger.warning("restarting the local Prefect server (pid %d) with authentication on", pid)
    stop_group(pid, STOP_SECONDS)
    return False


def up(settings: Settings) -> StackState:
    """Start (or reuse) the emulator, the server and a worker; create the pool; deploy.

    A worker started with other settings than this command's (secrets and the password
    included, compared by digest) is restarted, so that runs from the UI use what this command
    says they use. A pid is reused or stopped only when it is proven ours (:func:`ours`).
    """

    if not (PROJECT_ROOT / "prefect.yaml").is_file():
        raise ConfigurationError(f"no prefect.yaml in {PROJECT_ROOT}: run `make up` from a jobping checkout")
    path = state_path(settings)
    if settings.sqs.uses_emulator:
        started = emulator.ensure_running(settings)
        if started.started_here and started.pid:
            state = StackState.load(path)
            state.record("emulator", started.pid)
            state.save(path)
    url, _ = ensure_server(settings)
    state = StackState.load(path)
    state.api_url = url
    env = prefect_env(settings)
    # what runs from the UI will use, secrets and the password included: only its digest is kept
    digest = state.digest(env)
    state.restarted = False

    here = {PREFECT_API_URL: url, PREFECT_HOME: Path(env["PREFECT_HOME"]), PREFECT_API_AUTH_STRING: env[AUTH_ENV]}
    with temporary_settings(here):
        _deploy(settings, env)
        if ours("worker", state, settings) and state.worker_digest != digest:
            stop_group(state.pids["worker"], STOP_SECONDS)
            state.restarted = True
        if not ours("worker", state, settings):
            state.record("worker", _spawn("prefect-worker", worker_command(), env, settings))
            state.keep_worker(env)
            state.save(path)
        _wait("Prefect worker", _worker_online, state.pids["worker"], WORKER_START_SECONDS,
              settings.run_dir / "prefect-worker.log")  # fmt: skip
        prepare(settings)
        state.alerts = ensure_alerts(settings)
        # restarted only when this command's settings differ from those it runs with
        if ours("autoscaler", state, settings) and state.autoscaler_digest != digest:
            stop_group(state.pids["autoscaler"], STOP_SECONDS)
        if not ours("autoscaler", state, settings):
            state.record("autoscaler", _spawn("autoscaler", autoscaler_command(), env, settings))
            state.autoscaler_digest = digest
    state.save(path)
    return state


def _jobping_bin() -> str:
    return str(Path(sys.executable).parent / "jobping")


def server_command(settings: Settings) -> list[str]:
    """The local Prefect server in the foreground, as `up` and the server's service start it."""
    return [_prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(settings.stack.prefect_port)]


def worker_command() -> list[str]:
    return [_prefect_bin(), "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", WORKER_NAME]


def autoscaler_command() -> list[str]:
    return [_jobping_bin(), "autoscale"]


def _deploy(settings: Settings, env: dict[str, str]) -> None:
    """The blocks, the work pool and the deployments of prefect.yaml, on the server of ``env``."""
    if "JOBPING_AWS_CREDENTIALS_BLOCK" in env and env["JOBPING_AWS_CREDENTIALS_BLOCK"] == AWS_BLOCK:
        _ensure_aws_block(settings)
    _run([_prefect_bin(), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env,
         "creating the work pool")  # fmt: skip
    _run([_prefect_bin(), "--no-prompt", "deploy", "--all"], env, "deploying")


def deploy(settings: Settings) -> None:
    """Deploy onto the running local server (the services' path: they start no deploy of their own)."""
    env = prefect_env(settings)
    here = {PREFECT_API_URL: api_url(settings), PREFECT_HOME: Path(env["PREFECT_HOME"]),
            PREFECT_API_AUTH_STRING: env[AUTH_ENV]}  # fmt: skip
    with temporary_settings(here):
        _deploy(settings, env)
        # the services' path says when a night went wrong too
        ensure_alerts(settings)


@dataclass(frozen=True)
class Part:
    """One process of the local stack, as `jobping stack status` shows it."""

    name: str
    where: str
    running: bool
    pid: int | None
    # what it says keeps failing (its status file), while it runs
    problem: str | None = None

    @property
    def state(self) -> str:
        if not self.running:
            return "not running"
        return f"failing: {self.problem}" if self.problem else "running"


def status(settings: Settings) -> list[Part]:
    """What of the local stack runs, where, with which pids."""

    state = StackState.load(state_path(settings))
    parts = []
    if settings.sqs.uses_emulator:
        found = emulator.status(settings)
        parts.append(Part("SQS emulator", found.url, found.running, found.pid))
    else:
        parts.append(Part("SQS", str(settings.sqs.endpoint_url), True, None))
    url = api_url(settings)
    server = state.pids.get("server") if ours("server", state, settings) else None
    parts.append(Part("Prefect server", url.removesuffix("/api"), healthy(settings), server))
    worker = state.pids.get("worker") if ours("worker", state, settings) else None
    parts.append(Part("Prefect worker", f"pool {WORK_POOL}", worker is not None, worker))
    autoscaler = state.pids.get("autoscaler") if ours("autoscaler", state, settings) else None
    said = PartStatus.read(settings.run_dir / STATUS_FILE)
    # the autoscaler writes its own pid; stack.json holds the pid of the log pipe that leads its group
    problem = said.reason if said and said.state == FAILING and _in_group(said.pid, autoscaler) else None
    parts.append(Part("autoscaler", f"analyse runs for {settings.sqs.queue_name}", autoscaler is not None,
                      autoscaler, problem))  # fmt: skip
    return parts


def _in_group(pid: int, leader: int | None) -> bool:
    if leader is None:
        return False
    try:
        return pid == leader or os.getpgid(pid) == leader
    except ProcessLookupError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def down(settings: Settings) -> list[str]:
    """Stop what jobping started for this data dir (worker, server, emulator), and nothing else."""

    path = state_path(settings)
    state = StackState.load(path)
    stopped = []
    for name in ("autoscaler", "worker", "server"):
        if ours(name, state, settings):
            stop_group(state.pids[name], STOP_SECONDS)
            stopped.append(name)
    # the emulator this data dir started, whether by `up` or by a flow command
    if emulator.stop(settings):
        stopped.append("emulator")
    path.unlink(missing_ok=True)
    return stopped
