"""What the sample is made of: places, companies, job families and the words of postings.

The tables are data files in scripts/sample_data/ (JSON keeps their order, which the seeded generator
depends on; not in a folder called data/, which git ignores); this module turns them into the typed
values the generator draws from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "sample_data"


def load(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Place:
    city: str | None
    state: str | None
    country: str
    code: str

    @property
    def display(self) -> str:
        return ", ".join(p for p in (self.city, self.state, self.country) if p)

    @property
    def jobspy_location(self) -> dict[str, str]:
        # jobspy Location input; every country here is a Country value once lowercased
        # ("usa", "germany"), which display_location() renders back as "USA" / "Germany"
        parts = {"city": self.city, "state": self.state, "country": self.country.lower()}
        return {key: value for key, value in parts.items() if value}


@dataclass(frozen=True)
class Company:
    name: str
    domain: str
    industry: str
    size: str
    revenue: str | None
    blurb: str
    address: str
    offices: tuple[str, ...]
    families: tuple[str, ...]
    rating: float | None
    reviews: int | None
    remote_only: bool = False

    @property
    def slug(self) -> str:
        return self.domain.split(".")[0]


@dataclass(frozen=True)
class Family:
    key: str
    weight: float
    factor: float
    function: str
    titles: tuple[str, ...]
    skills: tuple[str, ...]
    duties: tuple[str, ...]
    needs: tuple[str, ...]
    extras: tuple[str, ...]
    seniority: tuple[tuple[str, float], ...]
    by_level: dict[str, tuple[str, ...]] = field(default_factory=dict)


def company(raw: dict[str, Any]) -> Company:
    return Company(**raw | {"offices": tuple(raw["offices"]), "families": tuple(raw["families"])})


def family(key: str, raw: dict[str, Any]) -> Family:
    return Family(
        key=key,
        weight=raw["weight"],
        factor=raw["factor"],
        function=raw["function"],
        titles=tuple(raw["titles"]),
        skills=tuple(raw["skills"]),
        duties=tuple(raw["duties"]),
        needs=tuple(raw["needs"]),
        extras=tuple(raw["extras"]),
        # level -> weight, in the order the seeded draw sees them
        seniority=tuple(raw["seniority"].items()),
        by_level={level: tuple(titles) for level, titles in raw.get("by_level", {}).items()},
    )


_places = load("places")
PLACES: dict[str, Place] = {key: Place(**fields) for key, fields in _places["places"].items()}
REMOTE_PLACE = Place("Remote", None, "", "remote")
CURRENCY: dict[str, str] = _places["currency"]
INDEED_HOST: dict[str, str] = _places["indeed_host"]
GLASSDOOR_HOST: dict[str, str] = _places["glassdoor_host"]
# zip_recruiter only lists north american jobs, so sites restrict offices
SITE_REGIONS: dict[str, tuple[str, ...] | None] = {
    "indeed": None,
    "linkedin": None,
    "glassdoor": None,
    "zip_recruiter": ("us", "ca"),
    "google": None,
}

COMPANIES: tuple[Company, ...] = tuple(company(raw) for raw in load("companies"))
FAMILIES: dict[str, Family] = {key: family(key, raw) for key, raw in load("families").items()}
IRRELEVANT = ("sales", "nurse", "warehouse")

_levels = load("levels")
SENIORITY_FACTOR: dict[str, float] = _levels["salary_factor"]
YEARS: dict[str, int] = _levels["years"]
YEARS_TEXT: dict[str, str] = _levels["years_text"]
EXPERIENCE_RANGE: dict[str, list[str]] = _levels["experience_range"]
JOB_LEVEL: dict[str, list[str]] = _levels["job_level"]
PREFIX: dict[str, list[str]] = _levels["title_prefix"]
BASE_YEARLY: dict[str, int] = _levels["base_yearly_salary"]

_en, _de, _fr, _pt, _ja = (load(lang) for lang in ("en", "de", "fr", "pt", "ja"))
PER: dict[str, str] = _en["per"]
PER_DE: dict[str, str] = _de["per"]
PER_FR: dict[str, str] = _fr["per"]
FR_TITLES: dict[str, str] = _fr["titles"]
PT_TITLES: dict[str, str] = _pt["titles"]
JA_TITLES: dict[str, str] = _ja["titles"]
POLICY_EN: dict[str, list[str]] = _en["policy"]
POLICY_DE: dict[str, str] = _de["policy"]
POLICY_FR: dict[str, str] = _fr["policy"]
POLICY_PT: dict[str, str] = _pt["policy"]
POLICY_JA: dict[str, str] = _ja["policy"]
BENEFITS_EN: list[str] = _en["benefits"]
BENEFITS_EMOJI: list[str] = _en["benefits_emoji"]
BENEFITS_US: list[str] = _en["benefits_us"]
BENEFITS_DE: list[str] = _de["benefits"]
BENEFITS_FR: list[str] = _fr["benefits"]
BENEFITS_PT: list[str] = _pt["benefits"]
DUTIES_DE: list[str] = _de["duties"]
NEEDS_DE: list[str] = _de["needs"]
DUTIES_FR: list[str] = _fr["duties"]
NEEDS_FR: list[str] = _fr["needs"]
DUTIES_PT: list[str] = _pt["duties"]
NEEDS_PT: list[str] = _pt["needs"]
DUTIES_JA: list[str] = _ja["duties"]
NEEDS_JA: list[str] = _ja["needs"]
TEAM_TEXT: list[str] = _en["team"]
DAY_TEXT: list[str] = _en["day"]
SUCCESS_TEXT: str = _en["success"]
PROCESS_STEPS: list[str] = _en["process_steps"]
EEO_TEXT: str = _en["eeo"]
PRIVACY_TEXT: str = _en["privacy"]
WHY_TEXT: list[str] = _en["why"]
STACK_NOTES: list[str] = _en["stack_notes"]
EXTRA_SECTIONS: list[str] = _en["extra_sections"]
INJECTIONS: list[str] = load("injections")
