"""The parser, the lake row and the DLQ tools under arbitrary input (hypothesis).

The guarantee: every body a queue can deliver is either an envelope that can be stored, or
poison with a reason; nothing else escapes, so one message never decides another's fate.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting, PoisonMessageError, encode, parse_message
from jobping.engine.ports import ReceivedMessage
from jobping.markup import ZERO_WIDTH_SPACE, escape, link
from jobping.stored import to_row
from storage.delta import ANALYSED_UP_TO, CLOCK_SKEW, MERGED_UP_TO, implausible, merge_record
from storage.lake import Lake
from storage.rows import ROW_SCHEMA
from tasks.sqs.dlq import dead_letter

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# integers past 64 bits on purpose: JSON has no limit, the lake does
scalars = st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
urls = st.sampled_from(["https://", "http://", "javascript:", "", "ftp://"]).flatmap(
    lambda scheme: st.text(max_size=60).map(lambda rest: scheme + rest)
)
# for each field, values of its own type at their extremes, and anything at all
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-(10**30), 10**30),
    "float": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30),
    "date": st.dates().map(date.isoformat) | st.text(max_size=20),
    "bool": st.booleans(),
}


def field_values(name: str) -> st.SearchStrategy[Any]:
    annotation = str(JobPosting.model_fields[name].annotation)
    typed = next((strategy for kind, strategy in BY_TYPE.items() if kind in annotation), st.text(max_size=200))
    return typed | urls | json_values


postings = st.fixed_dictionaries(
    {"title": st.text(max_size=80) | scalars, "job_url": urls | scalars},
    optional={name: field_values(name) for name in JobPosting.model_fields if name not in ("title", "job_url")},
)
envelopes = st.fixed_dictionaries(
    {
        "schema_version": st.just(1) | scalars,
        "job_key": st.text(max_size=40),
        "content_hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64) | st.text(max_size=10),
        "scraped_at": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat) | scalars,
        "posting": postings | json_values,
    },
    optional={"truncated_fields": json_values, "cleared_fields": json_values, "search": json_values},
)

ANALYSIS = AnalysisResult(
    analysis=JobAnalysis(
        fit_score=50, verdict="maybe", seniority="mid", remote_policy="remote", skills=[],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="ok",
    ),
    model="m",
    prompt_version="p",
)  # fmt: skip


def stored_or_poison(body: str) -> None:
    try:
        envelope = parse_message(body, NOW)
    except PoisonMessageError as exc:
        assert exc.reason  # noqa: PT017 - the property is "poison, with a reason", not one case
        return
    # what is accepted becomes a lake row, and travels on the queue again unchanged
    pl.DataFrame([to_row(envelope, ANALYSIS, NOW, "m-1")], schema=ROW_SCHEMA)
    again = parse_message(encode(envelope), NOW)
    assert again.job_key == envelope.job_key


def dlq_shows(body: str) -> None:
    message = ReceivedMessage(message_id="m", receipt_handle="r", body=body, receive_count=1, sent_at=NOW)
    dead_letter(message, NOW)


@FUZZ
@given(st.text())
# found before: an integer past Python's 4,300 digits, and nesting past the recursion limit
@example('{"title": "t", "job_url": "https://x.example/1", "min_amount": ' + "9" * 5_000 + "}")
@example("[" * 5_000 + "]" * 5_000)
def test_any_text_is_stored_or_poison_and_the_dlq_shows_it(body: str) -> None:
    stored_or_poison(body)
    dlq_shows(body)


@FUZZ
@given(st.binary())
def test_any_bytes_as_sqs_delivers_them_are_stored_or_poison(body: bytes) -> None:
    text = body.decode("utf-8", errors="replace")
    stored_or_poison(text)
    dlq_shows(text)


@FUZZ
@given(json_values)
def test_any_json_value_is_stored_or_poison(value: Any) -> None:
    stored_or_poison(json.dumps(value))


@FUZZ
@given(postings)
# found before: a count past 64 bits was accepted and then failed the whole batch's write
@example({"title": "t", "job_url": "https://x.example/1", "vacancy_count": 10**30})
@example({"title": "t", "job_url": "https://x.example/1", "date_posted": "9999-12-31", "company_rating": "NaN"})
# found before: a URL urlsplit cannot take apart raised from the job_key instead of being poison
@example({"title": "0", "job_url": "https://["})
@example({"title": "0", "job_url": "https://x.example:99999/"})
def test_any_posting_shaped_object_is_stored_or_poison(value: dict[str, Any]) -> None:
    body = json.dumps(value)
    stored_or_poison(body)
    dlq_shows(body)


@FUZZ
@given(envelopes)
def test_any_envelope_shaped_object_is_stored_or_poison(value: dict[str, Any]) -> None:
    stored_or_poison(json.dumps(value))


@FUZZ
@given(
    version=st.integers(-(10**30), 10**30).map(str) | st.text(max_size=20),
    moment=st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat) | st.text(max_size=40),
    history_version=st.integers(0, 10**6),
)
def test_any_merge_record_from_the_lake_is_refused_unless_plausible(
    version: str, moment: str, history_version: int
) -> None:
    recorded = merge_record({MERGED_UP_TO: version, ANALYSED_UP_TO: moment})
    if recorded is None:
        return
    reason = implausible(recorded, history_version, NOW)
    plausible = recorded.history_version <= history_version and recorded.analysed_up_to <= NOW + CLOCK_SKEW
    assert (reason is None) == plausible
    assert recorded.analysed_up_to.tzinfo is not None


# path text as a tampered Delta log may hold it: separators, dots, percent-escapes, schemes
log_paths = st.lists(
    st.sampled_from(["..", ".", "/", "%2E", "%2F", "%2e%2e", "_delta_log", "s3://", "file://", "bucket", "x.parquet"])
    | st.text(max_size=8),
    max_size=8,
).map("".join)


@FUZZ
@given(path=log_paths)
# found before: a URI urlsplit cannot take apart raised instead of naming no file of ours
@example(path="s3://[")
@example(path="file://[/x.parquet")
def test_any_path_from_a_local_lake_s_log_resolves_inside_its_table_or_not_at_all(
    path: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lake = Lake(tmp_path_factory.getbasetemp() / "fuzz-lake")
    root = os.path.realpath(lake.history_uri)
    try:
        found = lake.resolve(lake.history_uri, path)
    except ValueError:  # a NUL in the path: no file can be named so
        assert "\x00" in unquote(path)
        return
    if found is not None:
        inside = os.path.relpath(found, root)
        assert found != root
        assert inside.split(os.sep)[0] not in {"..", "_delta_log"}, found


@FUZZ
@given(path=log_paths)
@example(path="s3://[")
def test_any_path_from_an_s3_lake_s_log_resolves_inside_its_table_or_not_at_all(path: str) -> None:
    lake = Lake("s3://bucket/lake")
    found = lake.resolve(lake.history_uri, path)
    if found is not None:
        assert found.startswith(lake.history_uri + "/"), found
        rest = found.removeprefix(lake.history_uri + "/").split("/")
        assert not {"..", ".", ""} & set(rest), found
        assert rest[0] != "_delta_log", found


@FUZZ
@given(text=st.text(max_size=80) | st.sampled_from(["<!channel>", "<https://e.x|indeed.com>", "[a](https://e.x)"]))
def test_any_posting_text_reaches_a_chat_app_with_nothing_it_acts_on(text: str) -> None:
    slack, discord, markdown = escape(text, "slack"), escape(text, "discord"), escape(text, "markdown")
    assert not {"<", ">"} & set(slack)
    assert "](" not in slack
    assert all(after == ZERO_WIDTH_SPACE for after in re.findall(r"@(.?)", discord, re.S))
    for escaped in (discord, markdown):
        # every character the markup acts on is escaped by a backslash that is not itself escaped
        assert not re.search(r"(?<!\\)(?:\\\\)*[\[\]()<>]", escaped), escaped
    assert "\n" not in slack + discord + markdown


@FUZZ
@given(url=urls | st.sampled_from(["https://indeed.com@evil.example/", "https://e.x/a b|c>d", "JAVASCRIPT:x"]))
def test_any_job_url_is_linked_as_an_http_url_with_nothing_markup_acts_on_or_not_at_all(url: str) -> None:
    shown = link(url)
    if shown is not None:
        assert shown.startswith(("http://", "https://"))
        assert not re.search(r"[\s<>|\[\]()*`\"'@\\^{}]", shown), shown
