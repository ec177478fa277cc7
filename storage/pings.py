"""Pings in the lake: the job groups that fit, and the ledger of those sent (a Delta table).

A digest is recorded after it was sent, never before: a crash in between sends that digest
again with the next run (a repeat), and no group is ever marked sent that was not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from jobping.digest import Match
from jobping.engine.outcomes import TopMatch
from storage.lake import Lake, sql_literal
from storage.reader import LakeEmptyError, reader
from storage.repair import quarantining
from storage.views import LATEST_VIEW, jobs_query

PINGS_TABLE = "pings"
MATCH_COLUMNS = (
    "job_group", "title", "company", "location", "fit_score", "verdict", "summary", "boards", "job_urls", "first_seen",
)  # fmt: skip
# the groups with a posting that fits: a scan of four columns, where the jobs view would read them all
CANDIDATES = (
    f"SELECT DISTINCT coalesce(job_group, job_key) FROM {LATEST_VIEW} "  # noqa: S608
    "WHERE fit_score >= $min_score AND verdict = 'apply'"
)
PINGS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "job_group": pl.String,
    "sent_at": pl.Datetime("us", "UTC"),
    "digest_id": pl.String,
    "channel": pl.String,
}


def pings_uri(lake: Lake) -> str:
    return lake.join(PINGS_TABLE)


def pinged_groups(lake: Lake) -> set[str]:
    """Every job group a digest was sent for."""
    try:
        table = DeltaTable(pings_uri(lake), storage_options=lake.storage_options)
    except TableNotFoundError:
        return set()
    return set(table.to_pyarrow_table(columns=["job_group"]).column("job_group").to_pylist())


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
    write_deltalake(pings_uri(lake), rows.to_arrow(), mode="append", storage_options=lake.storage_options)


def new_fitting_matches(lake: Lake, min_score: int) -> tuple[int, list[Match]]:
    """How many job groups fit (their best analysis says apply with at least ``min_score``), and
    those of them never sent, best first.

    The groups with a fitting posting are found first, and the jobs view is computed for the new
    ones only: computed over every job, its memory grows with the lake.
    """

    def read() -> tuple[int, list[Match]]:
        try:
            con = reader(lake, caching=False)
        except LakeEmptyError:
            return 0, []
        with con:
            candidates = {row[0] for row in con.execute(CANDIDATES, {"min_score": min_score}).fetchall()}
            new = sorted(candidates - pinged_groups(lake))
            if not new:
                return len(candidates), []
            wanted = ", ".join(sql_literal(group) for group in new)
            source = f"(SELECT * FROM {LATEST_VIEW} WHERE coalesce(job_group, job_key) IN ({wanted}))"  # noqa: S608
            rows = con.execute(
                f"SELECT {', '.join(MATCH_COLUMNS)} FROM ({jobs_query(source)}) "  # noqa: S608
                "WHERE fit_score >= $min_score AND verdict = 'apply' ORDER BY fit_score DESC, first_seen, job_group",
                {"min_score": min_score},
            ).fetchall()
        return len(candidates), [Match(*row) for row in rows]

    return quarantining(lake, read)


def top_matches_since(lake: Lake, since: datetime | None, limit: int) -> list[TopMatch]:
    """The best ``limit`` job groups with a posting analysed since ``since`` (all, when None).

    Each group is shown by its best posting among all of its own, as the jobs view and the digest
    show it: a posting of another producer analysed since does not stand for a group we scraped before.
    """

    def read() -> list[TopMatch]:
        try:
            con = reader(lake, caching=False)
        except LakeEmptyError:
            return []
        group = "coalesce(job_group, job_key)"
        touched = f"SELECT {group} FROM {LATEST_VIEW} WHERE analysed_at >= $since"  # noqa: S608
        where = "" if since is None else f" WHERE {group} IN ({touched})"
        source = f"(SELECT * FROM {LATEST_VIEW}{where})"  # noqa: S608
        with con:
            rows = con.execute(
                f"SELECT fit_score, verdict, title, company, best_job_url, job_group FROM ({jobs_query(source)}) "  # noqa: S608
                "ORDER BY fit_score DESC, job_group LIMIT $limit",
                {"limit": limit} | ({} if since is None else {"since": since}),
            ).fetchall()
        return [TopMatch(*row) for row in rows]

    return quarantining(lake, read)
