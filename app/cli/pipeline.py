"""The pipeline's commands: scrape, analyse, compact, notify, and the demo that runs them all."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.text import Text

from app.cli.common import (
    console,
    error_exit,
    errors,
    flow_command,
    friendly_errors,
    load_settings,
    make_table,
    use_prefect,
)
from app.cli.lake import run_query
from app.cli.local_stack import sign_in
from jobping.errors import describe
from jobping.search import Source

if TYPE_CHECKING:
    from flows.scrape import ScrapeReport
    from jobping.engine.drain import AnalyseReport
    from tasks.jobspy.search import ScrapeParameters

DEMO_RECEIVE_WAIT_SECONDS = "1"
DEMO_BOARDS_QUERY = "SELECT board, streak, last_status, found_last_run, runs FROM board_health ORDER BY board"
TRY_QUERY = """.venv/bin/jobping sql 'SELECT verdict, count(*) FROM enriched_jobs GROUP BY ALL'"""


def _print_scrape(report: ScrapeReport) -> None:
    from flows.scrape import MAX_REASON_CHARS, site_rows

    rows = site_rows(report)
    columns = list(rows[0]) if rows else ["site"]
    title = f"scrape ({report.source})"
    console.print(make_table(columns, [list(row.values()) for row in rows], title=title, max_chars=MAX_REASON_CHARS))
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
    country_indeed: Annotated[
        str | None,
        typer.Option(help="Indeed's and Glassdoor's country, e.g. germany; default: each location's country."),
    ] = None,
    distance: Annotated[int | None, typer.Option(help="Search radius around the location, in miles (50).")] = None,
    job_type: Annotated[
        str | None, typer.Option(help="Only this kind of job: fulltime, parttime, contract, internship, ...")
    ] = None,
    easy_apply: Annotated[
        bool, typer.Option("--easy-apply", help="Only jobs applied for on the board itself.")
    ] = False,
    linkedin_company_ids: Annotated[
        list[int] | None,
        typer.Option("--linkedin-company-ids", help="LinkedIn company id to search only; repeat for several."),
    ] = None,
    offset: Annotated[int | None, typer.Option(help="Skip the first this many results of each search.")] = None,
    enforce_annual_salary: Annotated[
        bool, typer.Option("--enforce-annual-salary", help="Convert hourly, monthly, ... pay to yearly.")
    ] = False,
    user_agent: Annotated[str | None, typer.Option(help="User-Agent header to send instead of JobSpy's.")] = None,
    linkedin_fetch_description: Annotated[
        bool,
        typer.Option(
            help="Read each LinkedIn posting's page for its description (on by default; one more request "
            "per LinkedIn posting, one after the other)."
        ),
    ] = True,
    fetch_description: Annotated[
        bool,
        typer.Option(
            "--fetch-description", help="Read each posting's page on the other boards that support it (slower)."
        ),
    ] = False,
) -> None:
    """Scrape job boards (or the sample) and publish new postings to the queue."""
    from tasks.jobspy.search import ScrapeParameters

    fields: dict[str, Any] = {
        "source": source,
        "search_terms": term,
        "locations": location,
        "sites": site,
        "results_wanted": results,
        "hours_old": hours_old,
        "remote_only": remote_only or None,
        "country_indeed": country_indeed,
        "distance": distance,
        "job_type": job_type,
        "easy_apply": easy_apply or None,
        "linkedin_company_ids": linkedin_company_ids,
        "offset": offset,
        "enforce_annual_salary": enforce_annual_salary or None,
        "user_agent": user_agent,
        "linkedin_fetch_description": linkedin_fetch_description,
        "fetch_description": fetch_description or None,
    }
    try:
        params = ScrapeParameters(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise error_exit(f"invalid search: {describe(exc)}", 2) from exc
    flow_command(load_settings(), analyses=False)
    with friendly_errors():
        _print_scrape(_run_scrape(params))


def analyse(
    max_jobs: Annotated[int | None, typer.Option(min=1, help="Stop after this many messages.")] = None,
    max_seconds: Annotated[float | None, typer.Option(min=0.1, help="Stop receiving after this many seconds.")] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost-usd", min=0.0001, help="Stop sending postings to the LLM after this spend."),
    ] = None,
) -> None:
    """Drain the queue: analyse each posting and store it in the lake."""
    flow_command(load_settings())
    from flows.analyse import analyse as analyse_flow

    with friendly_errors():
        _print_analyse(asyncio.run(analyse_flow(max_jobs=max_jobs, max_seconds=max_seconds, max_cost_usd=max_cost)))


def compact(
    retain_hours: Annotated[
        float,
        typer.Option(min=0, max=365 * 24, help="Keep replaced files this long for readers holding an older snapshot."),
    ] = 168.0,
) -> None:
    """Maintain the lake: merge the latest row per job, compact small files, vacuum old ones; safe while others run."""
    flow_command(load_settings(), analyses=False)
    from flows.compact import compact_lake

    with friendly_errors():
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
    settings = load_settings()
    if test_alert:
        use_prefect(settings)
        from app.alerts import send_test_alert

        with friendly_errors():
            console.print(Text(send_test_alert()), soft_wrap=True)
        return
    if settings.notify.block:
        # a block is read from the Prefect API, and a dry run checks that it is there
        use_prefect(settings)
    from flows.notify import ping_new_matches
    from jobping.digest import Digest
    from tasks.notify.channels import load_notification_block

    with friendly_errors():
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


def demo() -> None:
    """Run the whole pipeline offline on the bundled sample and show the top matches."""
    os.environ.setdefault("JOBPING_RECEIVE_WAIT_SECONDS", DEMO_RECEIVE_WAIT_SECONDS)
    settings = load_settings()
    flow_command(settings)
    from app import prefect_server
    from flows.analyse import analyse as analyse_flow
    from storage.sql import saved_query
    from tasks.jobspy.search import ScrapeParameters
    from tasks.jobspy.source import sample_sites
    from tasks.sqs import emulator

    started_emulator = False
    with friendly_errors():
        try:
            if settings.sqs.uses_emulator:
                started_emulator = emulator.ensure_running(settings).started_here
            _print_scrape(_run_scrape(ScrapeParameters(source="sample", sites=sample_sites())))
            _print_analyse(asyncio.run(analyse_flow()))
            run_query(settings, saved_query("by_site"), title="by site")
            run_query(settings, saved_query("top_matches"), title="top matches")
            run_query(settings, DEMO_BOARDS_QUERY, title="board health (`jobping boards`)")
            console.print(f"\nthe catalog is {settings.catalog_path}; try: {TRY_QUERY}")
            ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
            console.print(f"the runs are in the Prefect UI at {ui}; `make down` stops its server")
            if os.environ["PREFECT_API_URL"] == prefect_server.api_url(settings):
                console.print(Text(sign_in(settings)), soft_wrap=True)
        finally:
            if started_emulator:
                emulator.stop(settings)
                errors.print("stopped the SQS emulator this demo started")
