"""The local stack's commands: `stack up`, `down`, `status`, `run`, and the autoscaler they start."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from app.cli.common import (
    NOT_RUNNING_EXIT,
    PLAIN,
    console,
    friendly_errors,
    load_settings,
    make_table,
    use_prefect,
)
from app.cli.services import service_app
from jobping.settings import Settings

stack_app = typer.Typer(
    help="The local stack for the Prefect UI: `make up` / `make down`.", no_args_is_help=True, rich_markup_mode=PLAIN
)
stack_app.add_typer(service_app, name="service")


def autoscale(
    once: Annotated[
        bool, typer.Option("--once", help="Look at the queue once, create what it calls for, and exit.")
    ] = False,
) -> None:
    """Keep analyse runs going in proportion to the queue's depth (`make up` starts this).

    Every JOBPING_SCALE_POLL_SECONDS (10) it creates flow runs of the analyse deployment until
    ceil(queued / JOBPING_MESSAGES_PER_CONSUMER (200)) are scheduled or running, at most
    JOBPING_MAX_CONSUMERS (4); below JOBPING_SCALE_ACTIVATION_MESSAGES (1) queued, none.
    Stop it with Ctrl-C.
    """
    import logging
    import signal
    import threading

    from app.autoscale import Autoscaler, serve
    from tasks.sqs.client import make_sqs_client

    settings = load_settings()
    use_prefect(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with friendly_errors():
        if once:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                console.print(Text(Autoscaler(settings, make_sqs_client(settings), client).step().line()))
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        serve(settings, stop)


@stack_app.command("up")
def stack_up() -> None:
    """Start the emulator, a Prefect server (UI), the work pool, the deployments and a worker."""
    from app import stack

    settings = load_settings()
    _say_stale(settings)
    if _services_running(settings, "`jobping stack up` started nothing"):
        with friendly_errors():
            stack.deploy(settings)
        console.print("deployed prefect.yaml onto their server")
        return
    with friendly_errors():
        state = stack.up(settings)
    ui = state.api_url.removesuffix("/api")
    console.print(f"the stack is up: {', '.join(f'{k} (pid {v})' for k, v in state.pids.items()) or 'all reused'}")
    if state.restarted:
        console.print("restarted the worker: its settings differed from this command's")
    if state.alerts:
        console.print(Text(state.alerts), soft_wrap=True)
    console.print(
        f"Prefect UI: [bold]{ui}[/bold]  (deployments: scrape/scrape nightly, analyse/analyse as the queue fills)"
    )
    console.print(Text(sign_in(settings)), soft_wrap=True)
    # what the worker really has, which is what runs from the UI use; a secret only as <set>
    shown = state.shown_settings or "the default settings"
    console.print(Text(f"the worker runs with {shown}; logs in {settings.run_dir}"), soft_wrap=True)
    console.print("`jobping ...` commands run in this UI too (they use this server); stop everything with `make down`")


def sign_in(settings: Settings) -> str:
    """How to sign in to the local server's UI: where its password is, never the password itself."""
    from app import prefect_server

    secret = prefect_server.auth(settings)
    if secret.path is None:
        return f"sign in to the UI with the value of {prefect_server.AUTH_ENV}"
    return f"sign in to the UI with the user:password kept owner-only in {secret.path} (`cat` it)"


def _say_stale(settings: Settings) -> None:
    """Say once which pids of stack.json are not the processes we started; they are dropped from it."""
    from app import stack_state

    for line in stack_state.forget_stale(settings):
        console.print(Text(line), soft_wrap=True)


@stack_app.command("down")
def stack_down() -> None:
    """Stop exactly what `stack up` started."""
    from app import stack

    settings = load_settings()
    _say_stale(settings)
    stopped = stack.down(settings)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")
    _services_running(settings, "`jobping stack down` leaves them to their service manager, which would restart them")


def _services_running(settings: Settings, consequence: str) -> bool:
    """Say which components run as services (under `jobping stack run`) and how to stop them."""
    from app import service

    found = service.running_services(settings)
    if not found:
        return False
    by = sorted({record.manager for _, record in found})
    how = {"systemd": "`jobping stack service uninstall` (or `systemctl --user stop 'jobping-*'`)",
           "launchd": "`jobping stack service uninstall --platform launchd`",
           "foreground": "ctrl-c in the terminal that runs `jobping stack run`"}  # fmt: skip
    names = ", ".join(f"{part.name} (pid {record.child or record.pid}, {record.manager})" for part, record in found)
    console.print(Text(f"running as services: {names}; {consequence}; stop them with {', '.join(how[m] for m in by)}"),
                  soft_wrap=True)  # fmt: skip
    return True


@stack_app.command("status")
def stack_status() -> None:
    """Say what of the local stack runs, where, with which pids; exit 3 when the Prefect server does not."""
    from app import service, stack

    settings = load_settings()
    _say_stale(settings)
    parts = stack.status(settings)
    services = {part.part: (part, record) for part, record in service.running_services(settings)}
    rows = []
    for p in parts:
        state, pid = p.state, p.pid
        if p.name in services:
            part, record = services[p.name]
            state, pid = service.runner_state(record, part.name), record.child
        rows.append((p.name, p.where, state, pid or ""))
    console.print(make_table(["part", "where", "state", "pid"], rows))
    console.print(Text(f"logs: {settings.run_dir}/<part>.log, rotated at {settings.stack.log_max_bytes:,} bytes "
                       f"({settings.stack.log_backups} older files kept)"), soft_wrap=True)  # fmt: skip
    from storage.lake import QUARANTINE, Lake

    lake = Lake.from_settings(settings)
    with friendly_errors():
        moved = lake.quarantined()
    if moved:
        console.print(Text(f"{len(moved)} unreadable lake files were moved aside: {lake.join(QUARANTINE)}"))
    if not any(p.running for p in parts if p.name == "Prefect server"):
        raise typer.Exit(NOT_RUNNING_EXIT)


@stack_app.command("run")
def stack_run(
    component: Annotated[str, typer.Argument(help="emulator, server, worker or autoscaler.")],
) -> None:
    """Run one part of the stack in the foreground, its output into data/run/<part>.log (rotated).

    This is what each service runs. SIGTERM stops it and its part; after fast failures in a row
    it waits longer before starting again (5 s doubling to 5 min). The worker and autoscaler
    wait for the Prefect server first.
    """
    from app import runner

    settings = load_settings()
    with friendly_errors():
        code = runner.run(component, settings)
    raise typer.Exit(code)
