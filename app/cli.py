"""The ``jobping`` command: run the flows, look at the queues, query the lake.

This is the one edge above the flows: commands import them lazily, so ``--help`` is fast
and nothing below imports upward.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobping.errors import JobpingError, describe
from jobping.search import ScrapeParameters, Source
from jobping.settings import Settings
from jobping.text import one_line, plain

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from flows.scrape import ScrapeReport
    from jobping.engine.drain import AnalyseReport
    from tasks.sqs.queues import Queues

PIPED_WIDTH = 160
# plain help: typer's rich help labels every flag <bool>, --help included
PLAIN: Any = None
app = typer.Typer(help="jobping: scrape job boards, queue postings on SQS, judge them, query them with SQL.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=PLAIN)  # fmt: skip
queues_app = typer.Typer(
    help="The SQS queues: depths, and creating them.", invoke_without_command=True, rich_markup_mode=PLAIN
)
emulator_app = typer.Typer(
    help="The embedded SQS emulator (moto's server on 127.0.0.1).", no_args_is_help=True, rich_markup_mode=PLAIN
)
app.add_typer(queues_app, name="queues")
app.add_typer(emulator_app, name="emulator")
dlq_app = typer.Typer(
    help="The dead-letter queue: list it with reasons, redrive it.", no_args_is_help=True, rich_markup_mode=PLAIN
)
app.add_typer(dlq_app, name="dlq")
stack_app = typer.Typer(
    help="The local stack for the Prefect UI: `make up` / `make down`.", no_args_is_help=True, rich_markup_mode=PLAIN
)
app.add_typer(stack_app, name="stack")
service_app = typer.Typer(
    help="The stack as services that start at boot and restart on failure: systemd user units or launchd agents.",
    no_args_is_help=True,
    rich_markup_mode=PLAIN,
)
stack_app.add_typer(service_app, name="service")
lake_app = typer.Typer(help="The lake's Delta tables.", no_args_is_help=True, rich_markup_mode=PLAIN)
app.add_typer(lake_app, name="lake")
# piped output gets a wide table rather than rich's 80 columns
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
errors = Console(stderr=True)
DEMO_RECEIVE_WAIT_SECONDS = "1"
MAX_CELL_CHARS = 80
PREFECT_PROBE_SECONDS = 5.0
# a queue attribute is shown whole: a redrive policy cut short hides its maxReceiveCount
MAX_ATTRIBUTE_CHARS = 2_000
TRY_QUERY = """.venv/bin/jobping sql 'SELECT verdict, count(*) FROM enriched_jobs GROUP BY ALL'"""


# sections whose variables do not start with JOBPING_ and the field's name
_ENV_PREFIXES = {"NotifySettings": "JOBPING_NOTIFY_"}


def _variable(loc: tuple[int | str, ...], prefix: str) -> str:
    """The environment variable a settings error is about: a field's alias is one already."""
    if not loc:
        return "settings"
    name = str(loc[0])
    return name if name.isupper() else prefix + name.upper()


def _settings() -> Settings:
    from jobping.environment import unknown_variables

    for unknown in unknown_variables():
        errors.print("[yellow]warning:[/yellow]", Text(one_line(unknown.line())), soft_wrap=True)
    try:
        return Settings()
    except ValidationError as exc:
        # name the variable the user sets, not the field it fills: the failing section's prefix
        prefix = _ENV_PREFIXES.get(exc.title, "JOBPING_")
        shown = [f"{_variable(item['loc'], prefix)}: {item['msg']}" for item in exc.errors()]
        raise _error(f"invalid settings (JOBPING_* variables or .env): {'; '.join(shown)}", 2) from exc


# settings that hold until this command's process ends
_FOR_THIS_COMMAND = ExitStack()


class _Options:
    """Options of the whole command, set by the callback before any subcommand runs."""

    debug = False


def _error(message: object, code: int = 1) -> typer.Exit:
    """Print one ``error:`` line (never wrapped, never read as markup) and return the exit to raise."""
    errors.print("[red]error:[/red]", Text(one_line(message)), soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures end in one line; anything else too, unless --debug asks for the traceback."""
    from jobping.profile import ProfileError

    try:
        yield
    except (JobpingError, ProfileError) as exc:
        # a failed run's notes say what it did before it failed (see flows.analyse)
        raise _error("; ".join([str(exc), *getattr(exc, "__notes__", [])])) from exc
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if _Options.debug:
            raise
        raise _error(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)") from exc


def _prefect_answers(url: str) -> bool:
    """True when something answers HTTP at the API URL (Prefect Cloud answers /health with 401 or 404)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=PREFECT_PROBE_SECONDS):  # noqa: S310 - the user's own api url
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _use_prefect(settings: Settings) -> None:
    """Point this command's flow runs at one Prefect API, never Prefect's temporary per-command server.

    Prefect's own PREFECT_API_URL when set (in the environment or a Prefect profile: a server of
    your own, Prefect Cloud); else the local server on JOBPING_PREFECT_PORT (`make up`'s, or one
    started now and kept running for later commands and the UI).
    """
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    given = str(PREFECT_API_URL.value() or "").strip()
    if given:
        if not _prefect_answers(given):
            raise _error(
                f"the Prefect API at {given} (PREFECT_API_URL) does not answer: start that server, "
                "or unset PREFECT_API_URL to use jobping's local one"
            )
        return
    from app import stack

    with _friendly_errors():
        url, started = stack.ensure_server(settings)
        secret = stack.auth(settings).string
    if started:
        errors.print(
            f"started a local Prefect server for this and later commands: {url.removesuffix('/api')} "
            f"(pid {started}; `jobping stack down` stops it)",
            soft_wrap=True,
        )
    # for this process's flows (prefect read its settings at import) and for any process it starts
    os.environ["PREFECT_API_URL"], os.environ["PREFECT_API_AUTH_STRING"] = url, secret
    _FOR_THIS_COMMAND.enter_context(temporary_settings({PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: secret}))


def _check_before_running(settings: Settings, *, analyses: bool = True) -> None:
    """What can be checked in a second, before any slow work: what every flow checks first.

    The embedded emulator is left to the flow, which starts it when it does not answer; a
    configured SQS endpoint is asked now.
    """
    from flows.preflight import check_before_running
    from tasks.sqs.client import check_reachable

    with _friendly_errors():
        check_before_running(settings, analyses=analyses, queue=False)
        if not settings.sqs.uses_emulator and not settings.sqs.credentials_block:
            check_reachable(settings.sqs)


def _flow_command(settings: Settings, *, analyses: bool = True) -> None:
    """Everything a command does before it runs a flow: the quick checks, then one Prefect API."""
    _check_before_running(settings, analyses=analyses)
    _use_prefect(settings)


def _table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None, max_chars: int = MAX_CELL_CHARS
) -> Table:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not a str: a value from a posting or a board is never rich markup, nor a terminal escape
        table.add_row(*(Text(plain("" if v is None else str(v)[:max_chars])) for v in row))
    return table


def _print_scrape(report: ScrapeReport) -> None:
    from flows.scrape import MAX_REASON_CHARS, site_rows

    rows = site_rows(report)
    columns = list(rows[0]) if rows else ["site"]
    title = f"scrape ({report.source})"
    console.print(_table(columns, [list(row.values()) for row in rows], title=title, max_chars=MAX_REASON_CHARS))
    console.print(
        f"{report.invalid} invalid, {report.duplicates} duplicates, {report.already_stored} already stored, "
        f"[bold]{report.published} published[/bold] in {report.send_requests} requests, {report.failed} failed"
    )


def _run_scrape(params: ScrapeParameters) -> ScrapeReport:
    """The scrape flow's report; on failure its per-site table comes first, then the error."""
    from flows.scrape import ScrapeFailedError
    from flows.scrape import scrape as scrape_flow

    try:
        return scrape_flow(params)
    except ScrapeFailedError as exc:
        _print_scrape(exc.report)
        raise


def _print_analyse(report: AnalyseReport) -> None:
    if not report.offline:
        console.print(
            f"LLM {report.model}: {report.prompt_tokens} prompt + {report.completion_tokens} completion tokens, "
            f"about ${report.cost_usd:.4f}"
        )
    console.print(
        f"analyse ({report.model}): received {report.received} = stored [bold]{report.stored}[/bold] + "
        f"skipped {report.skipped} + seen {report.seen} + DLQ {report.dead_lettered} + "
        f"left for retry {report.left_for_retry} "
        f"({report.batches} batches, stopped by {report.stopped_by})"
    )
    console.print(
        f"job groups: {report.reused} postings of a job already analysed on another board reused its analysis "
        "(no LLM request)"
    )
    console.print(
        f"queue after the run: {report.queue_visible} visible, {report.queue_in_flight} in flight; "
        f"DLQ: {report.dlq_visible}"
    )
    if report.ping:
        # Text: what a channel answered is never console markup
        console.print(Text(f"pings: {report.ping}"), soft_wrap=True)


@app.callback()
def _everything(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and Prefect's info logs.")] = False,
) -> None:
    """jobping: scrape job boards, queue postings on SQS, judge them, query them with SQL."""
    _Options.debug = debug
    if not debug:
        # prefect's console shows warnings and errors, one line each; the runs' full logs reach the UI
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS", "app.console.OneLineConsoleHandler")


@app.command()
def scrape(
    source: Annotated[
        Source | None, typer.Option(help="jobspy (live boards) or sample (bundled synthetic postings).")
    ] = None,
    term: Annotated[list[str] | None, typer.Option("--term", "-t", help="Search term; repeat for several.")] = None,
    location: Annotated[
        list[str] | None, typer.Option("--location", "-l", help="Location; repeat for several.")
    ] = None,
    site: Annotated[list[str] | None, typer.Option("--site", "-s", help="Job board; repeat for several.")] = None,
    results: Annotated[int | None, typer.Option(help="Postings wanted per site and search.")] = None,
    hours_old: Annotated[int | None, typer.Option(help="Only postings newer than this many hours.")] = None,
    remote_only: Annotated[bool, typer.Option("--remote-only", help="Only remote postings.")] = False,
) -> None:
    """Scrape job boards (or the sample) and publish new postings to the queue."""
    fields: dict[str, Any] = {
        "source": source,
        "search_terms": term,
        "locations": location,
        "sites": site,
        "results_wanted": results,
        "hours_old": hours_old,
        "remote_only": remote_only or None,
    }
    try:
        params = ScrapeParameters(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise _error(f"invalid search: {describe(exc)}", 2) from exc
    _flow_command(_settings(), analyses=False)
    with _friendly_errors():
        _print_scrape(_run_scrape(params))


@app.command()
def analyse(
    max_jobs: Annotated[int | None, typer.Option(min=1, help="Stop after this many messages.")] = None,
    max_seconds: Annotated[float | None, typer.Option(min=0.1, help="Stop receiving after this many seconds.")] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost-usd", min=0.0001, help="Stop sending postings to the LLM after this spend."),
    ] = None,
) -> None:
    """Drain the queue: analyse each posting and store it in the lake."""
    _flow_command(_settings())
    from flows.analyse import analyse as analyse_flow

    with _friendly_errors():
        _print_analyse(asyncio.run(analyse_flow(max_jobs=max_jobs, max_seconds=max_seconds, max_cost_usd=max_cost)))


@app.command()
def compact(
    retain_hours: Annotated[
        float,
        typer.Option(min=0, max=365 * 24, help="Keep replaced files this long for readers holding an older snapshot."),
    ] = 168.0,
) -> None:
    """Maintain the lake: merge the latest row per job, compact small files, vacuum old ones; safe while others run."""
    _flow_command(_settings(), analyses=False)
    from flows.compact import compact_lake

    with _friendly_errors():
        done = compact_lake(retain_hours=retain_hours)
    if done is None:
        console.print("nothing to maintain yet: the lake holds no enriched job")
        return
    console.print(
        f"merged the history up to version {done.merged.history_version} into the latest table "
        f"({done.merged.rows_merged} jobs updated); history: {done.history.files_removed} files compacted into "
        f"{done.history.files_added}, {done.history.files_vacuumed} vacuumed; latest: {done.latest.files_removed} "
        f"into {done.latest.files_added}, {done.latest.files_vacuumed} vacuumed ({done.seconds:.1f} s)"
    )


@app.command()
def notify(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the notifier's block exists, print the digest that would be sent; send nothing."
        ),
    ] = False,
    test_alert: Annotated[
        bool,
        typer.Option(
            "--test-alert", help="Send one test alert through the alert automation that `stack up` made; nothing else."
        ),
    ] = False,
) -> None:
    """Send the job groups that fit and were never sent as one digest (each analyse run does this too).

    A job fits at JOBPING_NOTIFY_MIN_SCORE or above with the verdict apply. The
    digest goes through the Prefect notification block JOBPING_NOTIFY_BLOCK ('<block type>/<name>':
    Slack, Teams, Discord, email, a custom webhook), or as JSON to JOBPING_NOTIFY_WEBHOOK_URL.
    Each job is sent once, ever: the lake keeps a ledger of what was sent. Failed runs and a DLQ
    that fills arrive through the same channel as alerts (see the README's Pings).
    """
    settings = _settings()
    if test_alert:
        _use_prefect(settings)
        from app.alerts import send_test_alert

        with _friendly_errors():
            console.print(Text(send_test_alert()), soft_wrap=True)
        return
    if settings.notify.block:
        # a block is read from the Prefect API, and a dry run checks that it is there
        _use_prefect(settings)
    from flows.notify import ping_new_matches
    from jobping.digest import Digest
    from tasks.notify.channels import load_notification_block

    with _friendly_errors():
        if dry_run and settings.notify.block:
            asyncio.run(load_notification_block(settings.notify.block))
        report = asyncio.run(ping_new_matches(settings, dry_run=dry_run))
    if dry_run and report.new:
        digest = Digest(report.new)
        console.print(f"would send through {report.channel or 'nothing (no notifier set)'}:\n")
        console.print(Text(digest.subject()), soft_wrap=True)
        console.print(Text(digest.body()), soft_wrap=True)
        return
    console.print(Text(report.line()), soft_wrap=True)
    if report.error is not None:
        raise typer.Exit(1)


def _existing_queues(settings: Settings) -> tuple[SQSClient, Queues] | None:
    """A client and the queues for commands that only read; None, said why, when there are none.

    Reading starts no emulator and creates no queue: an emulator that is not running holds nothing.
    """
    from tasks.sqs import emulator
    from tasks.sqs.client import make_sqs_client
    from tasks.sqs.queues import find_queues

    if settings.sqs.uses_emulator and not emulator.answers(settings):
        errors.print(
            f"the embedded SQS emulator is not running at {settings.sqs.emulator_url}, so no queue holds anything "
            "(`jobping emulator start` or any flow command starts it)"
        )
        return None
    sqs = make_sqs_client(settings, start_emulator=False)
    queues = find_queues(sqs, settings.sqs)
    if queues is None:
        errors.print(f"no queues named {settings.sqs.queue_name} yet: `jobping queues ensure` or a scrape creates them")
        return None
    return sqs, queues


@queues_app.callback()
def queues_show(ctx: typer.Context) -> None:
    """Show both queues' depths (visible, in flight); reads only, starts and changes nothing."""
    if ctx.invoked_subcommand is not None:
        return
    from tasks.sqs.queues import depth

    with _friendly_errors():
        found = _existing_queues(_settings())
        if found is None:
            return
        sqs, queues = found
        rows = [
            (d.name, d.visible, d.in_flight, d.delayed) for d in (depth(sqs, queues.url), depth(sqs, queues.dlq_url))
        ]
    console.print(_table(["queue", "visible", "in flight", "delayed"], rows))


@queues_app.command("ensure")
def queues_ensure() -> None:
    """Create the queue and its DLQ, or converge their attributes to the settings."""
    settings = _settings()
    from tasks.sqs.client import make_sqs_client
    from tasks.sqs.queues import ensure_queues, queue_attributes

    with _friendly_errors():
        sqs = make_sqs_client(settings)
        queues = ensure_queues(sqs, settings.sqs)
        shown = (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "RedrivePolicy",
            "SqsManagedSseEnabled",
        )
        for url in (queues.url, queues.dlq_url):
            attributes = queue_attributes(sqs, url)
            rows = [(k, attributes.get(k, "")) for k in shown]
            console.print(_table(["attribute", "value"], rows, title=url, max_chars=MAX_ATTRIBUTE_CHARS))


@emulator_app.command("start")
def emulator_start() -> None:
    """Start the embedded SQS emulator, or report the one already running."""
    from tasks.sqs import emulator

    settings = _settings()
    with _friendly_errors():
        status = emulator.ensure_running(settings)
    console.print(f"emulator {'started' if status.started_here else 'already running'} at {status.url}")
    errors.print(f"[yellow]note:[/yellow] {emulator.MEMORY_ONLY_WARNING}")


@emulator_app.command("stop")
def emulator_stop() -> None:
    """Stop the embedded SQS emulator this data dir started on the configured port (its messages are lost)."""
    from tasks.sqs import emulator

    settings = _settings()
    if emulator.stop(settings):
        console.print(f"emulator stopped at {settings.sqs.emulator_url}")
    elif emulator.answers(settings):
        console.print(
            f"the emulator at {settings.sqs.emulator_url} was not started from {settings.data_dir}: left alone"
        )
    else:
        console.print(f"no emulator of ours was running at {settings.sqs.emulator_url}")


# the exit of a status command whose service does not run
NOT_RUNNING_EXIT = 3


@emulator_app.command("status")
def emulator_status() -> None:
    """Say whether the embedded SQS emulator runs on the configured port; exit 3 when it does not."""
    from tasks.sqs import emulator

    settings = _settings()
    status = emulator.status(settings)
    if status.running:
        whose = f"pid {status.pid}" if status.pid else f"not started from {settings.data_dir}"
        console.print(f"{status.url}: running ({whose})")
        return
    if emulator.port_taken(settings):
        console.print(f"{status.url}: not running; port {settings.sqs.emulator_port} is taken by something else")
    else:
        console.print(f"{status.url}: not running")
    raise typer.Exit(NOT_RUNNING_EXIT)


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option("--max", min=1, max=10_000, help="Show at most this many.")] = 100,
) -> None:
    """List the DLQ: reason, receive count, age, title and site of each message.

    SQS has no peek: listing is a receive. It raises each listed message's receive count by one
    (the count shown includes it) and hides the messages until the list is made, then makes them
    visible again (after 60 s if the command is killed). Nothing is deleted or moved.
    """
    settings = _settings()
    from tasks.sqs.dlq import list_dead_letters

    with _friendly_errors():
        found = _existing_queues(settings)
        if found is None:
            return
        sqs, queues = found
        letters = list_dead_letters(sqs, queues.dlq_url, limit)
    rows = [(d.reason, d.receive_count, f"{d.age_seconds / 60:.0f} min", d.title, d.site) for d in letters]
    console.print(
        _table(["reason", "receives", "age", "title", "site"], rows, title=f"{len(rows)} in {settings.sqs.dlq_name}")
    )


@dlq_app.command("redrive")
def dlq_redrive(
    reason: Annotated[str | None, typer.Option(help="Only messages whose reason contains this text.")] = None,
    limit: Annotated[int | None, typer.Option("--max", min=1, help="Move at most this many.")] = None,
) -> None:
    """Move DLQ messages back to the main queue (send, then delete: a crash loses nothing)."""
    _flow_command(_settings(), analyses=False)
    from flows.dlq import dlq_redrive as redrive_flow

    with _friendly_errors():
        report = redrive_flow(reason=reason, max_messages=limit)
    console.print(
        f"moved {report.moved} back to the queue ({report.method}); kept {report.kept}, failed {report.failed}"
    )


@app.command()
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

    settings = _settings()
    _use_prefect(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with _friendly_errors():
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

    settings = _settings()
    _say_stale(settings)
    if _services_running(settings, "`jobping stack up` started nothing"):
        with _friendly_errors():
            stack.deploy(settings)
        console.print("deployed prefect.yaml onto their server")
        return
    with _friendly_errors():
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
    console.print(Text(_sign_in(settings)), soft_wrap=True)
    # what the worker really has, which is what runs from the UI use; a secret only as <set>
    shown = state.shown_settings or "the default settings"
    console.print(Text(f"the worker runs with {shown}; logs in {settings.run_dir}"), soft_wrap=True)
    console.print("`jobping ...` commands run in this UI too (they use this server); stop everything with `make down`")


def _sign_in(settings: Settings) -> str:
    """How to sign in to the local server's UI: where its password is, never the password itself."""
    from app import stack

    secret = stack.auth(settings)
    if secret.path is None:
        return f"sign in to the UI with the value of {stack.AUTH_ENV}"
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

    settings = _settings()
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

    settings = _settings()
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
    console.print(_table(["part", "where", "state", "pid"], rows))
    console.print(Text(f"logs: {settings.run_dir}/<part>.log, rotated at {settings.stack.log_max_bytes:,} bytes "
                       f"({settings.stack.log_backups} older files kept)"), soft_wrap=True)  # fmt: skip
    from storage.lake import QUARANTINE, Lake

    lake = Lake.from_settings(settings)
    with _friendly_errors():
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

    settings = _settings()
    with _friendly_errors():
        code = runner.run(component, settings)
    raise typer.Exit(code)


_PLATFORM = typer.Option("--platform", help="systemd (Linux) or launchd (macOS); default: this system's.")
_DIR = typer.Option(
    "--dir", help="Write the units here instead of the service manager's folder; nothing is started or stopped then."
)


def _platform(given: str | None) -> Literal["systemd", "launchd"]:
    from app import service

    if given is None:
        return service.default_platform()
    if given not in ("systemd", "launchd"):
        raise _error(f"--platform is systemd or launchd, not {given!r}", 2)
    return "systemd" if given == "systemd" else "launchd"


@service_app.command("print")
def service_print(platform: Annotated[str | None, _PLATFORM] = None) -> None:
    """Write every unit to standard output, each after a line `# file: <name>`; install nothing."""
    from app import service

    settings = _settings()
    for unit in service.render(settings, _platform(platform)):
        # plain text: a path in a unit is never console markup
        sys.stdout.write(f"# file: {unit.file}\n{unit.text}")


@service_app.command("install")
def service_install(
    platform: Annotated[str | None, _PLATFORM] = None, folder: Annotated[Path | None, _DIR] = None
) -> None:
    """Install the units, enable and start them (started at boot), and deploy onto their server."""
    from app import service, stack

    settings = _settings()
    chosen = _platform(platform)
    target = folder or service.default_dir(chosen)
    with _friendly_errors():
        written = service.install(settings, chosen, target, start=folder is None)
    names = ", ".join(path.name for path in written)
    if folder is not None:
        console.print(Text(f"wrote {names} to {target}; nothing started (`--dir` only writes)"), soft_wrap=True)
        return
    console.print(Text(f"installed and started {names} in {target}; deployed prefect.yaml"), soft_wrap=True)
    if os.environ.get(stack.AUTH_ENV, "").strip():
        # no unit carries a secret: the services use data/prefect/api-auth unless told otherwise
        console.print(
            f"{stack.AUTH_ENV} is set in this shell, but no unit carries it: put it in ~/.config/jobping/env "
            "(chmod 600) and install again, or unset it to use the services' password"
        )
    console.print(Text(f"logs: {settings.run_dir}/<part>.log, rotated; `jobping stack service status` shows them"),
                  soft_wrap=True)  # fmt: skip
    if chosen == "systemd":
        console.print(
            "they start when you log in; to start them at boot and keep them after you log out: "
            "`loginctl enable-linger $USER`"
        )


@service_app.command("uninstall")
def service_uninstall(
    platform: Annotated[str | None, _PLATFORM] = None, folder: Annotated[Path | None, _DIR] = None
) -> None:
    """Stop and disable the units, and remove their files."""
    from app import service

    settings = _settings()
    chosen = _platform(platform)
    with _friendly_errors():
        removed = service.uninstall(settings, chosen, folder or service.default_dir(chosen), stop=folder is None)
    console.print(Text(f"removed {', '.join(p.name for p in removed)}" if removed else "no jobping unit was installed"))


@service_app.command("status")
def service_status(
    platform: Annotated[str | None, _PLATFORM] = None, folder: Annotated[Path | None, _DIR] = None
) -> None:
    """Each unit: installed or not, what the service manager says, what its runner says, its log."""
    from app import service

    settings = _settings()
    chosen = _platform(platform)
    states = service.status(settings, chosen, folder or service.default_dir(chosen))
    rows = [(s.unit, "yes" if s.installed else "no", s.manager, s.runner) for s in states]
    console.print(_table(["unit", "installed", "service manager", "runner"], rows))
    console.print(Text(f"logs: {', '.join(str(s.log) for s in states)} (rotated)"), soft_wrap=True)


def _run_query(
    settings: Settings, query: str, title: str | None = None, *, max_rows: int = 10_000, timeout: float = 60.0
) -> None:
    import duckdb

    from storage.lake import Lake
    from storage.reader import LakeEmptyError, reader
    from storage.repair import LakeDamagedError, quarantining
    from storage.sql import USER_QUERY_MEMORY_LIMIT, QueryResult, QueryTimeoutError, ReadOnlyError, run_read_only
    from storage.store import open_lake

    lake = Lake.from_settings(settings)
    with _friendly_errors():
        open_lake(lake, create=False)

    def run() -> QueryResult:
        with reader(lake, memory_limit=USER_QUERY_MEMORY_LIMIT) as con:
            return run_read_only(con, query, max_rows=max_rows, timeout_seconds=timeout)

    try:
        result = quarantining(lake, run)
    except (LakeEmptyError, ReadOnlyError, QueryTimeoutError, LakeDamagedError) as exc:
        raise _error(exc) from exc
    except duckdb.Error as exc:
        raise _error(f"the query failed: {exc}") from exc
    console.print(_table(result.columns, result.rows, title=title))
    if result.cut:
        errors.print(f"showing the first {max_rows:,} rows; --max-rows shows more, a LIMIT fewer")


@app.command()
def sql(
    query: Annotated[
        str | None,
        typer.Argument(help="SQL over the views enriched_jobs (latest per job) and enriched_jobs_history."),
    ] = None,
    saved: Annotated[str | None, typer.Option(help="Run a saved query by name (see --list).")] = None,
    list_saved: Annotated[bool, typer.Option("--list", help="List the saved queries.")] = False,
    max_rows: Annotated[int, typer.Option(min=1, max=1_000_000, help="Show at most this many rows.")] = 10_000,
    timeout: Annotated[float, typer.Option(min=0.1, max=86_400, help="Stop the query after this many seconds.")] = 60.0,
) -> None:
    """Run a read-only SQL query over the enriched jobs and print a table (1 GB of memory at most)."""
    from storage.sql import saved_query, saved_query_names

    if list_saved:
        for name in saved_query_names():
            console.print(f"{name}: {saved_query(name).splitlines()[0].removeprefix('-- ')}")
        return
    if saved:
        if saved not in saved_query_names():
            raise _error(f"no saved query {saved!r}; there are: {', '.join(saved_query_names())}", 2)
        query = saved_query(saved)
    if not query:
        raise _error("give a query, --saved NAME or --list", 2)
    _run_query(_settings(), query, max_rows=max_rows, timeout=timeout)


@lake_app.command("repair")
def lake_repair(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be dropped or quarantined.")] = False,
) -> None:
    """Check every data file of the lake's tables; drop the gone ones and those outside their table, quarantine the bad.

    Each drop is a repair commit in the table's history, saying which path and why. Every command that reads
    the lake does this by itself for a few files; this does it for all of them.
    """
    from storage.lake import Lake
    from storage.repair import LakeDamagedError, repair_lake

    lake = Lake.from_settings(_settings())
    try:
        done = repair_lake(lake, dry_run=dry_run)
    except LakeDamagedError as exc:
        raise _error(exc) from exc
    except Exception as exc:
        raise _error(f"cannot open the lake {lake}: {type(exc).__name__}: {exc}") from exc
    for line in done.lines():
        console.print(Text(line), soft_wrap=True)
    console.print(Text(done.summary()), soft_wrap=True)


@app.command()
def demo() -> None:
    """Run the whole pipeline offline on the bundled sample and show the top matches."""
    os.environ.setdefault("JOBPING_RECEIVE_WAIT_SECONDS", DEMO_RECEIVE_WAIT_SECONDS)
    settings = _settings()
    _flow_command(settings)
    from app import stack
    from flows.analyse import analyse as analyse_flow
    from storage.sql import saved_query
    from tasks.jobspy.source import sample_sites
    from tasks.sqs import emulator

    started_emulator = False
    with _friendly_errors():
        try:
            if settings.sqs.uses_emulator:
                started_emulator = emulator.ensure_running(settings).started_here
            _print_scrape(_run_scrape(ScrapeParameters(source="sample", sites=sample_sites())))
            _print_analyse(asyncio.run(analyse_flow()))
            _run_query(settings, saved_query("by_site"), title="by site")
            _run_query(settings, saved_query("top_matches"), title="top matches")
            console.print(f"\nthe catalog is {settings.catalog_path}; try: {TRY_QUERY}")
            ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
            console.print(f"the runs are in the Prefect UI at {ui}; `make down` stops its server")
            if os.environ["PREFECT_API_URL"] == stack.api_url(settings):
                console.print(Text(_sign_in(settings)), soft_wrap=True)
        finally:
            if started_emulator:
                emulator.stop(settings)
                errors.print("stopped the SQS emulator this demo started")


def main(argv: Sequence[str] | None = None) -> None:
    # an empty PREFECT_API_URL is not "unset" to Prefect: its events worker then fails on every
    # event and keeps each task run alive (found by make bench); treat it as unset
    if os.environ.get("PREFECT_API_URL", "").strip() == "" and "PREFECT_API_URL" in os.environ:
        del os.environ["PREFECT_API_URL"]
    # no analytics or telemetry from any prefect process jobping runs, under make or not
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app(args=list(argv) if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
