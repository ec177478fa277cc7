"""Hostile probe: the stack's state files name processes and hold settings; neither may be turned against the user.

(a) A forged stack.json (and emulator pid file) naming live processes that someone else started
with our very command lines, and a stack.json from "before a reboot" naming parts we did start:
`jobping stack down`, `stack status` and `emulator stop` must signal none of them and say each is
stale. (b) Secrets in the shell (an OpenAI key, a webhook URL with a token, proxy credentials):
the code `stack up` uses to build, record and print the worker's environment must leave them in no
file under the data dir and in no output, and every state and log file under data/run must be
0600 in a 0700 folder, though an older jobping left data/run at 0755 with a 0644 log.

Run by path (runpy): ``probe(work)`` builds its scenario in the empty folder ``work``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from app import stack, stack_state
from app.autoscale import STATUS_FILE
from app.cli import common
from app.cli.local_stack import sign_in
from app.health import Health
from jobping import logpipe
from jobping.processes import alive, boot_id, command_line, stop_group
from jobping.settings import Settings
from standins.servers import free_port

JOBPING = str(Path(sys.executable).parent / "jobping")
COMMAND_SECONDS = 60.0
EXEC_SECONDS = 10.0
POLL_SECONDS = 0.05
PARTS = ("server", "worker", "autoscaler")
OPENAI_KEY = "sk-PROBE-" + uuid.uuid4().hex
WEBHOOK_TOKEN = "XoXPROBEtoken" + uuid.uuid4().hex[:12]
PROXY_PASSWORD = "PROBEproxy" + uuid.uuid4().hex[:12]


def _wait_for_exec(pid: int, marker: str) -> None:
    deadline = time.monotonic() + EXEC_SECONDS
    while not any(marker in arg for arg in command_line(pid) or []):
        if time.monotonic() > deadline:
            raise AssertionError(f"probe setup: pid {pid} never showed {marker!r} in its command line")
        time.sleep(POLL_SECONDS)


def _jobping(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([JOBPING, *args], env=env, capture_output=True, text=True, timeout=COMMAND_SECONDS,
                          check=False)  # fmt: skip
    if done.returncode not in (0, 3):
        raise AssertionError(f"`jobping {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout + done.stderr


@contextlib.contextmanager
def _processes(argvs: list[list[str]]) -> Iterator[list[int]]:
    """Processes started in their own sessions, whatever they are; all stopped at the end."""
    started = [subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for argv in argvs]  # fmt: skip
    try:
        yield [process.pid for process in started]
    finally:
        for process in started:
            stop_group(process.pid, 10)
            process.wait()


def _forged_pids(env: dict[str, str], settings: Settings) -> str:
    """(a): mimics with our command lines and unrecorded start times, and our own parts from "another boot"."""
    run = settings.run_dir
    run.mkdir(parents=True, exist_ok=True)
    pipe = [logpipe.command(run / f"{stack_state.LOGS[part]}.log", settings.stack.log_max_bytes,
                            settings.stack.log_backups, ["sleep", "120"]) for part in PARTS]  # fmt: skip
    port = settings.sqs.emulator_port
    moto = [sys.executable, "-c", "import time; time.sleep(120)", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _processes([*pipe, moto]) as pids:
        mimics, emulator = dict(zip(PARTS, pids[:3], strict=True)), pids[3]
        for pid in pids:
            _wait_for_exec(pid, "jobping.logpipe" if pid != emulator else "moto.server")
        forged = {"pids": mimics, "started": {part: f"{boot_id()}/1" for part in PARTS}}
        (run / "stack.json").write_text(json.dumps(forged), encoding="utf-8")
        (run / f"emulator-{port}.pid").write_text(f"{emulator} {boot_id()}/1", encoding="ascii")
        said = _jobping(env, "stack", "status") + _jobping(env, "stack", "down") + _jobping(env, "emulator", "stop")
        killed = [pid for pid in pids if not alive(pid)]
        if killed:
            raise AssertionError(f"forged pid files: {len(killed)} of {len(pids)} processes we did not start signalled")
        stale_mimics = sum(f"pid {pid} is not the process we started" in said for pid in mimics.values())
        if stale_mimics != len(PARTS):
            raise AssertionError(f"forged stack.json: {stale_mimics} of {len(PARTS)} mimics reported stale: {said!r}")

        # parts we did start, recorded with their own start times, in a file from another boot
        state = stack_state.StackState()
        for part in PARTS:
            state.record(part, stack._spawn(stack_state.LOGS[part], ["sleep", "120"], env, settings))
        ours = list(state.pids.values())
        try:
            for pid in ours:
                _wait_for_exec(pid, "jobping.logpipe")
            other = str(uuid.uuid4())
            state.started = {part: other + "/" + at.partition("/")[2] for part, at in state.started.items()}
            state.save(run / "stack.json")
            said = _jobping(env, "stack", "down")
            signalled = [pid for pid in ours if not alive(pid)]
            if signalled:
                raise AssertionError(f"a stack.json from before a reboot: {len(signalled)} of {len(ours)} signalled")
            rebooted = said.count("recorded before the last reboot")
            if rebooted != len(PARTS):
                raise AssertionError(f"a stack.json from before a reboot: {rebooted} of {len(PARTS)} pids said stale")
        finally:
            for pid in ours:
                stop_group(pid, 10)
    return (f"{len(pids)} forged pids with our command lines ({len(PARTS)} in stack.json, 1 emulator pid file) "
            f"and {len(ours)} from before a reboot: 0 signalled, {stale_mimics + rebooted} said stale")  # fmt: skip


def _modes(root: Path) -> dict[str, int]:
    return {str(path): stat.S_IMODE(path.stat().st_mode) for path in [root, *root.rglob("*")]}


def _up_s_worker(env: dict[str, str], settings: Settings) -> str:
    """What `stack up` builds, records, logs and prints for the worker it starts; what it printed."""
    before = dict(os.environ)
    os.environ.update(env)
    printed = io.StringIO()
    try:
        # as `up`: the environment every part gets (the generated password included), the worker
        # started with it through the log pipe, its pid and settings recorded, the lines printed
        shell = stack.prefect_env(settings)
        state = stack_state.StackState()
        state.record("worker", stack._spawn("prefect-worker", [sys.executable, "-c", "print('worker up')"],
                                            shell, settings))  # fmt: skip
        state.keep_worker(shell)
        state.save(settings.run_dir / "stack.json")
        # the autoscaler's status file, as it writes it
        Health("autoscaler", settings.run_dir / STATUS_FILE, 1.0)
        console = common.console.file
        common.console.file = printed
        try:
            common.console.print(f"the worker runs with {state.shown_settings}")
            common.console.print(sign_in(settings))
        finally:
            common.console.file = console
    finally:
        os.environ.clear()
        os.environ.update(before)
    deadline = time.monotonic() + EXEC_SECONDS
    while alive(state.pids["worker"]):
        if time.monotonic() > deadline:
            raise AssertionError("probe setup: the stand-in worker did not exit")
        time.sleep(POLL_SECONDS)
    return printed.getvalue()


def _secrets_kept(env: dict[str, str], settings: Settings) -> str:
    """(b): the secrets in no file and no output, the state and logs owner-only, in a data dir left open."""
    run = settings.run_dir
    run.mkdir(parents=True, mode=0o755, exist_ok=True)
    run.chmod(0o755)
    (run / "prefect-worker.log").write_text("an older jobping's line\n", encoding="utf-8")
    (run / "prefect-worker.log").chmod(0o644)
    output = _up_s_worker(env, settings) + _jobping(env, "stack", "status")
    password = (settings.data_dir / "prefect" / "api-auth").read_text(encoding="ascii").strip()
    secrets = (OPENAI_KEY, WEBHOOK_TOKEN, PROXY_PASSWORD)
    # before `down`, which deletes stack.json
    files = [path for path in settings.data_dir.rglob("*") if path.is_file()]
    holding = sorted({str(path) for path in files for secret in secrets if secret.encode() in path.read_bytes()})
    if holding:
        raise AssertionError(f"secrets in {len(holding)} files: {', '.join(holding)}")
    prefect = settings.data_dir / "prefect"
    wanted = {path: 0o700 if Path(path).is_dir() else 0o600 for path in _modes(run)}
    wanted |= {str(prefect): 0o700, str(prefect / "api-auth"): 0o600}
    found = _modes(run) | _modes(prefect)
    open_to_others = {path: oct(found[path]) for path, mode in wanted.items() if found[path] != mode}
    if open_to_others:
        raise AssertionError(f"not owner-only: {open_to_others}")
    output += _jobping(env, "stack", "down")
    shown = [secret for secret in (*secrets, password) if secret in output]
    if shown:
        raise AssertionError(f"{len(shown)} secrets printed by the code `stack up` runs: {output[:200]!r}")
    if "JOBPING_OPENAI_API_KEY=<set>" not in output:
        raise AssertionError(f"the secret settings are not named in the output: {output[:300]!r}")
    return (
        f"{len(secrets)} secrets and the generated password: in 0 of {len(files)} files and 0 output lines "
        f"(named as <set>); {len(wanted)} state/log files and folders under data/run and data/prefect owner-only "
        "(data/run and a log left 0755/0644 tightened)"
    )


def probe(work: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
    env |= {
        "JOBPING_DATA_DIR": str(work / "data"),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "JOBPING_EMULATOR_PORT": str(free_port()),
    }
    forged = _forged_pids(env, _settings_of(env))
    secret_env = env | {
        "JOBPING_DATA_DIR": str(work / "secrets"),
        "JOBPING_OPENAI_API_KEY": OPENAI_KEY,
        "JOBPING_NOTIFY_WEBHOOK_URL": f"https://hooks.example.com/services/T0/B0/{WEBHOOK_TOKEN}?key=x",
        "JOBPING_SCRAPE_PROXIES": f"http://scraper:{PROXY_PASSWORD}@proxy.example:3128",
    }
    kept = _secrets_kept(secret_env, _settings_of(secret_env))
    return f"{forged}; {kept}"


def _settings_of(env: dict[str, str]) -> Settings:
    """The settings a command run with ``env`` builds (read from it, not from this process's environment)."""
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(before)
