"""The message contract: envelopes, bare postings from a plain producer, and poison."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from jobping.contract import (
    MAX_MESSAGE_BYTES,
    Envelope,
    JobPosting,
    PoisonMessageError,
    SearchSpec,
    content_hash,
    encode,
    encode_cut,
    envelope_for,
    job_key,
    normalise_url,
    parse_message,
    salvage_posting,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def posting(**changes: object) -> JobPosting:
    fields: dict[str, object] = {
        "id": "in-123",
        "site": "indeed",
        "job_url": "https://www.indeed.com/viewjob?jk=123",
        "title": "Data Engineer",
        "company": "Acme",
        "description": "## About\nWe use **Python** and SQL.",
    }
    fields.update(changes)
    return JobPosting.model_validate(fields)


def test_bare_posting_with_nan_values_is_accepted_as_a_plain_producer_sends_it() -> None:
    row = {
        "title": "Data Engineer",
        "company": "Acme",
        "job_url": "https://example.com/jobs/1",
        "min_amount": math.nan,
        "max_amount": 90000.0,
        "is_remote": math.nan,
        "date_posted": "2026-11-20 00:00:00",
        "id": math.nan,
        "site": "linkedin",
    }
    body = json.dumps(row)  # json.dumps writes NaN, as the original producer does
    assert "NaN" in body
    envelope = parse_message(body, NOW)
    assert envelope.posting.min_amount is None
    assert envelope.posting.is_remote is None
    assert envelope.posting.date_posted is not None
    assert envelope.posting.date_posted.isoformat() == "2026-11-20"
    assert envelope.job_key.startswith("url:")
    assert envelope.scraped_at == NOW


def test_envelope_survives_a_round_trip_through_the_queue_format() -> None:
    original = envelope_for(posting(), NOW, SearchSpec(term="data engineer", location="Berlin"))
    parsed = parse_message(encode(original), NOW)
    assert parsed == original


POISON = {
    "not json": ("{not json", "not JSON"),
    "array": ("[1, 2, 3]", "not a JSON object"),
    "string": ('"hello"', "not a JSON object"),
    "no title": (json.dumps({"job_url": "https://x.example/1"}), "title"),
    "no job_url": (json.dumps({"title": "Engineer"}), "job_url"),
    "empty title": (json.dumps({"title": "  ", "job_url": "https://x.example/1"}), "title"),
    "url not http": (json.dumps({"title": "Engineer", "job_url": "javascript:alert(1)"}), "job_url"),
    "unknown schema": (json.dumps({"schema_version": 99, "posting": {}}), "unknown schema_version"),
    "over the size limit": ("x" * (MAX_MESSAGE_BYTES + 1), "byte limit"),
    "envelope without posting": (
        json.dumps(
            {"schema_version": 1, "job_key": "k", "content_hash": "0" * 64, "scraped_at": "2026-11-27T00:00:00Z"}
        ),
        "posting",
    ),
}


@pytest.mark.parametrize(("body", "reason"), POISON.values(), ids=POISON.keys())
def test_poison_message_is_refused_with_a_reason(body: str, reason: str) -> None:
    with pytest.raises(PoisonMessageError) as caught:
        parse_message(body, NOW)
    assert reason in caught.value.reason


def test_job_key_is_site_and_id_and_stable_across_runs() -> None:
    assert job_key(posting()) == "indeed:in-123"
    assert job_key(posting(description="changed")) == "indeed:in-123"
    assert job_key(posting(site="linkedin")) != job_key(posting())


def test_job_key_without_id_ignores_tracking_parameters_and_fragments() -> None:
    a = posting(id=None, job_url="https://Jobs.Example.com/p/1/?utm_source=x&ref=abc#apply")
    b = posting(id=None, job_url="https://jobs.example.com/p/1")
    assert job_key(a) == job_key(b)
    assert normalise_url("https://jobs.example.com/p/1?b=2&a=1") == "https://jobs.example.com/p/1?a=1&b=2"


def test_content_hash_changes_with_what_the_posting_says_only() -> None:
    base = content_hash(posting())
    assert content_hash(posting(description="different text")) != base
    assert content_hash(posting(max_amount=100_000.0)) != base
    assert content_hash(posting(company_logo="https://cdn.example/logo.png")) == base


def test_a_description_too_large_for_the_queue_is_truncated_with_a_flag_not_dropped() -> None:
    big = posting(description="Zürich 🚀東京データ " * 12_000)
    envelope = envelope_for(big, NOW)
    body = encode(envelope)
    assert len(body.encode()) < MAX_MESSAGE_BYTES
    parsed = parse_message(body, NOW)
    assert parsed.description_truncated
    assert parsed.content_hash == envelope.content_hash
    assert parsed.posting.description
    assert envelope.posting.description
    assert envelope.posting.description.startswith(parsed.posting.description)


def test_envelope_rejects_a_malformed_content_hash() -> None:
    with pytest.raises(ValueError, match="content_hash"):
        Envelope(job_key="k", content_hash="abc", scraped_at=NOW, posting=posting())


def test_a_bare_posting_keeps_its_job_when_a_detail_is_too_long_or_impossible() -> None:
    body = json.dumps(
        {"title": "x" * 10_000, "job_url": "https://x.example/1", "min_amount": -5, "interval": "fortnightly"}
    )
    envelope = parse_message(body, NOW)
    assert envelope.posting.title == "x" * 500
    assert envelope.posting.min_amount is None
    assert envelope.posting.interval is None
    assert envelope.truncated_fields == ["title"]
    assert not envelope.description_truncated


def test_salvage_names_each_field_it_cut_or_cleared_and_why() -> None:
    salvaged = salvage_posting(
        {"title": "Engineer", "job_url": "https://x.example/1", "description": "d" * 300_000, "company_rating": 9}
    )
    assert salvaged.cut == {"description": "cut from 300,000 to 200,000 characters (its limit)"}
    assert "company_rating" in salvaged.cleared
    assert salvaged.notes()[0].startswith("description cut from 300,000")


def test_a_message_too_large_cuts_its_longest_field_even_when_that_is_not_the_description() -> None:
    wide = posting(description="short", company_description="公司" * 10_000, company_addresses="地" * 2_000)
    envelope = envelope_for(wide, NOW)
    body, cut = encode_cut(envelope, budget=40_000)
    assert len(body.encode()) <= 40_000
    assert set(cut) == {"company_description"}
    parsed = parse_message(body, NOW)
    assert parsed.truncated_fields == ["company_description"]
    assert not parsed.description_truncated
    assert parsed.posting.description == "short"
    assert parsed.posting.company_addresses == wide.company_addresses
    assert parsed.content_hash == envelope.content_hash


EDGES = {
    "the year 10000 once in UTC": ("scraped_at", "9999-12-31T23:59:59-12:00"),
    "before any job board": ("scraped_at", "1970-01-01T00:00:00Z"),
    "next year": ("scraped_at", "2099-01-01T00:00:00Z"),
}


@pytest.mark.parametrize(("field", "value"), EDGES.values(), ids=EDGES.keys())
def test_an_envelope_dated_outside_a_sane_range_is_poison(field: str, value: str) -> None:
    envelope = json.loads(envelope_for(posting(), NOW).model_dump_json())
    envelope[field] = value
    with pytest.raises(PoisonMessageError, match=field):
        parse_message(json.dumps(envelope), NOW)


def test_scraped_at_is_kept_in_utc_whatever_offset_it_came_with() -> None:
    envelope = json.loads(envelope_for(posting(), NOW).model_dump_json())
    envelope["scraped_at"] = "2026-11-27T23:30:00-02:00"
    parsed = parse_message(json.dumps(envelope), NOW)
    assert parsed.scraped_at.isoformat() == "2026-11-28T01:30:00+00:00"


def test_a_posting_dated_in_the_far_future_keeps_its_job_without_the_date() -> None:
    body = json.dumps({"title": "Engineer", "job_url": "https://x.example/1", "date_posted": "9999-12-31"})
    assert parse_message(body, NOW).posting.date_posted is None


def test_a_link_that_is_not_http_is_stored_as_null_and_named() -> None:
    body = json.dumps(
        {"title": "Engineer", "job_url": "https://x.example/1", "job_url_direct": "javascript:alert(1)",
         "company_url": "data:text/html,<script>x</script>", "company_logo": "https://cdn.example/l.png"}
    )  # fmt: skip
    envelope = parse_message(body, NOW)
    assert (envelope.posting.job_url_direct, envelope.posting.company_url) == (None, None)
    assert envelope.posting.company_logo == "https://cdn.example/l.png"
    assert sorted(envelope.cleared_fields) == ["company_url", "job_url_direct"]
