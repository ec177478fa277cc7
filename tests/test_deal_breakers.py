"""Deal-breakers read as concepts (jobping/deal_breakers.py): found in other words and in English, German or French,
never when negated; and the offline analyser's judgement on the shipped labelled set (issue 29's acceptance)."""

from __future__ import annotations

import asyncio

import pytest

from jobping.deal_breakers import breaks, named_concepts
from jobping.labelled import bundled_set_text, parse_labelled
from jobping.limits import deal_breaker_breaks
from jobping.names import fold
from jobping.profile import Profile
from jobping.settings import NOTIFY_MIN_SCORE, LlmSettings
from tasks.llm.evaluate import GOAL_BREAKS, GOAL_PRECISION, GOAL_RECALL, evaluate
from tests.test_offline_analyser import posting

PROFILE = Profile(
    wanted_titles=["data engineer"],
    deal_breakers=["on-call 24/7", "security clearance", "unpaid", "zeitarbeit", "travel 50%", "defense industry"],
)


def found(description: str, company: str = "Acme") -> list[str]:
    return deal_breaker_breaks(PROFILE, posting(description=description, company=company), [])


@pytest.mark.parametrize(
    ("description", "breaker"),
    [("Part of a small team that carries the pager around the clock.", "on-call 24/7"),
     ("Rufbereitschaft rund um die Uhr im Wechsel mit zwei Kollegen.", "on-call 24/7"),
     ("Astreintes 24h/24 et 7j/7 une semaine sur quatre.", "on-call 24/7"),
     ("Applicants need DV clearance before they start.", "security clearance"),
     ("Eine Sicherheitsüberprüfung (Ü2) ist Voraussetzung.", "security clearance"),
     ("Poste soumis à une habilitation confidentiel défense.", "security clearance"),
     ("A volunteer role: the first three months are without pay.", "unpaid"),
     ("Das Praktikum ist unvergütet.", "unpaid"),
     ("Stage non rémunéré de six mois.", "unpaid"),
     ("You join us through a staffing agency on a temp-to-perm basis.", "zeitarbeit"),
     ("Anstellung bei einem Personaldienstleister, Einsatz beim Kunden.", "zeitarbeit"),
     ("Mission d'intérim de douze mois chez notre client.", "zeitarbeit"),
     ("Expect frequent travel to our plants, up to 60% of the time.", "travel 50%"),
     ("Häufige Dienstreisen zu Kunden in ganz Europa.", "travel 50%"),
     ("Déplacements fréquents à prévoir dans toute la France.", "travel 50%"),
     ("Our clients include defence contractors across NATO.", "defense industry"),
     ("Wir entwickeln Software für die Bundeswehr.", "defense industry"),
     ("Vous travaillerez sur des systèmes d'armes embarqués.", "defense industry")],
    ids=["on-call-en", "on-call-de", "on-call-fr", "clearance-en", "clearance-de", "clearance-fr", "unpaid-en",
         "unpaid-de", "unpaid-fr", "agency-en", "agency-de", "agency-fr", "travel-en", "travel-de", "travel-fr",
         "defence-en", "defence-de", "defence-fr"],
)  # fmt: skip
def test_a_deal_breaker_in_other_words_or_another_language_is_a_break(description: str, breaker: str) -> None:
    assert found(description) == [f"deal-breaker: {breaker}"]


@pytest.mark.parametrize(
    "description",
    ["There is no on-call, ever: we work office hours.",
     "Kein Bereitschaftsdienst, keine Reisetätigkeit.",
     "Pas d'astreinte et pas de déplacements.",
     "On-call in business hours only, one week in six.",
     "Occasional travel to our Berlin office, about 10% of the time.",
     "No security clearance needed. Never unpaid: every trial day is paid.",
     "Sans habilitation requise, poste ouvert à tous.",
     "The office is easily reached by train; we defend good code reviews."],
    ids=["no-on-call-en", "kein-de", "pas-de-fr", "office-hours-on-call", "light-travel", "negated-en",
         "sans-fr", "unrelated-words"],
)  # fmt: skip
def test_a_negated_or_lighter_deal_breaker_is_no_break(description: str) -> None:
    assert found(description) == []


def test_the_employer_s_name_can_say_the_deal_breaker() -> None:
    assert found("Kommissionierung im Lager.", company="Nordlicht Zeitarbeit GmbH") == ["deal-breaker: zeitarbeit"]


def test_a_deal_breaker_names_the_concepts_its_words_name_and_each_must_be_said() -> None:
    assert {concept.name for concept in named_concepts(fold("on-call 24/7"))} == {"on_call", "around_the_clock"}
    # on-call said, around the clock not: the deal-breaker is the combination
    assert not breaks("on-call 24/7", fold("One week of on-call in six, office hours."))
    # a qualifier alone names no concept: "100%" is not a deal-breaker of its own
    assert named_concepts(fold("100%")) == ()
    # alternatives are read one by one
    assert breaks("crypto or gambling", fold("We build a sports betting platform."))


def test_a_deal_breaker_naming_no_concept_is_found_in_its_own_words() -> None:
    assert breaks("open-plan office", fold("A bright open plan office in Mitte."))
    assert not breaks("open-plan office", fold("No open-plan office: everyone has a room."))


@pytest.mark.timeout(120)
def test_the_offline_analyser_meets_the_goals_on_the_shipped_set() -> None:
    labelled = parse_labelled(bundled_set_text(), "shipped", Profile())
    report = asyncio.run(evaluate(labelled, LlmSettings(), NOTIFY_MIN_SCORE))
    assert report.failed == 0
    assert report.breaks_among_pings == GOAL_BREAKS
    assert report.ping_precision is not None
    assert report.ping_precision >= GOAL_PRECISION
    assert report.ping_recall is not None
    assert report.ping_recall >= GOAL_RECALL


def test_a_deal_breaker_s_concept_is_looked_for_not_its_bare_words() -> None:
    relocation = Profile(wanted_titles=["data engineer"], deal_breakers=["relocation"])
    offered = posting(description="We offer relocation support and a visa.")
    required = posting(description="Candidates must relocate to Rotterdam within three months.")
    assert deal_breaker_breaks(relocation, offered, []) == []
    assert deal_breaker_breaks(relocation, required, []) == ["deal-breaker: relocation"]


@pytest.mark.parametrize(
    "description",
    ["Security clearance is not required for this role.", "Eine Sicherheitsüberprüfung ist nicht erforderlich.",
     "Habilitation secret défense non requise."],
    ids=["en", "de", "fr"],
)  # fmt: skip
def test_a_deal_breaker_said_not_to_apply_after_it_is_named_is_no_break(description: str) -> None:
    assert found(description) == []
