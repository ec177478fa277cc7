"""The scrape flow: every site of the search matrix, normalised, deduplicated, published to SQS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

import polars as pl
from prefect import State, flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from flows.board_health import board_health
from flows.preflight import cannot_start, preflight_failure
from flows.run_settings import run_settings
from jobping.contract import SCRAPE_PRODUCER, Envelope, encode_cut
from jobping.engine.ports import StoredIndex
from jobping.errors import ConfigurationError, JobpingError, TerminalError
from jobping.profile import load_profile
from jobping.proxies import Proxies
from jobping.redaction import secrets_kept_out_of_logs
from jobping.scrape_settings import SCRAPE_RETRY_SECONDS
from jobping.search import SiteName
from jobping.settings import Settings
from jobping.sightings import encode_sightings
from jobping.text import one_line
from storage.damage import READ_ERRORS
from storage.lake import Lake
from storage.store import stored_versions
from tasks.jobspy.normalise import Normalised, drop_stored, normalise
from tasks.jobspy.proxies import load_proxies, scrape_loggers
from tasks.jobspy.search import ScrapeParameters, country_of
from tasks.jobspy.source import SearchOutcome, SiteFailedError, SiteResult, fetch_site, health_flags
from tasks.llm.factory import prompt_version
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import SendReport, send_entries
from tasks.sqs.queues import Queues, depth, locate_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# a blocked or throttled board is asked again after JOBPING_SCRAPE_RETRY_SECONDS, then twice and four times
# that, each give or take half, before it is reported failed: a board's throttling lasts minutes, not seconds
SITE_RETRIES = 3
SITE_RETRY_JITTER = 0.5
MAX_LOGGED_REPAIRS = 20
MAX_REASON_CHARS = 200


class ScrapeReport(BaseModel):
    """What a scrape run did, per site and in total."""

    source: str
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    scraped: dict[str, int] = Field(default_factory=dict)
    new: dict[str, int] = Field(default_factory=dict)
    stored: dict[str, int] = Field(default_factory=dict)
    # a board's failure (blocked, down: retried) and ours (a bug or a refused search: not retried)
    site_errors: dict[str, str] = Field(default_factory=dict)
    site_bugs: dict[str, str] = Field(default_factory=dict)
    site_warnings: dict[str, list[str]] = Field(default_factory=dict)
    site_flags: dict[str, list[str]] = Field(default_factory=dict)
    invalid: int = 0
    duplicates: int = 0
    already_stored: int = 0
    published: int = 0
    failed: int = 0
    send_requests: int = 0
    # postings already stored, reported as seen again (last_seen) in this many sightings messages
    seen: int = 0
    sightings_messages: int = 0
    queue_visible: int = 0
    dlq_visible: int = 0
    # why the boards' health (the scrape_runs table) was not recorded; empty when it was
    board_health_error: str = ""


class ScrapeFailedError(JobpingError):
    """The run failed; its report says what each site did up to that point."""

    def __init__(self, message: str, report: ScrapeReport) -> None:
        super().__init__(message)
        self.report = report


class AllSitesFailedError(ScrapeFailedError):
    """Every site of the run failed: there is nothing to publish."""


class SiteDataError(ScrapeFailedError):
    """Our own code failed on a site's data, or JobSpy refused the search: a bug, not an outage."""


class PublishIncompleteError(ScrapeFailedError):
    """Some postings could not be published after retries; the run reports them as failed."""


def retry_delays(first_seconds: float) -> list[float]:
    """The waits before a failing board's retries: the first, then each twice the one before."""
    return [first_seconds * 2**attempt for attempt in range(SITE_RETRIES)]


def _site_may_recover(_task: object, _run: object, state: State[Any]) -> bool:
    # only a blocked or failing site is worth a second try, not a bug or bad input
    return isinstance(state.result(raise_on_failure=False), SiteFailedError)


@task(
    name="fetch-site",
    task_run_name="fetch {site}",
    retries=SITE_RETRIES,
    retry_delay_seconds=retry_delays(SCRAPE_RETRY_SECONDS),
    retry_jitter_factor=SITE_RETRY_JITTER,
    retry_condition_fn=_site_may_recover,
    cache_policy=NO_CACHE,
)
def fetch_site_postings(
    site: SiteName, params: ScrapeParameters, source: str, proxies: Proxies, pause_seconds: float = 0
) -> SiteResult:
    """One board's searches through ``proxies``, ``pause_seconds`` (with jitter) apart; retried with back-off
    while it fails."""
    result = fetch_site(site, params, source, proxies, pause_seconds)
    logger = get_run_logger()
    logger.info("%s: %d postings", site, result.postings.height)
    for message in result.errors:
        logger.warning("%s reported an error: %s", site, one_line(message))
    for message in result.warnings:
        logger.warning("%s warned: %s", site, one_line(message))
    return result


@task(name="normalise", cache_policy=NO_CACHE)
def normalise_postings(results: list[SiteResult], scraped_at: datetime) -> Normalised:
    """Every site's rows as envelopes: validated once, keyed, deduplicated across sites."""
    normalised = normalise(pl.concat([result.postings for result in results], how="vertical"), scraped_at)
    logger = get_run_logger()
    for reason in normalised.invalid_reasons:
        logger.warning("invalid posting dropped: %s", one_line(reason))
    for repair in normalised.repairs[:MAX_LOGGED_REPAIRS]:
        logger.warning("posting kept with a change: %s", one_line(repair))
    if len(normalised.repairs) > MAX_LOGGED_REPAIRS:
        logger.warning("%d more postings kept with a change", len(normalised.repairs) - MAX_LOGGED_REPAIRS)
    return normalised


@task(name="drop-already-stored", cache_policy=NO_CACHE)
def drop_already_stored(normalised: Normalised, lake: Lake, prompt_version: str) -> Normalised:
    """Only what the lake does not hold yet, with this content and this prompt, goes on the queue.

    The scrape only reads the lake: creating, widening and repairing its tables is the analyse run's and
    `compact`'s. A lake it cannot read holds nothing as far as it knows: every posting is published, and
    the analyse run skips what is stored.
    """
    try:
        versions = stored_versions(lake, read_only=True)
    except READ_ERRORS:
        get_run_logger().exception("the lake %s could not be read: every posting is published", lake)
        versions = StoredIndex()
    # a row of ours: content a stranger sent first, with their own link, is still published
    stored = {(v.job_key, v.content_hash) for v in versions if v.prompt_version == prompt_version and v.scraped}
    return drop_stored(normalised, stored)


@task(name="publish", cache_policy=NO_CACHE)
def publish_postings(envelopes: list[Envelope], sqs: SQSClient, queues: Queues) -> SendReport:
    """Every envelope onto the queue, marked as the scrape's own, cut to the message budget where needed."""
    logger = get_run_logger()
    entries = []
    for i, envelope in enumerate(envelopes):
        body, cut = encode_cut(envelope.model_copy(update={"producer": SCRAPE_PRODUCER}))
        for name, why in cut.items():
            logger.warning("%s: %s %s", envelope.job_key, name, why)
        entries.append({"Id": str(i), "MessageBody": body})
    report = send_entries(sqs, queues.url, entries)  # type: ignore[arg-type]
    logger.info("published %d postings in %d SendMessageBatch requests", report.sent, report.requests)
    for entry_id, reason in list(report.failed.items())[:10]:
        logger.error("posting %s was not published: %s", envelopes[int(entry_id)].job_key, one_line(reason))
    return report


@task(name="publish-sightings", cache_policy=NO_CACHE)
def publish_sightings(job_keys: list[str], scraped_at: datetime, sqs: SQSClient, queues: Queues) -> SendReport:
    """The postings seen again unchanged, as few sightings messages as fit: the consumer moves their last_seen."""
    logger = get_run_logger()
    bodies = encode_sightings(job_keys, scraped_at)
    report = send_entries(sqs, queues.url, [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)])
    logger.info("reported %d postings seen again in %d sightings messages", len(job_keys), report.sent)
    for reason in list(report.failed.values())[:10]:
        # their last_seen stays where it was until the next scrape sees them: nothing is lost
        logger.warning("a sightings message was not published: %s", one_line(reason))
    return report


def _one_line(text: str) -> str:
    return one_line(text, MAX_REASON_CHARS)


def site_rows(report: ScrapeReport) -> list[dict[str, str | int]]:
    """One row per site: found, new, already stored, and how it went in one line."""
    rows: list[dict[str, str | int]] = []
    for site, count in report.scraped.items():
        notes = [*report.site_flags.get(site, []), *(f"jobspy: {w}" for w in report.site_warnings.get(site, []))]
        rows.append(
            {
                "site": site,
                "found": count,
                "new": report.new.get(site, 0),
                "already stored": report.stored.get(site, 0),
                "status": _one_line("; ".join(notes)) if notes else "ok",
            }
        )
    failures = [(s, f"failed, not retried: {e.removeprefix(f'{s}: ')}") for s, e in report.site_bugs.items()]
    failures += [(s, f"failed: {e.removeprefix(f'{s}: ')}") for s, e in report.site_errors.items()]
    rows += [{"site": s, "found": 0, "new": 0, "already stored": 0, "status": _one_line(e)} for s, e in failures]
    return rows


def _record(report: ScrapeReport) -> None:
    totals = (
        f"source {report.source}: {sum(report.scraped.values())} scraped, {report.invalid} invalid, "
        f"{report.duplicates} duplicates, {report.already_stored} already stored "
        f"(reported seen in {report.sightings_messages} messages), "
        f"{report.published} published, {report.failed} failed; queue after publishing: "
        f"{report.queue_visible} waiting, DLQ {report.dlq_visible}"
    )
    if report.board_health_error:
        totals += f"; {report.board_health_error}"
    create_table_artifact(key="scrape-summary", table=site_rows(report), description=totals)


def _scrape_run_name() -> str:
    params = flow_run.parameters.get("params") or {}
    if isinstance(params, ScrapeParameters):
        params = params.model_dump()
    terms = ", ".join(params.get("search_terms") or ["data engineer"])
    return f"scrape {terms} from {params.get('source') or Settings().scrape_source}"


def _publish(new: Normalised, scraped_at: datetime, settings: Settings, report: ScrapeReport) -> None:
    """The new postings, then the sightings of those already stored, onto the queue; the report says what went."""
    sqs = make_sqs_client(settings)
    queues = locate_queues(sqs, settings.sqs)
    # quoted: Prefect need not walk a client looking for futures
    client: Any = quote(sqs)
    sent = publish_postings(new.envelopes, client, queues)
    if new.seen_keys:
        seen = publish_sightings(new.seen_keys, scraped_at, client, queues)
        report.seen, report.sightings_messages = len(new.seen_keys), seen.sent
    main, dlq = depth(sqs, queues.url), depth(sqs, queues.dlq_url)
    report.queue_visible, report.dlq_visible = main.visible, dlq.visible
    report.published, report.failed, report.send_requests = sent.sent, len(sent.failed), sent.requests


def _log_countries(params: ScrapeParameters) -> None:
    """Which Indeed and Glassdoor each location searches, and why."""
    if not {"indeed", "glassdoor"} & set(params.sites):
        return
    logger = get_run_logger()
    for location in params.locations:
        country = params.country(location).value
        if params.country_indeed is not None:
            logger.info("%r: Indeed and Glassdoor search %s (country_indeed)", location, country)
        elif country_of(location) is None:
            logger.warning(
                "%r names no country JobSpy knows: Indeed and Glassdoor search JobSpy's default, %s; "
                "set country_indeed to choose",
                location,
                country,
            )
        else:
            logger.info("%r: Indeed and Glassdoor search %s (the location's country)", location, country)


def _collect(
    futures: dict[SiteName, PrefectFuture[SiteResult]],
    report: ScrapeReport,
    failed: dict[str, tuple[str, list[SearchOutcome]]],
) -> list[SiteResult]:
    """Every board's postings as its task ends; what each board did goes in ``report``, why one failed in
    ``failed``."""
    logger = get_run_logger()
    results: list[SiteResult] = []
    for site, future in futures.items():
        future.wait()
        if future.state.is_completed():
            result = future.result()
            results.append(result)
            report.scraped[site] = result.postings.height
            if result.warnings:
                report.site_warnings[site] = result.warnings
            flags = health_flags(result)
            if flags:
                report.site_flags[site] = flags
                logger.warning("site %s looks unhealthy: %s", site, "; ".join(flags))
            continue
        error = future.state.result(raise_on_failure=False)
        failed[site] = (
            one_line(error) if isinstance(error, BaseException) else "failed",
            getattr(error, "searches", []),
        )
        if isinstance(error, TerminalError):
            report.site_bugs[site] = one_line(error)
            logger.error("site %s could not be read, and retrying will not help: %s", site, report.site_bugs[site])
        else:
            report.site_errors[site] = one_line(error) if isinstance(error, BaseException) else "failed"
            logger.error("site %s failed: %s", site, report.site_errors[site])
    return results


@flow(
    name="scrape",
    flow_run_name=_scrape_run_name,
    log_prints=True,
    # a thread for every board: none waits for a free one behind a board that is retrying (ignore: Prefect's
    # decorator takes TaskRunner[PrefectFuture], invariant, where its thread runner makes concurrent futures)
    task_runner=ThreadPoolTaskRunner(max_workers=len(get_args(SiteName)) + 1),  # type: ignore[arg-type]
)
def scrape(params: ScrapeParameters | None = None) -> ScrapeReport:
    """Scrape every site of the search matrix and publish new or changed postings to SQS."""
    params = params or ScrapeParameters()
    settings = run_settings()
    # before any board is asked: a night that cannot publish fails before its first task
    failure = preflight_failure(settings)
    if failure is not None:
        # prefect takes a returned state as the run's end: one line, no traceback
        return failure  # type: ignore[return-value]
    source = params.source or settings.scrape_source
    try:
        # read once a run, and checked before any board is asked
        proxies = load_proxies(settings.scrape) if source == "jobspy" else Proxies()
    except ConfigurationError as exc:
        return cannot_start(exc)  # type: ignore[return-value]
    with secrets_kept_out_of_logs(proxies.secrets(), scrape_loggers()):
        return _scrape(params, source, proxies, settings)


def _scrape(params: ScrapeParameters, source: str, proxies: Proxies, settings: Settings) -> ScrapeReport:
    report = ScrapeReport(source=source)
    failed: dict[str, tuple[str, list[SearchOutcome]]] = {}

    if source == "jobspy":
        _log_countries(params)
    # every board at once, each in its own thread: a board that is retrying holds up no other
    fetch = fetch_site_postings.with_options(retry_delay_seconds=retry_delays(settings.scrape.retry_seconds))
    # quoted: passed as it is, not walked for futures
    given: Any = quote(proxies)
    futures: dict[SiteName, PrefectFuture[SiteResult]] = {
        site: fetch.submit(site, params, source, given, settings.scrape.pause_seconds) for site in params.sites
    }
    results = _collect(futures, report, failed)

    published: list[Envelope] = []
    if results:
        scraped_at = datetime.now(UTC)
        normalised = normalise_postings(results, scraped_at)
        version = prompt_version(settings.llm, load_profile(settings.profile_path))
        new = drop_already_stored(normalised, Lake.from_settings(settings), version)
        report.invalid, report.duplicates, report.already_stored = new.invalid, new.duplicates, new.already_stored
        report.new, report.stored = dict(new.new_by_site), dict(new.stored_by_site)
        _publish(new, scraped_at, settings, report)
        published = new.envelopes
    report.board_health_error = board_health(
        params, results, failed, published, settings, started_at=report.started_at, secrets=proxies.secrets()
    )
    _record(report)
    if report.site_bugs:
        bugs = "; ".join(dict.fromkeys(report.site_bugs.values()))
        raise SiteDataError(f"{', '.join(report.site_bugs)} failed and retrying cannot help: {bugs}", report)
    if not results:
        raise AllSitesFailedError(f"every site failed: {', '.join(report.site_errors)}", report)
    if report.failed:
        raise PublishIncompleteError(f"{report.failed} postings could not be published after retries", report)
    return report
