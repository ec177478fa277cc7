"""The ``jobping`` command: run the flows, look at the queues, query the lake.

This is the one edge above the flows: commands import them lazily, so ``--help`` is fast
and nothing below imports upward.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from app.cli.common import PLAIN, Options
from app.cli.evaluate import EVAL_HELP, evaluate
from app.cli.lake import boards, lake_app, sql
from app.cli.local_stack import autoscale, stack_app
from app.cli.pipeline import analyse, compact, demo, notify, scrape
from app.cli.sqs import dlq_app, emulator_app, queues_app

app = typer.Typer(help="jobping: scrape job boards, queue postings on SQS, judge them, query them with SQL.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=PLAIN)  # fmt: skip
app.add_typer(queues_app, name="queues")
app.add_typer(emulator_app, name="emulator")
app.add_typer(dlq_app, name="dlq")
app.add_typer(stack_app, name="stack")
app.add_typer(lake_app, name="lake")
for command in (scrape, analyse, compact, notify, autoscale, sql, boards, demo):
    app.command()(command)
app.command("eval", help=EVAL_HELP)(evaluate)


@app.callback()
def _everything(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and Prefect's info logs.")] = False,
) -> None:
    """jobping: scrape job boards, queue postings on SQS, judge them, query them with SQL."""
    Options.debug = debug
    if not debug:
        # prefect's console shows warnings and errors, one line each; the runs' full logs reach the UI
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS", "app.console.OneLineConsoleHandler")


def main(argv: Sequence[str] | None = None) -> None:
    # an empty PREFECT_API_URL is not "unset" to Prefect: its events worker then fails on every
    # event and keeps each task run alive (found by make bench); treat it as unset
    if os.environ.get("PREFECT_API_URL", "").strip() == "" and "PREFECT_API_URL" in os.environ:
        del os.environ["PREFECT_API_URL"]
    # no analytics or telemetry from any prefect process jobping runs, under make or not
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app(args=list(argv) if argv is not None else sys.argv[1:])
