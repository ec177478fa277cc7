"""What every command shares: its settings, its one-line errors, its tables, its Prefect API."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobping.errors import JobpingError
from jobping.settings import Settings
from jobping.text import one_line, plain

PIPED_WIDTH = 160
# plain help: typer's rich help labels every flag <bool>, --help included
PLAIN: Any = None
# piped output gets a wide table rather than rich's 80 columns
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
errors = Console(stderr=True)
MAX_CELL_CHARS = 80
PREFECT_PROBE_SECONDS = 5.0
# the exit of a status command whose service does not run
NOT_RUNNING_EXIT = 3


# sections whose variables do not start with JOBPING_ and the field's name
_ENV_PREFIXES = {"NotifySettings": "JOBPING_NOTIFY_"}


def _variable(loc: tuple[int | str, ...], prefix: str) -> str:
    """The environment variable a settings error is about: a field's alias is one already."""
    if not loc:
        return "settings"
    name = str(loc[0])
    return name if name.isupper() else prefix + name.upper()


def load_settings() -> Settings:
    from jobping.environment import unknown_variables

    for unknown in unknown_variables():
        errors.print("[yellow]warning:[/yellow]", Text(one_line(unknown.line())), soft_wrap=True)
    try:
        return Settings()
    except ValidationError as exc:
        # name the variable the user sets, not the field it fills: the failing section's prefix
        prefix = _ENV_PREFIXES.get(exc.title, "JOBPING_")
        shown = [f"{_variable(item['loc'], prefix)}: {item['msg']}" for item in exc.errors()]
        raise error_exit(f"invalid settings (JOBPING_* variables or .env): {'; '.join(shown)}", 2) from exc


# settings that hold until this command's process ends
_FOR_THIS_COMMAND = ExitStack()


class Options:
    """Options of the whole command, set by the callback before any subcommand runs."""

    debug = False


def error_exit(message: object, code: int = 1) -> typer.Exit:
    """Print one ``error:`` line (never wrapped, never read as markup) and return the exit to raise."""
    errors.print("[red]error:[/red]", Text(one_line(message)), soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Expected failures end in one line; anything else too, unless --debug asks for the traceback."""
    from jobping.profile import ProfileError

    try:
        yield
    except (JobpingError, ProfileError) as exc:
        # a failed run's notes say what it did before it failed (see flows.analyse)
        raise error_exit("; ".join([str(exc), *getattr(exc, "__notes__", [])])) from exc
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if Options.debug:
            raise
        raise error_exit(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)") from exc


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


def use_prefect(settings: Settings) -> None:
    """Point this command's flow runs at one Prefect API, never Prefect's temporary per-command server.

    Prefect's own PREFECT_API_URL when set (in the environment or a Prefect profile: a server of
    your own, Prefect Cloud); else the local server on JOBPING_PREFECT_PORT (`make up`'s, or one
    started now and kept running for later commands and the UI).
    """
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    given = str(PREFECT_API_URL.value() or "").strip()
    if given:
        if not _prefect_answers(given):
            raise error_exit(
                f"the Prefect API at {given} (PREFECT_API_URL) does not answer: start that server, "
                "or unset PREFECT_API_URL to use jobping's local one"
            )
        return
    from app import prefect_server, stack

    with friendly_errors():
        url, started = stack.ensure_server(settings)
        secret = prefect_server.auth(settings).string
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

    with friendly_errors():
        check_before_running(settings, analyses=analyses, queue=False)
        if not settings.sqs.uses_emulator and not settings.sqs.credentials_block:
            check_reachable(settings.sqs)


def flow_command(settings: Settings, *, analyses: bool = True) -> None:
    """Everything a command does before it runs a flow: the quick checks, then one Prefect API."""
    _check_before_running(settings, analyses=analyses)
    use_prefect(settings)


def make_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None, max_chars: int = MAX_CELL_CHARS
) -> Table:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not a str: a value from a posting or a board is never rich markup, nor a terminal escape
        table.add_row(*(Text(plain("" if v is None else str(v)[:max_chars])) for v in row))
    return table
