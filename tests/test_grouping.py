"""Job groups: one job's postings share a group however boards write them; other jobs do not."""

# postings carry real-world punctuation (en dashes), which the normalisers must handle
# ruff: noqa: RUF001

from __future__ import annotations

import json
from collections import defaultdict
from importlib import resources
from typing import Any

import pytest

from bench.grouping import assign_all, load_labelled, quality
from jobping.grouping import (
    SAME_JOB_SIMILARITY,
    Member,
    assign,
    fingerprint,
    group_key,
    must_read,
    normalise_company,
    normalise_place,
    normalise_title,
    similarity,
)

DESCRIPTION = (
    "## About us\n\nWiener Würfel makes puzzle apps played by two million people.\n\n"
    "## The role\n\nWe are looking for a **Senior Data Engineer** to own the event pipeline.\n\n"
    "## What you'll do\n\n* Build **Kafka** consumers that land change data in the lake\n"
    "* Model data in our warehouse for analysts and product teams\n* Take part in on-call\n\n"
    "Salary: 70,000 - 85,000 per year."
)
OTHER_OPENING = (
    "## About us\n\nWiener Würfel makes puzzle apps played by two million people.\n\n"
    "## The role\n\nJoin the payments team and rebuild how players buy hints and levels.\n\n"
    "## What you'll do\n\n* Design the ledger for in-app purchases\n* Reconcile app store reports nightly\n"
    "* Work with finance on revenue recognition\n\nSalary: 60,000 - 75,000 per year."
)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("Wiener Würfel GmbH", "Wiener Wuerfel", id="umlaut-spelt-out-and-legal-form"),
        pytest.param("Wiener Würfel", "WIENER WURFEL", id="umlaut-dropped-and-case"),
        pytest.param("Thistle & Byte Ltd", "Thistle and Byte Limited", id="ampersand-and-ltd"),
        pytest.param("Müller & Söhne GmbH & Co. KG", "Mueller und Soehne", id="gmbh-co-kg"),
        pytest.param("Noordzee Data B.V.", "Noordzee Data BV", id="dotted-legal-form"),
        pytest.param("Kookaburra Labs Pty Ltd", "Kookaburra Labs", id="two-word-legal-form"),
        pytest.param("Øresund Energi A/S", "Oresund Energi", id="letters-nfkd-keeps"),
        pytest.param("The Quillstack Company, Inc.", "Quillstack", id="leading-the-and-stacked-forms"),
    ],
)
def test_one_company_written_two_ways_normalises_alike(one: str, other: str) -> None:
    assert normalise_company(one) == normalise_company(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("Quillstack", "Brightfield", id="other-name"),
        pytest.param("Kestrel Pay", "Kestrel Payroll", id="other-last-word"),
    ],
)
def test_other_companies_stay_apart(one: str, other: str) -> None:
    assert normalise_company(one) != normalise_company(other)


def test_a_name_that_is_only_a_legal_form_keeps_its_word() -> None:
    assert normalise_company("Company") == "company"
    assert normalise_company(None) == ""


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("Senior Data Engineer (m/w/d)", "Senior Data Engineer", id="german-gender-marker"),
        pytest.param("Data Analyst Junior (H/F)", "Jr. Data Analyst", id="french-marker-and-jr"),
        pytest.param("Data Engineer, Senior", "Sr. Data Engineer", id="word-order-and-sr"),
        pytest.param("Snr Data Engineer (all genders)", "Senior Data Engineer", id="snr-all-genders"),
        pytest.param("Data Engineer m/f/d", "Data Engineer (d/f/m)", id="bare-and-reordered-marker"),
        pytest.param("Mid-Level Go Engineer", "Mid Go Engineer", id="mid-level"),
        pytest.param("Backend Engineer - Remote", "Backend Engineer (Remote)", id="remote-decoration"),
        pytest.param("Backend Engineer – München", "Backend Engineer", id="city-decoration"),
        pytest.param("Softwareentwickler*in", "Softwareentwickler", id="gender-star-ending"),
    ],
)
def test_one_title_written_two_ways_normalises_alike(one: str, other: str) -> None:
    assert normalise_title(one) == normalise_title(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("Senior Go Engineer", "Go Engineer", id="seniority-kept"),
        pytest.param("Lead Data Engineer", "Senior Data Engineer", id="lead-is-not-senior"),
        pytest.param("C++ Developer", "C# Developer", id="c-plus-plus-is-not-c-sharp"),
        pytest.param("Registered Nurse - ICU", "Registered Nurse", id="non-place-suffix-kept"),
        pytest.param("Software Engineer II", "Software Engineer", id="level-kept"),
    ],
)
def test_other_titles_stay_apart(one: str, other: str) -> None:
    assert normalise_title(one) != normalise_title(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(("Wien, Austria", False), ("Vienna, AT", None), id="wien-vienna"),
        pytest.param(("München, Bayern, Deutschland", False), ("Munich, BY, DE", False), id="muenchen-munich"),
        pytest.param(("Muenchen", None), ("München, Germany", None), id="umlaut-spelt-out"),
        pytest.param(("New York, NY", False), ("New York City, NY, USA", False), id="new-york-city"),
        pytest.param(("NYC", None), ("New York, NY, USA", None), id="nyc"),
        pytest.param(("Bangalore, KA, IN", False), ("Bengaluru, Karnataka, India", False), id="bangalore"),
        pytest.param(("Greater London", None), ("London, UK", None), id="greater-area"),
        pytest.param(("Hamburg, Germany", True), ("Hamburg, Germany", None), id="remote-flag-ignored-with-city"),
        pytest.param(("Remote", True), ("Anywhere", None), id="remote-anywhere"),
        pytest.param(("", True), ("Remote", None), id="empty-remote"),
        pytest.param(("Remote, US", True), ("USA", None), id="remote-in-a-country"),
    ],
)
def test_one_place_written_two_ways_normalises_alike(
    one: tuple[str, bool | None], other: tuple[str, bool | None]
) -> None:
    assert normalise_place(*one) == normalise_place(*other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(("Wien, Austria", False), ("München, Germany", False), id="vienna-munich"),
        pytest.param(("Remote", True), ("Berlin, Germany", False), id="remote-berlin"),
        pytest.param(("Remote, US", True), ("Remote", True), id="remote-us-remote"),
        pytest.param(("Klagenfurt, Austria", False), ("Villach, AT", False), id="cities-not-in-the-table"),
    ],
)
def test_other_places_stay_apart(one: tuple[str, bool | None], other: tuple[str, bool | None]) -> None:
    assert normalise_place(*one) != normalise_place(*other)


def test_group_key_is_stable_across_processes_and_releases() -> None:
    # a pinned digest: a change here regroups every stored posting
    assert group_key("Wiener Würfel GmbH", "Senior Data Engineer (m/w/d)", "Wien, Austria", False) == "175fe4c2e8ce68e8"
    assert group_key("Wiener Wuerfel", "Data Engineer, Sr.", "Vienna, AT", None) == "175fe4c2e8ce68e8"


@pytest.mark.parametrize(
    ("company", "title"),
    [
        pytest.param(None, "Data Engineer", id="no-company"),
        pytest.param("Acme GmbH", "(m/w/d)", id="title-only-marker"),
    ],
)
def test_posting_without_company_or_title_has_no_key(company: str | None, title: str) -> None:
    assert group_key(company, title, "Berlin", False) is None


def test_reformatted_copy_is_identical_cut_padded_copy_similar_other_opening_not() -> None:
    plain = DESCRIPTION.replace("**", "").replace("## ", "").replace("* ", "- ")
    copy = plain[: len(plain) * 3 // 4] + "\n\nWiener Würfel is an equal opportunity employer. Apply now!"
    assert similarity(fingerprint(DESCRIPTION), fingerprint(plain)) == 1.0
    assert similarity(fingerprint(DESCRIPTION), fingerprint(copy)) >= SAME_JOB_SIMILARITY
    assert similarity(fingerprint(DESCRIPTION), fingerprint(OTHER_OPENING)) < SAME_JOB_SIMILARITY


def test_missing_description_is_similar_to_nothing() -> None:
    assert fingerprint(None) == frozenset()
    assert similarity(fingerprint(None), fingerprint("")) == 0.0


def test_first_posting_of_a_key_names_the_group_after_the_key() -> None:
    got = assign("indeed:1", "k1", fingerprint(DESCRIPTION), [])
    assert (got.job_group, got.analysis_of) == ("k1", None)


def test_two_processes_assigning_one_job_unseen_by_each_other_agree() -> None:
    first = assign("indeed:1", "k1", fingerprint(DESCRIPTION), [])
    second = assign("linkedin:9", "k1", fingerprint(DESCRIPTION + " Apply now."), [])
    assert first.job_group == second.job_group


def test_similar_posting_joins_and_reuses_the_analysed_member() -> None:
    members = [Member("indeed:1", "k1", fingerprint(DESCRIPTION), analysed=True)]
    got = assign("linkedin:9", "k1", fingerprint(DESCRIPTION.replace("**", "")), members)
    assert (got.job_group, got.analysis_of) == ("k1", "indeed:1")


def test_analysis_is_reused_only_from_a_member_with_its_own() -> None:
    members = [Member("indeed:1", "k1", fingerprint(DESCRIPTION), analysed=False)]
    got = assign("linkedin:9", "k1", fingerprint(DESCRIPTION), members)
    assert (got.job_group, got.analysis_of) == ("k1", None)


def test_second_opening_under_one_key_gets_a_group_of_its_own_named_by_its_first_posting() -> None:
    members = [Member("indeed:1", "k1", fingerprint(DESCRIPTION), analysed=True)]
    got = assign("indeed:2", "k1", fingerprint(OTHER_OPENING), members)
    again = assign("indeed:2", "k1", fingerprint(OTHER_OPENING), list(reversed(members)))
    assert got.job_group not in ("k1", "")
    assert got.analysis_of is None
    assert got == again


def test_posting_without_key_is_a_group_of_its_own() -> None:
    one = assign("indeed:1", None, fingerprint(DESCRIPTION), [])
    other = assign("indeed:2", None, fingerprint(DESCRIPTION), [])
    assert one.job_group != other.job_group
    assert one == assign("indeed:1", None, frozenset(), [])


def test_labelled_set_is_grouped_with_high_pairwise_precision_and_recall() -> None:
    postings = load_labelled()
    assigned = assign_all(postings)
    q = quality(postings, assigned, 0.0)
    assert q.true_pairs > 1000
    assert q.precision >= 0.98
    assert q.recall >= 0.95
    assert q.reused_across_jobs == 0
    assert q.reused > 0


def _display_location(location: dict[str, str] | None) -> str:
    # jobspy's Location.display_location()
    if not location:
        return ""
    country = location.get("country", "")
    country = country.upper() if country in ("usa", "uk") else country.title()
    return ", ".join(p for p in (location.get("city"), location.get("state"), country) if p)


def _sample_jobs() -> list[dict[str, Any]]:
    data = json.loads(resources.files("jobping").joinpath("sample/postings.json").read_text(encoding="utf-8"))
    columns = data["columns"]
    return [job if isinstance(job, dict) else dict(zip(columns, job, strict=True)) for job in data["jobs"]]


def test_sample_cross_posts_share_a_group_and_nothing_else_does() -> None:
    jobs = _sample_jobs()
    postings = [
        {
            "job_key": f"{job['site']}:{job['id']}" if job["id"] else f"url:{job['job_url']}",
            "company": job["company"],
            "title": job["title"],
            "location": _display_location(job["location"]),
            "is_remote": job["is_remote"],
            "description": job["description"],
        }
        for job in jobs
    ]
    assigned = assign_all(postings)
    by_text: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for posting in postings:
        if posting["company"] and posting["description"]:
            by_text[posting["company"], posting["title"], posting["description"]].add(posting["job_key"])
    pairs = [keys for keys in by_text.values() if len(keys) > 1]
    assert len(pairs) == 32
    for keys in pairs:
        assert len({assigned[k].job_group for k in keys}) == 1, keys
    # every other group is one posting: the sample's other look-alikes differ in place or text
    crossposted = {k for keys in pairs for k in keys}
    groups = defaultdict(list)
    for key, got in assigned.items():
        groups[got.job_group].append(key)
    merged = [keys for keys in groups.values() if len(keys) > 1 and not set(keys) <= crossposted]
    assert merged == []


def test_a_copy_cut_short_mid_word_reuses_the_fuller_ones_analysis_never_the_other_way_round() -> None:
    # a board cuts in the middle of a word and adds an ellipsis
    cut = DESCRIPTION[: len(DESCRIPTION) // 2].rstrip()[:-2] + "…"
    full = [Member("indeed:1", "k1", fingerprint(DESCRIPTION), analysed=True)]
    short = [Member("indeed:1", "k1", fingerprint(cut), analysed=True)]
    shorter = assign("linkedin:9", "k1", fingerprint(cut), full, read=must_read(cut))
    fuller = assign("linkedin:9", "k1", fingerprint(DESCRIPTION), short, read=must_read(DESCRIPTION))
    assert (shorter.job_group, shorter.analysis_of) == ("k1", "indeed:1")
    assert (fuller.job_group, fuller.analysis_of) == ("k1", None)


@pytest.mark.parametrize(
    "more",
    [
        pytest.param(" Send a scan of your passport and your bank login to apply.", id="one-sentence-appended"),
        pytest.param(" Send us your passport." * 300, id="7000-characters-appended"),
        pytest.param("Urgent: pay the fee first. ", id="prepended"),
    ],
)
def test_a_copy_with_anything_more_stays_in_the_group_and_is_judged_again(more: str) -> None:
    text = more + DESCRIPTION if more.startswith("Urgent") else DESCRIPTION + more
    members = [Member("indeed:1", "k1", fingerprint(DESCRIPTION), analysed=True)]
    got = assign("url:evil", "k1", fingerprint(text), members, read=must_read(text))
    assert (got.job_group, got.analysis_of) == ("k1", None)


@pytest.mark.parametrize(
    ("lender_scraped", "scraped", "reuses"),
    [
        pytest.param(False, True, False, id="outside-never-lends-to-scraped"),
        pytest.param(True, True, True, id="scraped-lends-to-scraped"),
        pytest.param(True, False, True, id="scraped-lends-to-outside"),
        pytest.param(False, False, True, id="outside-lends-to-outside"),
    ],
)
def test_a_scraped_posting_reuses_no_analysis_of_another_producer(
    lender_scraped: bool, scraped: bool, reuses: bool
) -> None:
    members = [Member("url:other", "k1", fingerprint(DESCRIPTION), analysed=True, scraped=lender_scraped)]
    got = assign("indeed:1", "k1", fingerprint(DESCRIPTION), members, scraped=scraped)
    assert got.job_group == "k1"
    assert got.analysis_of == ("url:other" if reuses else None)


def test_a_scraped_lender_comes_before_another_producers_whatever_their_keys() -> None:
    fp = fingerprint(DESCRIPTION)
    members = [Member("aaa:0", "k1", fp, analysed=True), Member("zzz:9", "k1", fp, analysed=True, scraped=True)]
    assert assign("url:x", "k1", fp, members).analysis_of == "zzz:9"
    assert assign("url:x", "k1", fp, list(reversed(members))).analysis_of == "zzz:9"
