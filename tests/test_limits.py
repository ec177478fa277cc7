"""The profile's limits as rules (jobping/limits.py) and the posting's own words they read (jobping/reading.py)."""

from __future__ import annotations

import asyncio

import pytest

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting
from jobping.limits import (
    BROKEN_SCORE_CAP,
    LIMITS_VERSION,
    SOFT_LIMIT_PENALTY,
    WithinLimits,
    broken_limits,
    within_limits,
)
from jobping.profile import Profile
from jobping.reading import remote_policy, title_seniority, title_words
from tasks.llm.offline import OfflineAnalyser
from tests.test_offline_analyser import posting as base_posting

PROFILE = Profile(
    wanted_titles=["data engineer"],
    skills=["python", "sql", "airflow"],
    seniority=["mid", "senior"],
    locations=["berlin", "amsterdam", "remote"],
    remote="remote_or_hybrid",
    salary_floor_yearly=60_000,
    salary_currency="EUR",
    deal_breakers=["security clearance", "on-call 24/7"],
)


def posting(**changes: object) -> JobPosting:
    """The offline analyser's tests' posting: hybrid in Berlin by its board's field, its text silent on it."""
    fields: dict[str, object] = {"work_from_home_type": "Hybrid", "description": "We use Python, SQL and Airflow."}
    return base_posting(**{**fields, **changes})


def answer(**changes: object) -> JobAnalysis:
    """What a model that wants every job says: apply, 95."""
    fields: dict[str, object] = {
        "fit_score": 95, "verdict": "apply", "seniority": "unknown", "remote_policy": "unknown", "skills": [],
        "salary_min_yearly": None, "salary_max_yearly": None, "salary_currency": None, "red_flags": [],
        "summary": "A great fit, says the model.",
    }  # fmt: skip
    fields.update(changes)
    return JobAnalysis.model_validate(fields)


def reasons(job: JobPosting, profile: Profile = PROFILE, analysis: JobAnalysis | None = None) -> list[str]:
    return [item.reason for item in broken_limits(profile, job, analysis or answer())]


def test_a_posting_within_every_limit_breaks_none() -> None:
    assert reasons(posting()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"work_from_home_type": None, "is_remote": False, "location": "Lisbon, Portugal"},
      ["on-site in Lisbon, Portugal, outside your places"]),
     ({"work_from_home_type": None, "is_remote": False}, ["on-site in Berlin, Germany: you want remote or hybrid"]),
     ({"location": "Hamburg, Germany"}, ["hybrid in Hamburg, Germany, outside your places"]),
     ({"location": "München, Deutschland", "work_from_home_type": None, "description": "Die Stelle ist vor Ort."},
      ["on-site in München, Deutschland, outside your places"]),
     ({"location": "Amsterdam, Netherlands"}, []),
     ({"location": "New York, NY, USA", "work_from_home_type": "Remote"}, []),
     ({"location": "New York, NY, USA", "work_from_home_type": None, "is_remote": True}, [])],
    ids=["on-site-elsewhere", "on-site-in-a-place", "hybrid-elsewhere", "german-on-site", "hybrid-in-a-place",
         "remote-anywhere", "remote-flag"],
)  # fmt: skip
def test_remote_or_hybrid_refuses_on_site_and_hybrid_elsewhere(changes: dict[str, object], expected: list[str]) -> None:
    assert reasons(posting(**changes)) == expected


def test_remote_only_refuses_hybrid_even_in_a_place_and_any_refuses_only_other_places() -> None:
    remote_only = PROFILE.model_copy(update={"remote": "remote_only"})
    assert reasons(posting(), remote_only) == ["hybrid in Berlin, Germany: you want remote only"]
    anywhere = PROFILE.model_copy(update={"remote": "any"})
    on_site = {"work_from_home_type": None, "is_remote": False}
    assert reasons(posting(**on_site), anywhere) == []
    assert reasons(posting(**on_site, location="Lisbon"), anywhere) == ["on-site in Lisbon, outside your places"]
    assert reasons(posting(**on_site, location="Lisbon"), anywhere.model_copy(update={"locations": []})) == []


@pytest.mark.parametrize(
    "changes",
    [{"location": None, "work_from_home_type": None, "is_remote": None, "description": "Python."},
     {"location": "Lisbon, Portugal", "work_from_home_type": None, "is_remote": None, "description": "Python."},
     {"min_amount": None, "max_amount": None},
     {"min_amount": 30_000.0, "max_amount": 40_000.0, "currency": None},
     {"title": "Data Engineer"}],
    ids=["no-place-no-mode", "place-but-no-mode", "no-pay", "pay-without-currency", "no-seniority"],
)  # fmt: skip
def test_what_the_posting_does_not_say_is_not_a_break(changes: dict[str, object]) -> None:
    assert reasons(posting(**changes)) == []


def test_the_model_s_reading_of_the_work_mode_counts_only_where_the_posting_itself_says_nothing() -> None:
    silent = posting(location="Lisbon", work_from_home_type=None, is_remote=None, description="Python.")
    assert reasons(silent, analysis=answer(remote_policy="onsite")) == ["on-site in Lisbon, outside your places"]
    # the posting's own word wins over the model's
    assert (
        reasons(posting(location="Lisbon", work_from_home_type="Remote"), analysis=answer(remote_policy="onsite")) == []
    )


@pytest.mark.parametrize(
    ("description", "flags", "expected"),
    [("Security clearance required.", [], ["deal-breaker: security clearance"]),
     ("You will be ON CALL 24/7 for the pipelines.", [], ["deal-breaker: on-call 24/7"]),
     ("No security clearance needed; on-call is light.", [], []),
     ("Python.", ["Requires an active security clearance"], ["deal-breaker: security clearance"]),
     ("We value security and clearance sales.", [], [])],
    ids=["in-the-text", "other-spelling", "negated", "in-the-red-flags", "words-apart"],
)  # fmt: skip
def test_a_deal_breaker_named_by_the_posting_or_the_analysis_is_a_break(
    description: str, flags: list[str], expected: list[str]
) -> None:
    assert reasons(posting(description=description), analysis=answer(red_flags=flags)) == expected


@pytest.mark.parametrize(
    ("interval", "amount", "currency", "expected"),
    [("hourly", 25.0, "EUR", ["pay up to 52,000 EUR a year, below your floor 60,000"]),
     ("monthly", 4_000.0, "eur", ["pay up to 48,000 EUR a year, below your floor 60,000"]),
     ("monthly", 6_000.0, "EUR", []),
     ("yearly", 40_000.0, "USD", [])],
    ids=["hourly-below", "monthly-below", "monthly-above", "other-currency"],
)  # fmt: skip
def test_the_salary_floor_is_checked_on_yearly_pay_in_the_profile_s_currency(
    interval: str, amount: float, currency: str, expected: list[str]
) -> None:
    job = posting(interval=interval, min_amount=None, max_amount=amount, currency=currency)
    assert reasons(job) == expected


def test_the_pay_the_model_read_in_the_text_counts_when_the_posting_s_fields_give_none() -> None:
    job = posting(min_amount=None, max_amount=None, currency=None)
    told = answer(salary_min_yearly=40_000, salary_max_yearly=45_000, salary_currency="EUR")
    assert reasons(job, analysis=told) == ["pay up to 45,000 EUR a year, below your floor 60,000"]


@pytest.mark.parametrize(
    ("title", "level"),
    [("Werkstudent Data Engineering (m/w/d)", "intern"), ("Praktikum Datenanalyse", "intern"),
     ("Stage - Ingénieur données (H/F)", "intern"), ("Alternance Data Engineer", "intern"),
     ("Leitender Dateningenieur (m/w/d)", "staff"), ("Teamleiter Data Platform", "manager"),
     ("Ingénieur de données confirmé", "senior"), ("Développeur Python Junior", "junior"),
     ("Associate Backend Engineer", "junior"), ("Warehouse Associate", "unknown"), ("Datenengineer", "unknown")],
)  # fmt: skip
def test_seniority_is_read_from_english_german_and_french_titles(title: str, level: str) -> None:
    assert title_seniority(posting(title=title)) == level


def test_a_seniority_not_wanted_is_a_break_and_an_unknown_one_is_not() -> None:
    assert reasons(posting(title="Werkstudent Data Engineering")) == ["seniority intern: you want mid, senior"]
    # the title says nothing: the model's reading decides
    assert reasons(posting(title="Data Engineer"), analysis=answer(seniority="staff")) == [
        "seniority staff: you want mid, senior"
    ]
    assert reasons(posting(title="Data Engineer"), analysis=answer(seniority="unknown")) == []


def test_titles_in_german_and_french_have_the_english_words() -> None:
    english = title_words("Data Engineer")
    assert title_words("Datenengineer (m/w/d)") >= english
    assert title_words("Ingénieur de données (H/F)") >= english
    assert title_words("Dateningenieur") >= english
    assert title_words("Backend-Entwickler") == title_words("Backend Engineer")


def test_hybrid_cloud_is_not_hybrid_work() -> None:
    job = posting(work_from_home_type=None, is_remote=None, description="We run a hybrid cloud. Fully remote team.")
    assert remote_policy(job) == "remote"


def test_a_hard_break_means_skip_with_a_capped_score_and_the_model_s_own_words() -> None:
    job = posting(location="Lisbon, Portugal", work_from_home_type=None, is_remote=False)
    result = AnalysisResult(analysis=answer(red_flags=["none"]), model="m", prompt_version="p")
    judged = within_limits(PROFILE, job, result)
    assert judged.analysis.verdict == "skip"
    assert judged.analysis.fit_score == BROKEN_SCORE_CAP
    assert judged.limits_broken == ["on-site in Lisbon, Portugal, outside your places"]
    assert (judged.analysis.summary, judged.analysis.red_flags) == ("A great fit, says the model.", ["none"])
    assert judged.prompt_version == f"p+{LIMITS_VERSION}"
    # judged once: a second pass changes nothing
    assert within_limits(PROFILE, job, judged) == judged


def test_a_soft_limit_broken_lowers_the_score_and_is_not_listed_as_broken() -> None:
    soft = PROFILE.model_copy(update={"soft_limits": ["salary", "places"]})
    job = posting(min_amount=None, max_amount=30_000.0, location="Lisbon", work_from_home_type=None, is_remote=False)
    judged = within_limits(soft, job, AnalysisResult(analysis=answer(), model="m", prompt_version="p"))
    assert judged.limits_broken == []
    assert judged.analysis.verdict == "apply"
    assert judged.analysis.fit_score == 95 - 2 * SOFT_LIMIT_PENALTY
    # a hard one beside the soft ones still decides
    hard = within_limits(
        soft, posting(title="Werkstudent Data Engineering"), judged.model_copy(update={"limits_checked": False})
    )
    assert hard.analysis.verdict == "skip"


def test_the_offline_analyser_is_judged_by_the_same_rules_once_and_says_why() -> None:
    analyser = WithinLimits(OfflineAnalyser(PROFILE), PROFILE)
    job = posting(title="Ingénieur de données (H/F)", location="Lyon, France", description="Python, SQL, Airflow.")
    result = asyncio.run(analyser.analyse(job))
    assert result.limits_broken == ["hybrid in Lyon, France, outside your places"]
    assert result.analysis.verdict == "skip"
    assert "a title you want" in result.analysis.summary
    assert "breaks your limits: hybrid in Lyon, France, outside your places" in result.analysis.summary
    assert result.prompt_version == analyser.prompt_version
    assert result.prompt_version.count(LIMITS_VERSION) == 1
    fits = asyncio.run(analyser.analyse(posting(title="Datenengineer (m/w/d)", description="Python, SQL, Airflow.")))
    assert (fits.analysis.verdict, fits.limits_broken) == ("apply", [])
    assert fits.analysis.fit_score >= 80
