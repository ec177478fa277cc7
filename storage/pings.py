"""Pings in the lake: the job groups that fit, and the ledger of those sent (a Delta table).

Both are read with delta-rs and polars, as the analyse run reads the lake for its drain: DuckDB,
pyarrow and the views would add to that process's peak (bench/RESULTS.md, Pings).

A digest is recorded after it was sent, never before: a crash in between sends that digest
again with the next run (a repeat), and no group is ever marked sent that was not.

The new groups are those with a fitting analysis since the last digest was sent (less
PING_MARGIN), less every group ever sent: the analyse run's own rows, and those of an earlier run
that stored them and stopped before its ping. Each is shown as the jobs view shows it
(storage/views.py, ``jobs_query``), from the history of its postings. A group that fitted before
the last digest and was not sent then (the min score was higher) is not sent later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from jobping.contract import SCRAPE_PRODUCER
from jobping.digest import Match
from jobping.engine.outcomes import TopMatch
from jobping.fits import fits
from jobping.profile import Profile
from jobping.reasons import Judged, missing, reasons
from storage.delta import OURS_COLUMN
from storage.lake import Lake
from storage.repair import inside
from storage.rows import FIRST_SEEN
from storage.store import history_rows

PINGS_TABLE = "pings"
PINGS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "job_group": pl.String,
    "sent_at": pl.Datetime("us", "UTC"),
    "digest_id": pl.String,
    "channel": pl.String,
}
# a look for new matches reaches back this far before the last digest sent: an analysis stamped by a clock
# behind the sender's, or written while that digest went out, is still looked at
PING_MARGIN = timedelta(hours=1)

# the history's columns the pings read: whether an analysis fits, which analysis of a posting is its newest
# (storage.delta.ORDER), and what a group shows of its best posting, its boards and links
FIT_COLUMNS = ["job_key", "job_group", "fit_score", "verdict", "limits_broken", "analysed_at"]
# what a ping explains its best posting's verdict by (jobping/reasons.py's Judged, less what BEST_COLUMNS has)
EXPLAINING_COLUMNS = [field.name for field in fields(Judged) if field.name not in ("verdict", "company", "location")]
POSTING_COLUMNS = [
    "job_key", "job_group", "producer", "analysed_at", "message_id", "scraped_at", "site", "job_url",
    "title", "company", "location", "fit_score", "verdict", "limits_broken", "summary", *EXPLAINING_COLUMNS,
]  # fmt: skip
BEST_COLUMNS = ["title", "company", "location", "fit_score", "verdict", "summary", *EXPLAINING_COLUMNS]
# a group as the pings show it: Match's fields, then the best posting's link
SHOWN_COLUMNS = ["job_group", *BEST_COLUMNS, "boards", "job_urls", "first_seen", "best_job_url"]
MATCH_COLUMNS = [name for name in SHOWN_COLUMNS if name in {field.name for field in fields(Match)}]

# a row stored before jobs had groups is a group of its own
GROUP = pl.coalesce("job_group", "job_key")
# a row our scrape flow sent; rows written before producers were kept (null) are not
SCRAPED = (pl.col("producer") == SCRAPE_PRODUCER).fill_null(value=False)


def pings_uri(lake: Lake) -> str:
    return lake.join(PINGS_TABLE)


def _ledger(lake: Lake) -> pl.DataFrame:
    """Every group sent and when; read from the files inside the table only, as the history is."""
    try:
        table = DeltaTable(pings_uri(lake), storage_options=lake.storage_options)
    except TableNotFoundError:
        return pl.DataFrame(schema=PINGS_SCHEMA)
    files = inside(lake, PINGS_TABLE, table)
    if not files:
        return pl.DataFrame(schema=PINGS_SCHEMA)
    frame = pl.scan_parquet(files, schema=PINGS_SCHEMA, hive_partitioning=False, storage_options=lake.storage_options)
    return frame.collect()


def pinged_groups(lake: Lake) -> set[str]:
    """Every job group a digest was sent for."""
    return set(_ledger(lake)["job_group"])


def record_pings(lake: Lake, groups: Sequence[str], *, digest_id: str, channel: str, sent_at: datetime) -> None:
    """One append commit: these groups were sent in digest ``digest_id``."""
    rows = pl.DataFrame(
        {
            "job_group": list(groups),
            "sent_at": [sent_at] * len(groups),
            "digest_id": [digest_id] * len(groups),
            "channel": [channel] * len(groups),
        },
        schema=PINGS_SCHEMA,
    )
    write_deltalake(pings_uri(lake), rows, mode="append", storage_options=lake.storage_options)


def fits_column(min_score: int) -> pl.Expr:
    """Whether a history row fits (jobping/fits.py), as a polars expression.

    A posting that breaks a hard limit of the profile never fits, whatever its score (rows stored before
    the limits were checked have none)."""
    fitting: pl.Expr = fits(
        pl.col("verdict"), pl.col("fit_score"), min_score, pl.col("limits_broken").list.len().fill_null(0)
    )
    return fitting


def _match(row: dict[str, Any], profile: Profile | None) -> Match:
    """A group's match as a ping shows it: why its best posting was judged so and what that posting did not say."""
    judged = Judged(**{field.name: row[field.name] for field in fields(Judged)})
    return Match(
        **{name: row[name] for name in MATCH_COLUMNS}, reasons=reasons(judged, profile), missing=missing(judged)
    )


def new_fitting_matches(lake: Lake, min_score: int, profile: Profile | None = None) -> tuple[int, list[Match]]:
    """How many job groups have an analysis that fits (it says apply with at least ``min_score`` and breaks no
    hard limit) since the last digest, and those of them never sent whose best posting fits, best first; each
    explained against ``profile`` (by its analysis alone without one)."""
    ledger = _ledger(lake)
    last_sent = ledger["sent_at"].max()
    since = last_sent - PING_MARGIN if isinstance(last_sent, datetime) else None
    fitting = _groups_analysed(lake, since, fits_column(min_score))
    new = fitting - set(ledger["job_group"])
    if not new:
        return len(fitting), []

    def best_first(jobs: pl.LazyFrame) -> pl.LazyFrame:
        return jobs.filter(fits_column(min_score)).sort(
            ["fit_score", "first_seen", "job_group"], descending=[True, False, False]
        )

    shown = _shown_groups(lake, new, best_first)
    return len(fitting), [_match(row, profile) for row in shown]


def top_matches_since(lake: Lake, since: datetime | None, limit: int) -> list[TopMatch]:
    """The best ``limit`` job groups with a posting analysed since ``since`` (all, when None).

    Each group is shown by its best posting among all of its own, as the jobs view and the digest
    show it: a posting of another producer analysed since does not stand for a group we scraped before.
    """
    groups = None if since is None else _groups_analysed(lake, since)
    if groups is not None and not groups:
        return []

    def best(jobs: pl.LazyFrame) -> pl.LazyFrame:
        return jobs.sort(["fit_score", "job_group"], descending=[True, False]).head(limit)

    return [
        TopMatch(row["fit_score"], row["verdict"], row["title"], row["company"], row["best_job_url"], row["job_group"])
        for row in _shown_groups(lake, groups, best, since=since)
    ]


def _groups_analysed(lake: Lake, since: datetime | None, where: pl.Expr | None = None) -> set[str]:
    """The job groups with an analysis since ``since`` (any time, when None), of those ``where`` holds only."""

    def groups(frame: pl.LazyFrame) -> pl.LazyFrame:
        if since is not None:
            # a filter polars pushes into the scan: it skips the row groups of older files by their statistics
            frame = frame.filter(pl.col("analysed_at") >= since)
        if where is not None:
            frame = frame.filter(where)
        return frame.select(GROUP).unique()

    return {row[0] for row in history_rows(lake, FIT_COLUMNS, groups)}


def _shown_groups(
    lake: Lake,
    groups: set[str] | None,
    pick: Callable[[pl.LazyFrame], pl.LazyFrame],
    *,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The job groups ``groups`` (all, when None) as the jobs view shows them, as many as ``pick`` keeps;
    with ``since``, those with a posting whose newest analysis is since then only.

    Every analysis of their postings is read, and those columns only: a posting's newest analysis
    says which group it is in, its earliest scrape when it was first seen.
    """
    wanted = [] if groups is None else list(groups)

    def shown(frame: pl.LazyFrame) -> pl.LazyFrame:
        if groups is not None:
            # every analysis of a posting any of whose analyses placed it in one of the groups: one read of the table
            members = frame.filter(GROUP.is_in(wanted)).select("job_key").unique()
            frame = frame.join(members, on="job_key", how="semi")
        postings = _newest(frame)
        if groups is not None:
            # a posting whose newest analysis placed it in another group is that group's
            postings = postings.filter(pl.col("job_group").is_in(wanted))
        if since is not None:
            touched = postings.filter(pl.col("analysed_at") >= since).select("job_group").unique()
            postings = postings.join(touched, on="job_group", how="semi")
        return pick(_best_of_groups(postings)).select(SHOWN_COLUMNS)

    return [dict(zip(SHOWN_COLUMNS, row, strict=True)) for row in history_rows(lake, POSTING_COLUMNS, shown)]


def _newest(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Each posting's newest analysis (storage.delta.ORDER), its group, and its earliest scrape as first_seen."""
    order = [OURS_COLUMN, pl.col("analysed_at"), pl.col("message_id")]
    return (
        frame.group_by("job_key")
        .agg(
            pl.all().sort_by(order, descending=True, nulls_last=True).first(),
            pl.col("scraped_at").min().alias(FIRST_SEEN),
        )
        .with_columns(GROUP.alias("job_group"), SCRAPED.alias("scraped"))
    )


def _best_of_groups(postings: pl.LazyFrame) -> pl.LazyFrame:
    """One row per group, as the jobs view: its best posting and every board and link, first seen.

    The best is the scraped posting with the best analysis, the one first seen on a tie; the boards
    and links are the scraped postings' when the group has any, so that another producer's link rides
    along in no ping of a job we scraped.
    """
    shown = pl.col("scraped") | ~pl.col("scraped").any()
    # a group's rows keep this order (polars' group_by), so its first is its best
    ranked = postings.sort(["scraped", "fit_score", FIRST_SEEN, "job_key"], descending=[True, True, False, False])
    return ranked.group_by("job_group").agg(
        pl.col(*BEST_COLUMNS).first(),
        # whether the best posting breaks a limit: the fit rule reads it, no ping shows it
        pl.col("limits_broken").first(),
        pl.col("job_url").first().alias("best_job_url"),
        pl.col("site").filter(shown).drop_nulls().unique().sort().alias("boards"),
        pl.col("job_url").filter(shown).drop_nulls().unique().sort().alias("job_urls"),
        pl.col(FIRST_SEEN).min(),
    )
