"""The SQS commands: the queues' depths, the embedded emulator, the dead-letter queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import (
    NOT_RUNNING_EXIT,
    PLAIN,
    console,
    errors,
    flow_command,
    friendly_errors,
    load_settings,
    make_table,
)
from jobping.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from tasks.sqs.queues import Queues

queues_app = typer.Typer(
    help="The SQS queues: depths, and creating them.", invoke_without_command=True, rich_markup_mode=PLAIN
)
emulator_app = typer.Typer(
    help="The embedded SQS emulator (moto's server on 127.0.0.1).", no_args_is_help=True, rich_markup_mode=PLAIN
)
dlq_app = typer.Typer(
    help="The dead-letter queue: list it with reasons, redrive it.", no_args_is_help=True, rich_markup_mode=PLAIN
)
# a queue attribute is shown whole: a redrive policy cut short hides its maxReceiveCount
MAX_ATTRIBUTE_CHARS = 2_000


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

    with friendly_errors():
        found = _existing_queues(load_settings())
        if found is None:
            return
        sqs, queues = found
        rows = [
            (d.name, d.visible, d.in_flight, d.delayed) for d in (depth(sqs, queues.url), depth(sqs, queues.dlq_url))
        ]
    console.print(make_table(["queue", "visible", "in flight", "delayed"], rows))


@queues_app.command("ensure")
def queues_ensure() -> None:
    """Create the queue and its DLQ, or converge their attributes to the settings."""
    settings = load_settings()
    from tasks.sqs.client import make_sqs_client
    from tasks.sqs.queues import ensure_queues, queue_attributes

    with friendly_errors():
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
            console.print(make_table(["attribute", "value"], rows, title=url, max_chars=MAX_ATTRIBUTE_CHARS))


@emulator_app.command("start")
def emulator_start() -> None:
    """Start the embedded SQS emulator, or report the one already running."""
    from tasks.sqs import emulator

    settings = load_settings()
    with friendly_errors():
        status = emulator.ensure_running(settings)
    console.print(f"emulator {'started' if status.started_here else 'already running'} at {status.url}")
    errors.print(f"[yellow]note:[/yellow] {emulator.MEMORY_ONLY_WARNING}")


@emulator_app.command("stop")
def emulator_stop() -> None:
    """Stop the embedded SQS emulator this data dir started on the configured port (its messages are lost)."""
    from tasks.sqs import emulator

    settings = load_settings()
    if emulator.stop(settings):
        console.print(f"emulator stopped at {settings.sqs.emulator_url}")
    elif emulator.answers(settings):
        console.print(
            f"the emulator at {settings.sqs.emulator_url} was not started from {settings.data_dir}: left alone"
        )
    else:
        console.print(f"no emulator of ours was running at {settings.sqs.emulator_url}")


@emulator_app.command("status")
def emulator_status() -> None:
    """Say whether the embedded SQS emulator runs on the configured port; exit 3 when it does not."""
    from tasks.sqs import emulator

    settings = load_settings()
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
    settings = load_settings()
    from tasks.sqs.dlq import list_dead_letters

    with friendly_errors():
        found = _existing_queues(settings)
        if found is None:
            return
        sqs, queues = found
        letters = list_dead_letters(sqs, queues.dlq_url, limit)
    rows = [(d.reason, d.receive_count, f"{d.age_seconds / 60:.0f} min", d.title, d.site) for d in letters]
    console.print(
        make_table(
            ["reason", "receives", "age", "title", "site"], rows, title=f"{len(rows)} in {settings.sqs.dlq_name}"
        )
    )


@dlq_app.command("redrive")
def dlq_redrive(
    reason: Annotated[str | None, typer.Option(help="Only messages whose reason contains this text.")] = None,
    limit: Annotated[int | None, typer.Option("--max", min=1, help="Move at most this many.")] = None,
) -> None:
    """Move DLQ messages back to the main queue (send, then delete: a crash loses nothing)."""
    flow_command(load_settings(), analyses=False)
    from flows.dlq import dlq_redrive as redrive_flow

    with friendly_errors():
        report = redrive_flow(reason=reason, max_messages=limit)
    console.print(
        f"moved {report.moved} back to the queue ({report.method}); kept {report.kept}, failed {report.failed}"
    )
