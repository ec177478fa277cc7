"""The stack as services: units systemd accepts, agents launchd reads, no secret in either, logs that rotate."""

from __future__ import annotations

import json
import os
import plistlib
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import stack, stack_state
from jobping.processes import stop_group
from jobping.settings import Settings
from standins.servers import free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
JOBPING = str(Path(sys.executable).parent / "jobping")
# present on this machine and in CI: a missing one fails the test, it is not skipped
SYSTEMD_ANALYZE = next((p for p in ("/usr/bin/systemd-analyze", "/bin/systemd-analyze") if Path(p).exists()),
                       "/usr/bin/systemd-analyze")  # fmt: skip
COMMAND_SECONDS = 60.0
START_SECONDS = 60.0
# a Prefect server answers 5-12 s after start on a quiet machine; `stack up` deploys within this too
SERVER_START_SECONDS = 240.0
POLL_SECONDS = 0.2
OPENAI_KEY = "sk-service-test-" + "k3y" * 8
WEBHOOK = "https://hooks.example.com/services/T0/B0/" + "t0ken" * 5
AUTH = "jobping:" + "pa55word" * 4
PROXY_PASSWORD = "pr0xy-" + "pa55" * 5
SYSTEMD_UNITS = ["jobping-emulator.service", "jobping-prefect-server.service", "jobping-prefect-worker.service",
                 "jobping-autoscaler.service"]  # fmt: skip
LAUNCHD_LABELS = ["local.jobping.emulator", "local.jobping.prefect-server", "local.jobping.prefect-worker",
                  "local.jobping.autoscaler"]  # fmt: skip
# the one-shot service of docker-compose.yml: it deploys and exits, so it is never restarted
ONE_SHOT = {"deploy"}


def jobping(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBPING, *args], env=env, capture_output=True, text=True, timeout=COMMAND_SECONDS,
                          check=False)  # fmt: skip


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's shell with its own data dir and ports, and secrets in it that must stay out of every unit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPING_", "PREFECT_", "OPENAI_"))}
    (tmp_path / "home").mkdir()
    return env | {
        "JOBPING_DATA_DIR": str(tmp_path / "data"),
        "JOBPING_EMULATOR_PORT": str(free_port()),
        "JOBPING_PREFECT_PORT": str(free_port()),
        "OPENAI_API_KEY": OPENAI_KEY,
        "JOBPING_NOTIFY_WEBHOOK_URL": WEBHOOK,
        "PREFECT_SERVER_API_AUTH_STRING": AUTH,
        "HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }


def printed(env: dict[str, str], platform: str) -> dict[str, str]:
    """`jobping stack service print`'s units by file name."""
    done = jobping(env, "stack", "service", "print", "--platform", platform)
    assert done.returncode == 0, done.stderr
    units: dict[str, str] = {}
    name = None
    for line in done.stdout.splitlines(keepends=True):
        if line.startswith("# file: "):
            name = line.removeprefix("# file: ").strip()
            units[name] = ""
        else:
            assert name is not None, f"output before the first '# file:' line: {line!r}"
            units[name] += line
    return units


def test_systemd_analyze_verify_accepts_every_printed_unit(user_env: dict[str, str], tmp_path: Path) -> None:
    units = printed(user_env, "systemd")
    assert list(units) == SYSTEMD_UNITS
    folder = tmp_path / "units"
    folder.mkdir()
    for name, text in units.items():
        (folder / name).write_text(text, encoding="utf-8")
    # a user manager needs a runtime dir; verify loads the units without starting anything
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    done = subprocess.run([SYSTEMD_ANALYZE, "--user", "verify", *(str(folder / n) for n in units)], cwd=folder,
                          env=user_env | {"XDG_RUNTIME_DIR": str(runtime)}, capture_output=True, text=True,
                          timeout=COMMAND_SECONDS, check=False)  # fmt: skip
    # verify exits 0 on an unknown key (RestartSteps on systemd 252): any warning fails the test too
    assert (done.returncode, done.stderr.strip()) == (0, ""), done.stderr
    worker = units["jobping-prefect-worker.service"]
    assert "After=network.target jobping-emulator.service jobping-prefect-server.service\n" in worker
    assert f'ExecStart="{JOBPING}" stack run worker\n' in worker
    for text in units.values():
        assert "Restart=always\n" in text
        assert "WantedBy=default.target\n" in text
        assert f'Environment="JOBPING_PREFECT_PORT={user_env["JOBPING_PREFECT_PORT"]}"\n' in text


def test_without_the_embedded_emulator_there_is_no_emulator_unit(user_env: dict[str, str]) -> None:
    units = printed(user_env | {"JOBPING_SQS_ENDPOINT_URL": "http://127.0.0.1:9324"}, "systemd")
    assert list(units) == SYSTEMD_UNITS[1:]
    assert "After=network.target jobping-prefect-server.service\n" in units["jobping-autoscaler.service"]


def test_launchd_agents_parse_and_keep_their_component_alive(user_env: dict[str, str]) -> None:
    units = printed(user_env, "launchd")
    assert list(units) == [label + ".plist" for label in LAUNCHD_LABELS]
    for (name, text), component in zip(units.items(), ["emulator", "server", "worker", "autoscaler"], strict=True):
        agent: dict[str, Any] = plistlib.loads(text.encode())
        assert agent["Label"] == name.removesuffix(".plist")
        assert agent["ProgramArguments"] == [JOBPING, "stack", "run", component]
        assert (agent["KeepAlive"], agent["RunAtLoad"]) == (True, True)
        assert agent["EnvironmentVariables"]["JOBPING_DATA_DIR"] == user_env["JOBPING_DATA_DIR"]


@pytest.mark.parametrize("platform", ["systemd", "launchd"])
def test_no_secret_reaches_a_printed_unit(user_env: dict[str, str], platform: str) -> None:
    env = user_env | {"JOBPING_OPENAI_API_KEY": OPENAI_KEY + "2"}
    env.pop("PREFECT_SERVER_API_AUTH_STRING")
    # the server's generated password, in its owner-only file, as `stack up` leaves it
    generated = "jobping:" + "g3nerated" * 3
    folder = Path(env["JOBPING_DATA_DIR"]) / "prefect"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "api-auth").write_text(generated + "\n", encoding="ascii")
    (folder / "api-auth").chmod(0o600)
    text = "".join(printed(env, platform).values())
    for secret in (OPENAI_KEY, OPENAI_KEY + "2", WEBHOOK, "t0ken", generated, "g3nerated"):
        assert secret not in text
    # the shell's other settings do reach the units: the test sees what a unit carries
    assert env["JOBPING_PREFECT_PORT"] in text


def test_install_into_a_folder_writes_the_units_and_starts_nothing(user_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "user-units"
    done = jobping(user_env, "stack", "service", "install", "--platform", "systemd", "--dir", str(folder))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(SYSTEMD_UNITS)
    assert "nothing started" in done.stdout
    assert not Path(user_env["JOBPING_DATA_DIR"], "run", "services").exists()
    status = jobping(user_env, "stack", "service", "status", "--platform", "systemd", "--dir", str(folder))
    assert status.returncode == 0, status.stderr
    assert status.stdout.count(" yes ") == len(SYSTEMD_UNITS)
    removed = jobping(user_env, "stack", "service", "uninstall", "--platform", "systemd", "--dir", str(folder))
    assert removed.returncode == 0, removed.stderr
    assert list(folder.iterdir()) == []


def test_install_without_systemctl_writes_the_units_and_says_so_in_one_line(user_env: dict[str, str]) -> None:
    # a PATH without systemctl (the jobping script names its interpreter itself)
    done = jobping(user_env | {"PATH": "/nonexistent"}, "stack", "service", "install", "--platform", "systemd")
    assert done.returncode == 1
    folder = Path(user_env["HOME"], ".config", "systemd", "user")
    assert done.stderr.strip() == f"error: systemctl is not on PATH (the units are written to {folder}, not started)"
    assert sorted(p.name for p in folder.iterdir()) == sorted(SYSTEMD_UNITS)


def test_install_refuses_while_stack_up_s_processes_run(user_env: dict[str, str]) -> None:
    # a worker as `stack up` starts one (its log pipe, recorded with its start time), running sleep
    settings = Settings(data_dir=Path(user_env["JOBPING_DATA_DIR"]))  # type: ignore[call-arg]
    state = stack_state.StackState()
    state.record("worker", stack._spawn("prefect-worker", ["sleep", "300"], user_env, settings))
    try:
        _wait(lambda: stack_state.ours("worker", state, settings), "the spawned worker shows its command line")
        state.save(settings.run_dir / "stack.json")
        done = jobping(user_env, "stack", "service", "install", "--platform", "systemd")
    finally:
        stop_group(state.pids["worker"], 10)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: `jobping stack up` runs worker here: stop it with `jobping stack down` first"
    assert not Path(user_env["HOME"], ".config").exists()


def test_install_is_not_refused_for_a_stack_json_naming_a_process_that_is_not_ours(user_env: dict[str, str]) -> None:
    # a stale or forged stack.json: this test's own process is alive but no part `up` started
    run = Path(user_env["JOBPING_DATA_DIR"], "run")
    run.mkdir(parents=True)
    (run / "stack.json").write_text(json.dumps({"pids": {"worker": os.getpid()}}), encoding="utf-8")
    done = jobping(user_env | {"PATH": "/nonexistent"}, "stack", "service", "install", "--platform", "systemd")
    assert "stop it with `jobping stack down` first" not in done.stderr
    assert done.stderr.strip().endswith("(the units are written to " + str(Path(user_env["HOME"], ".config",
                                        "systemd", "user")) + ", not started)")  # fmt: skip


@pytest.mark.parametrize("platform", ["systemd", "launchd"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("JOBPING_SCRAPE_PROXIES", "http://scraper:" + PROXY_PASSWORD + "@proxy.example:3128"),
     ("JOBPING_SOME_FUTURE_TOKEN", PROXY_PASSWORD),
     ("JOBPING_EXTRA_URL", "https://api.example.com/v1?api_key=" + PROXY_PASSWORD)],
    ids=["proxy-with-userinfo", "a-token-by-its-name", "url-with-a-query"],
)  # fmt: skip
def test_a_credential_by_its_name_or_its_url_reaches_no_printed_unit(
    user_env: dict[str, str], platform: str, name: str, value: str
) -> None:
    text = "".join(printed(user_env | {name: value}, platform).values())
    assert PROXY_PASSWORD not in text
    assert name not in text


def test_a_command_writing_past_max_bytes_leaves_at_most_backups_plus_one_files(tmp_path: Path) -> None:
    max_bytes, backups, line_bytes, lines = 2_000, 3, 100, 500
    log = tmp_path / "part.log"
    writer = f"import sys\nfor i in range({lines}): sys.stdout.write(f'{{i:05d}}' + 'x' * {line_bytes - 6} + '\\n')"
    done = subprocess.run([sys.executable, "-m", "jobping.logpipe", "--log", str(log), "--max-bytes", str(max_bytes),
                           "--backups", str(backups), "--", sys.executable, "-c", writer],
                          capture_output=True, timeout=COMMAND_SECONDS, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["part.log", "part.log.1", "part.log.2", "part.log.3"]
    for file in files:
        assert file.stat().st_size <= max_bytes, file
    # the newest lines are kept whole, in order, up to the last one
    kept = [line for f in reversed(files) for line in f.read_text().splitlines() if "jobping:" not in line]
    assert kept[-1] == f"{lines - 1:05d}" + "x" * (line_bytes - 6)
    assert [int(line[:5]) for line in kept] == list(range(lines - len(kept), lines))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _wait(condition: Any, what: str, seconds: float = START_SECONDS) -> None:
    wait_until(condition, timeout=seconds, what=what, interval=POLL_SECONDS)


@pytest.fixture
def emulator_runner(user_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`jobping stack run emulator` with logs rotated at 1 KiB, as a service manager would start it."""
    env = user_env | {"JOBPING_LOG_MAX_BYTES": "1024", "JOBPING_LOG_BACKUPS": "2"}
    process = subprocess.Popen([JOBPING, "stack", "run", "emulator"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{env['JOBPING_EMULATOR_PORT']}/moto-api/data.json"
    _wait(lambda: _answers(url) or process.poll() is not None, "the emulator answers")
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=COMMAND_SECONDS)


def test_stack_run_rotates_its_component_s_log_and_stops_it_on_sigterm(
    emulator_runner: subprocess.Popen[bytes], user_env: dict[str, str]
) -> None:
    port = int(user_env["JOBPING_EMULATOR_PORT"])
    url = f"http://127.0.0.1:{port}/moto-api/data.json"
    # moto logs one line per request: 200 lines are well past 1 KiB
    for _ in range(200):
        assert _answers(url)
    run = Path(user_env["JOBPING_DATA_DIR"], "run")
    _wait((run / "emulator.log.2").exists, "the log rotated twice")
    os.kill(emulator_runner.pid, signal.SIGTERM)
    assert emulator_runner.wait(timeout=COMMAND_SECONDS) == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the emulator outlived its runner"
    logs = sorted(p.name for p in run.iterdir() if p.name.startswith("emulator.log"))
    assert logs == ["emulator.log", "emulator.log.1", "emulator.log.2"]
    # a moto request line is ~100 bytes: no file is over the bound by more than one line
    for name in logs:
        assert (run / name).stat().st_size <= 1024, name


def test_a_service_runner_s_record_and_rotated_logs_are_owner_only_in_owner_only_folders(
    emulator_runner: subprocess.Popen[bytes], user_env: dict[str, str]
) -> None:
    url = f"http://127.0.0.1:{user_env['JOBPING_EMULATOR_PORT']}/moto-api/data.json"
    for _ in range(50):
        assert _answers(url)
    run = Path(user_env["JOBPING_DATA_DIR"], "run")
    _wait((run / "emulator.log.1").exists, "the log rotated")
    found = {str(p.relative_to(run)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [run, *run.rglob("*")]}
    assert {"services/emulator.json", "emulator.log", "emulator.log.1"} <= set(found), found
    assert {name: mode for name, mode in found.items()
            if mode != ("0o700" if (run / name).is_dir() else "0o600")} == {}  # fmt: skip


def test_stack_status_and_down_tell_a_part_run_as_a_service_and_leave_it_running(
    emulator_runner: subprocess.Popen[bytes], user_env: dict[str, str]
) -> None:
    status = jobping(user_env, "stack", "status")
    row = next(line for line in status.stdout.splitlines() if "SQS emulator" in line)
    assert "running (pid" in row, status.stdout
    assert "foreground)" in row, status.stdout
    down = jobping(user_env, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert "running as services: emulator (pid" in down.stdout, down.stdout
    assert "ctrl-c in the terminal that runs `jobping stack run`" in down.stdout
    assert _answers(f"http://127.0.0.1:{user_env['JOBPING_EMULATOR_PORT']}/moto-api/data.json")
    assert emulator_runner.poll() is None


def test_a_part_that_fails_fast_is_started_again_later_and_status_says_so(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    run = Path(user_env["JOBPING_DATA_DIR"], "run")
    record = run / "services" / "emulator.json"
    with socket.socket() as taken:
        # the emulator's port held by something else: moto exits at once, as in a crash loop
        taken.bind(("127.0.0.1", int(user_env["JOBPING_EMULATOR_PORT"])))
        taken.listen()
        first = subprocess.run([JOBPING, "stack", "run", "emulator"], env=user_env, capture_output=True, text=True,
                               timeout=COMMAND_SECONDS, check=False)  # fmt: skip
    assert first.returncode != 0, first.stdout
    assert json.loads(record.read_text())["failures"] == 1
    # four fast failures in a row, as a runner leaves them: the next start waits 40 s, long
    # enough for the status command below whatever the machine's load
    record.write_text(json.dumps(json.loads(record.read_text()) | {"failures": 4}))
    second = subprocess.Popen([JOBPING, "stack", "run", "emulator"], env=user_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        _wait(lambda: "4 fast failures in a row: starting the SQS emulator in 40 s" in
              (run / "emulator.log").read_text(), "the second start backs off")  # fmt: skip
        status = jobping(user_env, "stack", "service", "status", "--dir", str(tmp_path))
        assert f"backing off after 4 failures (runner pid {second.pid})" in status.stdout, status.stdout
        # stopped while it waits: a clean stop, not a failure
        os.kill(second.pid, signal.SIGTERM)
        assert second.wait(timeout=COMMAND_SECONDS) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(timeout=COMMAND_SECONDS)
    assert (run / "emulator.log").read_text().count("exited with code") == 1
    assert json.loads(record.read_text())["state"] == "exited"


# a Prefect server started, then `stack up` deploying onto it: measured 182 s on a machine 40 to 70
# processes deep for its 2 cores; its waits (SERVER_START_SECONDS) fail first and say what they waited for
@pytest.mark.timeout(600)
def test_stack_up_beside_a_server_run_as_a_service_starts_nothing_and_deploys_onto_it(
    user_env: dict[str, str],
) -> None:
    env = user_env | {"JOBPING_SCRAPE_SOURCE": "sample", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # the password the runner generates into data/prefect/api-auth, as a service would have it
    env.pop("PREFECT_SERVER_API_AUTH_STRING")
    server = subprocess.Popen([JOBPING, "stack", "run", "server"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        health = f"http://127.0.0.1:{env['JOBPING_PREFECT_PORT']}/api/health"
        _wait(lambda: _answers(health) or server.poll() is not None, "the server answers", SERVER_START_SECONDS)
        assert server.poll() is None
        up = subprocess.run([JOBPING, "stack", "up"], env=env, capture_output=True, text=True,
                            timeout=SERVER_START_SECONDS, check=False)  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert "running as services: server (pid" in up.stdout, up.stdout
        assert "deployed prefect.yaml onto their server" in up.stdout
        run = Path(env["JOBPING_DATA_DIR"], "run")
        # no worker, autoscaler or emulator of `stack up`'s own beside the service
        assert not (run / "stack.json").exists()
        assert not (run / "prefect-worker.log").exists()
        deployments = subprocess.run([str(Path(JOBPING).parent / "prefect"), "deployment", "ls"],
                                     env=env | _prefect_client_env(env), capture_output=True, text=True,
                                     timeout=COMMAND_SECONDS, check=False)  # fmt: skip
        assert deployments.returncode == 0, deployments.stderr
        for name in ("scrape/scrape", "analyse/analyse"):
            assert name in deployments.stdout
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=COMMAND_SECONDS)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)


def _prefect_client_env(env: dict[str, str]) -> dict[str, str]:
    """What a Prefect client needs to reach the server `jobping stack run server` started."""
    auth = Path(env["JOBPING_DATA_DIR"], "prefect", "api-auth").read_text(encoding="ascii").strip()
    return {"PREFECT_API_URL": f"http://127.0.0.1:{env['JOBPING_PREFECT_PORT']}/api", "PREFECT_API_AUTH_STRING": auth,
            "PREFECT_HOME": str(Path(env["JOBPING_DATA_DIR"], "prefect"))}  # fmt: skip


def test_every_long_running_compose_service_restarts_unless_stopped() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    for name, service in services.items():
        wanted = "no" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == wanted, f"{name}: restart {service.get('restart')!r}"
