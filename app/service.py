"""`jobping stack service print|install|uninstall|status`: the stack as systemd user units or launchd agents.

One unit per component, each running `jobping stack run <component>` (see app/runner.py), so
that no unit file holds a secret: the server's password stays in its owner-only file, an
OpenAI key or webhook URL in the environment, the checkout's .env or Prefect Secret blocks.
Units carry only the non-secret JOBPING_* settings of the shell that installs them.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app import prefect_server, runner, stack, stack_state
from jobping import private
from jobping.errors import ConfigurationError
from jobping.settings import Settings

Platform = Literal["systemd", "launchd"]
UNIT_PREFIX = "jobping-"
LAUNCHD_PREFIX = "local.jobping."
# after a crash, systemd waits this long before it starts the runner again (which then backs off more)
RESTART_SECONDS = 5
# launchd's fixed wait between two starts of an agent
THROTTLE_SECONDS = 10
# how long a runner has to stop its component before systemd kills what is left
STOP_TIMEOUT_SECONDS = 30
SYSTEMCTL_SECONDS = 60.0
# how long `install` waits for the server's service to answer before deploying
SERVER_START_SECONDS = 180.0


@dataclass(frozen=True)
class Unit:
    """One rendered unit: its file name and text."""

    component: str
    file: str
    text: str


def default_platform() -> Platform:
    return "launchd" if sys.platform == "darwin" else "systemd"


def default_dir(platform: Platform) -> Path:
    if platform == "launchd":
        return Path.home() / "Library" / "LaunchAgents"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def unit_environment(settings: Settings) -> dict[str, str]:
    """The settings a unit carries: this shell's JOBPING_* variables but the secret ones (private.is_secret)."""
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("JOBPING_") and not private.is_secret(k, v)}
    env["JOBPING_DATA_DIR"] = str(settings.data_dir)
    return env


def unit_name(part: runner.Component, platform: Platform) -> str:
    """jobping-prefect-server.service, or local.jobping.prefect-server (a launchd label)."""
    return f"{UNIT_PREFIX}{part.log}.service" if platform == "systemd" else f"{LAUNCHD_PREFIX}{part.log}"


def _quote(value: str) -> str:
    # systemd's quoting: a value in double quotes, with \\ and \" escaped, and % doubled (specifiers)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def _systemd(part: runner.Component, settings: Settings) -> str:
    jobping = str(Path(sys.executable).parent / "jobping")
    parts = runner.components(settings)
    before = [unit_name(p, "systemd") for p in parts if not p.after_server and p is not part]
    # the worker and autoscaler after the server (and emulator); Wants, not Requires: a restart of
    # the server must not stop them, their runners wait for it
    order = f"After=network.target {' '.join(before)}\nWants={' '.join(before)}" if part.after_server else ""
    env = "".join(f"Environment={_quote(f'{k}={v}')}\n" for k, v in unit_environment(settings).items())
    return f"""[Unit]
Description=jobping: {part.description}
Documentation=file://{stack.PROJECT_ROOT / "README.md"}
{order or "After=network.target"}
# never give up: the runner itself waits longer after each fast failure
StartLimitIntervalSec=0

[Service]
Type=simple
WorkingDirectory={str(stack.PROJECT_ROOT).replace("%", "%%")}
ExecStart={_quote(jobping)} stack run {part.name}
{env}# optional, yours, mode 0600: secrets such as OPENAI_API_KEY; jobping also reads the checkout's .env
EnvironmentFile=-%h/.config/jobping/env
Restart=always
RestartSec={RESTART_SECONDS}
# the runner passes SIGTERM on to its component; what is left after the timeout is killed
KillMode=mixed
TimeoutStopSec={STOP_TIMEOUT_SECONDS}
# the component's output goes to {runner.log_path(part, settings)} (rotated); the runner's own to the journal

[Install]
WantedBy=default.target
"""


def _launchd(part: runner.Component, settings: Settings) -> str:
    jobping = str(Path(sys.executable).parent / "jobping")
    # launchd has no ordering: the worker's and autoscaler's runners wait for the server themselves
    plist = {
        "Label": unit_name(part, "launchd"),
        "ProgramArguments": [jobping, "stack", "run", part.name],
        "WorkingDirectory": str(stack.PROJECT_ROOT),
        "EnvironmentVariables": unit_environment(settings),
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": THROTTLE_SECONDS,
        "ExitTimeOut": STOP_TIMEOUT_SECONDS,
        # the runner's own few lines (it makes the file owner-only); the component's output goes to its rotated log
        "StandardOutPath": str(runner.launchd_log_path(part, settings)),
        "StandardErrorPath": str(runner.launchd_log_path(part, settings)),
    }
    return plistlib.dumps(plist, sort_keys=False).decode()


def render(settings: Settings, platform: Platform) -> list[Unit]:
    """Every unit of this configuration, in start order (the server before the worker and autoscaler)."""
    units = []
    for part in runner.components(settings):
        name = unit_name(part, platform)
        if platform == "systemd":
            units.append(Unit(part.name, name, _systemd(part, settings)))
        else:
            units.append(Unit(part.name, name + ".plist", _launchd(part, settings)))
    return units


def _tool(platform: Platform) -> str:
    tool = "systemctl" if platform == "systemd" else "launchctl"
    found = shutil.which(tool)
    if found is None:
        raise ConfigurationError(f"{tool} is not on PATH")
    return found


def _call(args: list[str], what: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=SYSTEMCTL_SECONDS, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise ConfigurationError(f"{what}: `{' '.join(args)}` did not finish within {SYSTEMCTL_SECONDS:.0f} s") from exc
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigurationError(f"{what} failed: {reason[0] if reason else f'exit code {done.returncode}'}")
    return done.stdout


def install(settings: Settings, platform: Platform, folder: Path, *, start: bool) -> list[Path]:
    """Write every unit into ``folder``; with ``start``, enable and start them, then deploy."""
    if start:
        state = stack_state.StackState.load(stack_state.state_path(settings))
        running = [name for name in state.pids if stack_state.ours(name, state, settings)]
        if running:
            raise ConfigurationError(
                f"`jobping stack up` runs {', '.join(running)} here: stop it with `jobping stack down` first"
            )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in render(settings, platform):
        path = folder / unit.file
        path.write_text(unit.text, encoding="utf-8")
        written.append(path)
    if not start:
        return written
    try:
        tool = _tool(platform)
        if platform == "systemd":
            _call([tool, "--user", "daemon-reload"], "systemctl --user daemon-reload")
            _call([tool, "--user", "enable", "--now", *(p.name for p in written)], "systemctl --user enable --now")
        else:
            for path in written:
                _call([tool, "bootstrap", f"gui/{os.getuid()}", str(path)], f"launchctl bootstrap {path.name}")
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (the units are written to {folder}, not started)") from exc
    _wait_for_server(settings)
    stack.deploy(settings)
    return written


def _wait_for_server(settings: Settings) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not prefect_server.healthy(settings):
        if time.monotonic() > deadline:
            log = runner.log_path(runner.component("server", settings), settings)
            raise ConfigurationError(
                f"the Prefect server's service did not answer within {SERVER_START_SECONDS:.0f} s; see {log}"
            )
        time.sleep(runner.POLL_SECONDS)


def uninstall(settings: Settings, platform: Platform, folder: Path, *, stop: bool) -> list[Path]:
    """Stop and disable every unit (with ``stop``), then remove its file from ``folder``."""
    files = [folder / unit.file for unit in render(settings, platform)]
    present = [path for path in files if path.exists()]
    if stop and present:
        tool = _tool(platform)
        if platform == "systemd":
            _call([tool, "--user", "disable", "--now", *(p.name for p in present)], "systemctl --user disable --now")
        else:
            for path in present:
                _call([tool, "bootout", f"gui/{os.getuid()}/{path.name.removesuffix('.plist')}"],
                      f"launchctl bootout {path.name}")  # fmt: skip
    for path in present:
        path.unlink()
    if stop and platform == "systemd" and present:
        _call([_tool(platform), "--user", "daemon-reload"], "systemctl --user daemon-reload")
    return present


@dataclass(frozen=True)
class ServiceState:
    """One unit as `jobping stack service status` shows it."""

    unit: str
    installed: bool
    manager: str
    runner: str
    log: Path


def _manager_state(platform: Platform, name: str) -> str:
    tool = shutil.which("systemctl" if platform == "systemd" else "launchctl")
    if tool is None:
        return "unknown (no systemctl)" if platform == "systemd" else "unknown (no launchctl)"
    if platform == "systemd":
        args = [tool, "--user", "show", "--property=ActiveState,SubState,NRestarts", "--value", name]
    else:
        args = [tool, "print", f"gui/{os.getuid()}/{name}"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=SYSTEMCTL_SECONDS, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return "unknown (no answer)"
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        return f"unknown ({reason[0] if reason else done.returncode})"
    if platform == "launchd":
        return "loaded"
    active, sub, restarts = ([*done.stdout.split(), "", "", ""])[:3]
    return f"{active} ({sub}, {restarts} restarts)"


def status(settings: Settings, platform: Platform, folder: Path) -> list[ServiceState]:
    states = []
    for part in runner.components(settings):
        name = unit_name(part, platform)
        file = folder / (name if platform == "systemd" else name + ".plist")
        record = runner.read_record(part.name, settings)
        states.append(ServiceState(name, file.exists(), _manager_state(platform, name), runner_state(record, part.name),
                                   runner.log_path(part, settings)))  # fmt: skip
    return states


def runner_state(record: runner.Record, name: str) -> str:
    """What a runner's record says, in a few words."""
    if not record.running(name):
        return "not running" if record.code is None else f"not running (last exit code {record.code})"
    if record.state == "waiting":
        return f"backing off after {record.failures} failures (runner pid {record.pid})"
    return f"running (pid {record.child}, {record.manager})"


def running_services(settings: Settings) -> list[tuple[runner.Component, runner.Record]]:
    """The components whose `jobping stack run` runner lives, for `stack status`, `up` and `down`."""
    found = []
    for part in runner.components(settings):
        record = runner.read_record(part.name, settings)
        if record.running(part.name):
            found.append((part, record))
    return found
