"""stack.json: what `jobping stack up` started, and the proof that a pid in it is still that process.

The file is on disk, so it is outside input: after a reboot its pids are anyone's, a pid is
reused by another process in time, and a forged file may name any process. A pid from it is
signalled, or called running, only while its start time and its command line are what we
recorded (:func:`ours`); one that fails is said once and dropped (:func:`forget_stale`). The file
holds no secret: the worker's settings as they may be shown, and a keyed digest of them all.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from jobping import private
from jobping.environment import settings_variables
from jobping.processes import Started, alive, command_line
from jobping.settings import Settings

# the log each part of `up` writes through the log pipe: its command line names it
LOGS = {"emulator": "emulator", "server": "prefect-server", "worker": "prefect-worker", "autoscaler": "autoscaler"}


def state_path(settings: Settings) -> Path:
    return settings.run_dir / "stack.json"


@dataclass
class StackState:
    """What `up` started, by pid and start time; `down` stops these and nothing else.

    It never holds a secret: the settings the worker runs with are kept as they may be shown
    (each secret as ``<set>``), and compared through a digest keyed by this file's own salt.
    """

    pids: dict[str, int] = field(default_factory=dict)
    # each part's start time (processes.start_time): a pid is ours only while it matches
    started: dict[str, str] = field(default_factory=dict)
    api_url: str = ""
    # the settings the running worker was started with, as they may be shown
    worker_env: dict[str, str] = field(default_factory=dict)
    # a keyed digest of everything the worker was started with, secrets and password included
    worker_digest: str = ""
    # the same, for the running autoscaler
    autoscaler_digest: str = ""
    # the key of the digests: a digest from another file tells nothing about a value
    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    restarted: bool = False
    # where alerts go, one line for the console (never saved)
    alerts: str = ""

    @classmethod
    def load(cls, path: Path) -> StackState:
        """The state in ``path``; a missing or malformed file (or entry) is an empty state (or none)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pids = {str(k): v for k, v in dict(data.get("pids", {})).items() if type(v) is int and v > 0}
            started = {str(k): str(v) for k, v in dict(data.get("started", {})).items()}
            shown = {str(k): str(v) for k, v in dict(data.get("worker_env", {})).items()}
            state = cls(pids=pids, started=started, api_url=str(data.get("api_url", "")), worker_env=shown,
                        worker_digest=str(data.get("worker_digest", "")),
                        autoscaler_digest=str(data.get("autoscaler_digest", "")))  # fmt: skip
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()
        if isinstance(data.get("salt"), str) and data["salt"]:
            state.salt = data["salt"]
        return state

    def save(self, path: Path) -> None:
        data = {"pids": self.pids, "started": self.started, "api_url": self.api_url, "worker_env": self.worker_env,
                "worker_digest": self.worker_digest, "autoscaler_digest": self.autoscaler_digest,
                "salt": self.salt}  # fmt: skip
        private.write_text(path, json.dumps(data, indent=1))

    def record(self, part: str, pid: int) -> None:
        """``pid`` as the ``part`` we just started (our child, so its start time is its own)."""
        found = Started.of(pid)
        self.pids[part], self.started[part] = pid, found.at if found else ""

    def forget(self, part: str) -> None:
        self.pids.pop(part, None)
        self.started.pop(part, None)

    def entry(self, part: str) -> Started | None:
        pid = self.pids.get(part)
        return None if pid is None else Started(pid, self.started.get(part, ""))

    def digest(self, env: dict[str, str]) -> str:
        """What a part started with ``env`` runs with, as a digest keyed by this file's salt."""
        password = {k: v for k, v in env.items() if k.endswith("AUTH_STRING")}
        return private.digest(self.salt, run_settings(env) | password)

    def keep_worker(self, env: dict[str, str]) -> None:
        """The settings of a worker started now with ``env``: each secret as <set>, and a digest of all."""
        self.worker_env, self.worker_digest = private.shown(run_settings(env)), self.digest(env)

    @property
    def shown_settings(self) -> str:
        """The worker's settings for the console: what runs from the UI use, a secret only named."""
        return ", ".join(f"{k}={v}" for k, v in self.worker_env.items() if k != "JOBPING_AWS_CREDENTIALS_BLOCK")


def run_settings(env: dict[str, str]) -> dict[str, str]:
    """The settings of ``env`` that runs from the UI use: jobping's own and any other the settings read."""
    known = settings_variables()
    return {k: v for k, v in sorted(env.items()) if k.startswith("JOBPING_") or k in known}


def ours(part: str, state: StackState, settings: Settings) -> bool:
    """Whether ``state``'s pid of ``part`` is the process this data dir's `up` started.

    stack.json is a file on disk: after a reboot its pids may be anyone's, and a forged one may
    name any process. Only the process with the start time we recorded, whose arguments are our
    log pipe writing this data dir's log of that part, is signalled or called running.
    """
    entry = state.entry(part)
    if part not in LOGS or entry is None or not entry.running():
        return False
    args = command_line(entry.pid) or []
    log = str(settings.run_dir / f"{LOGS[part]}.log")
    return "jobping.logpipe" in args and log in args


def _stale_reason(part: str, state: StackState, settings: Settings) -> str | None:
    """Why ``part``'s pid is ignored, when it is to be said; None when it is ours or just gone."""
    entry = state.entry(part)
    if entry is None:
        return None
    if entry.at and entry.before_this_boot():
        return "it was recorded before the last reboot"
    if not alive(entry.pid):
        return None
    if not entry.at:
        return "no start time was recorded for it"
    if not entry.running():
        return "it started at another time"
    return None if ours(part, state, settings) else "its command line is not ours"


def _adopt_unstamped(state: StackState, path: Path) -> bool:
    """Give the pids an older jobping recorded without a start time theirs, when the process running
    under each had started before the file was written (so not a pid reused since, nor after a reboot);
    True when one was. The command line is still proved by :func:`ours`, as for any pid."""
    try:
        written_at = path.stat().st_mtime
    except OSError:
        return False
    adopted = False
    for part, pid in state.pids.items():
        if state.started.get(part):
            continue
        found = Started.recorded_before(pid, written_at)
        if found is not None:
            state.started[part], adopted = found.at, True
    return adopted


def forget_stale(settings: Settings) -> list[str]:
    """Drop from stack.json every pid that is not the process we started; one line for each said.

    A pid that merely exited is dropped in silence; one from before a reboot, one that another
    process holds now, or one whose command line is not ours is said once, and never signalled.
    """
    path = state_path(settings)
    state = StackState.load(path)
    lines, dropped = [], _adopt_unstamped(state, path)
    for part, pid in list(state.pids.items()):
        if ours(part, state, settings):
            continue
        reason = _stale_reason(part, state, settings)
        if reason is not None:
            lines.append(f"stale: {part} pid {pid} is not the process we started ({reason}); ignored")
        state.forget(part)
        dropped = True
    if dropped:
        state.save(path)
    return lines
