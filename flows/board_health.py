"""Board health at the end of a scrape run: its searches recorded in scrape_runs, then the alerts they call for.

What was alerted is read back from the table itself (jobping/board_health.py): a streak that reaches
JOBPING_BOARD_ALERT_RUNS at this run brings one alert, the first run that answers after such a streak
one recovery line, both through the alert path every jobping alert takes (tasks/notify/alerts.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from jobping.board_health import Turn, search_status, streak, turn
from jobping.contract import Envelope
from jobping.redaction import redact
from jobping.settings import Settings
from jobping.text import one_line
from storage.lake import Lake
from storage.scrape_runs import BoardRuns, SearchRun, board_runs, record_scrape_runs
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import SearchOutcome, SiteResult
from tasks.notify.alerts import emit_alert

# an error as the table keeps it: one line, cut
MAX_ERROR_CHARS = 300
BOARDS_HINT = "`jobping boards` shows each board's runs and errors"


def board_health(
    params: ScrapeParameters,
    results: Sequence[SiteResult],
    failed: Mapping[str, tuple[str, Sequence[SearchOutcome]]],
    published: Sequence[Envelope],
    settings: Settings,
    *,
    started_at: datetime,
    secrets: Iterable[str] = (),
) -> str:
    """The run's boards recorded and alerted on (:func:`record_board_health`); why not, when they could not be.

    One row per board and search: the answering boards' searches, and each failed board's (its searches as far
    as it got, else every search of the run with the board's error). ``new`` counts what went on the queue.
    ``secrets`` (the proxies' credentials) are kept out of the errors recorded.
    """
    new = Counter((str(e.posting.site), e.search.term, e.search.location) for e in published)
    searches: list[tuple[str, SearchOutcome]] = [(r.site, outcome) for r in results for outcome in r.searches]
    for site, (why, outcomes) in failed.items():
        every = [SearchOutcome(t, loc, error=why) for t in params.search_terms for loc in params.locations]
        searches += [(site, outcome) for outcome in (outcomes or every)]
    runs = []
    for site, outcome in searches:
        error = None if outcome.error is None else one_line(redact(outcome.error, secrets), MAX_ERROR_CHARS)
        runs.append(
            SearchRun(
                flow_run_id=str(flow_run.id),
                started_at=started_at,
                board=site,
                search_term=outcome.term,
                search_location=outcome.location,
                found=outcome.found,
                new=new[(site, outcome.term, outcome.location)],
                without_description=outcome.without_description,
                error=error,
                seconds=round(outcome.seconds, 3),
                status=search_status(outcome.found, error),
            )
        )
    return record_board_health(runs, Lake.from_settings(settings), settings.scrape.board_alert_runs)


@task(name="record-board-health", cache_policy=NO_CACHE)
def record_board_health(runs: list[SearchRun], lake: Lake, alert_runs: int) -> str:
    """Append the run's rows to scrape_runs and send the alerts they call for; a failure is logged, and said in
    the returned line (empty when all went well): the postings were published all the same."""
    logger = get_run_logger()
    try:
        record_scrape_runs(lake, runs)
        boards = board_runs(lake, list(dict.fromkeys(run.board for run in runs)))
    except Exception as exc:  # the night's postings went out; only its health record is lost
        logger.exception("the boards' health could not be recorded in %s", lake.scrape_runs_uri)
        return one_line(f"board health not recorded: {type(exc).__name__}: {exc}", MAX_ERROR_CHARS)
    for board in boards:
        happened = turn(board.statuses, alert_runs)
        if happened is None:
            continue
        try:
            _send(board, happened, alert_runs)
        except Exception:  # the record stands; the alert is not sent again by a later run
            logger.exception("the %s line for the board %s could not be sent", happened, board.board)
        else:
            logger.warning("board %s: %s sent", board.board, "an alert" if happened == "alert" else "a recovery line")
    return ""


def _send(board: BoardRuns, happened: Turn, alert_runs: int) -> None:
    if happened == "alert":
        why = f"last error: {board.last_error}" if board.last_error else "it answered with no postings"
        title = f"jobping: {board.board} failed or found nothing in {alert_runs} scrape runs in a row"
        details: dict[str, str | int] = {"board": board.board, "streak": alert_runs}
        if board.last_error:
            details["last_error"] = board.last_error
        emit_alert("board", title, why, hint=BOARDS_HINT, **details)
        return
    before = streak(board.statuses[1:])
    why = f"{board.board} found postings again after {before} failed or empty scrape runs in a row"
    emit_alert("board-recovered", f"jobping: {board.board} answers again", why, hint=BOARDS_HINT,
               board=board.board, streak=before)  # fmt: skip
