"""A draft of one posting: the job behind it (family, level, company, office, pay), before any site shows it."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from scripts.sample.tables import (
    BASE_YEARLY,
    COMPANIES,
    CURRENCY,
    FAMILIES,
    FR_TITLES,
    JA_TITLES,
    PLACES,
    PREFIX,
    PT_TITLES,
    REMOTE_PLACE,
    SENIORITY_FACTOR,
    SITE_REGIONS,
    Company,
    Family,
    Place,
)


@dataclass
class Draft:
    company: Company | None
    office: Place
    location: Place | None
    family: str
    seniority: str
    lang: str
    policy: str
    title: str
    job_types: list[str]
    interval: str | None
    min_amount: float | None
    max_amount: float | None
    currency: str | None
    salary_source: str | None
    skills: list[str]
    direct_url: str | None
    emails: list[str]
    days_ago: int | None
    tier: str


def pick(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(names, weights=weights)[0]


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in plain.lower()).split()
    return "-".join(words)


def round_to(value: float, step: float) -> float:
    return float(round(value / step) * step)


def choose_policy(rng: random.Random, family: str, company: Company | None) -> str:
    if company is not None and company.remote_only:
        return "remote"
    if family in ("warehouse", "nurse"):
        return "onsite" if rng.random() < 0.95 else "unspecified"
    if family == "intern":
        return pick(rng, (("hybrid", 0.5), ("onsite", 0.4), ("remote", 0.1)))
    if family == "sales":
        return pick(rng, (("hybrid", 0.4), ("onsite", 0.3), ("remote", 0.3)))
    return pick(
        rng,
        (("remote", 0.3), ("hybrid", 0.4), ("onsite", 0.2), ("unspecified", 0.1)),
    )


def choose_lang(rng: random.Random, place: Place) -> str:
    if place.code in ("de", "at") and rng.random() < 0.35:
        return "de"
    if place.code == "fr" and rng.random() < 0.55:
        return "fr"
    if place.code == "br" and rng.random() < 0.6:
        return "pt"
    if place.code == "jp":
        return "ja"
    return "en"


def make_title(rng: random.Random, fam: Family, seniority: str, lang: str, place: Place) -> str:
    if fam.by_level:
        return rng.choice(fam.by_level[seniority])
    if lang == "fr" and fam.key in FR_TITLES:
        base = FR_TITLES[fam.key]
        if seniority == "senior":
            base += " Senior"
        elif seniority == "junior":
            base += " Junior"
        elif seniority == "staff":
            base = "Lead " + base
        return base + " (H/F)"
    if lang == "pt" and fam.key in PT_TITLES:
        suffix = {"junior": " Júnior", "senior": " Sênior", "staff": " Especialista"}
        return PT_TITLES[fam.key] + suffix.get(seniority, " Pleno")
    if lang == "ja" and fam.key in JA_TITLES and rng.random() < 0.6:
        return JA_TITLES[fam.key]
    base = rng.choice(fam.titles)
    if fam.key in ("manager", "intern"):
        title = base
        if place.code in ("de", "at") and fam.key == "intern" and rng.random() < 0.6:
            title = "Werkstudent Data Engineering"
    else:
        title = rng.choice(PREFIX[seniority]) + base
        if seniority == "mid" and rng.random() < 0.15:
            title = base + " II"
    if place.code in ("de", "at") and rng.random() < 0.7:
        title += " (m/w/d)"
    return title


def choose_job_types(rng: random.Random, family: str, company: Company | None) -> list[str]:
    if family == "intern":
        return rng.choice([["internship"], ["internship"], ["internship", "parttime"], ["internship", "temporary"]])
    if family == "nurse":
        return rng.choice([["fulltime"], ["parttime"], ["contract"], ["fulltime", "contract"]])
    if family == "warehouse":
        return rng.choice([["fulltime"], ["parttime"], ["fulltime", "temporary"], ["temporary"]])
    staffing = company is not None and company.industry == "Staffing and Recruiting"
    if rng.random() < (0.7 if staffing else 0.1):
        return rng.choice([["contract"], ["contract"], ["fulltime", "contract"], ["contract", "temporary"]])
    if rng.random() < 0.04:
        return ["parttime"]
    return ["fulltime"]


def choose_interval(rng: random.Random, family: str, place: Place, job_types: list[str]) -> str:
    contract = "contract" in job_types or "temporary" in job_types
    north_america = place.code in ("us", "ca")
    options: tuple[tuple[str, float], ...]
    if family == "intern":
        options = (("hourly" if north_america else "monthly", 1.0),)
    elif family == "nurse":
        options = (("weekly" if "contract" in job_types else "hourly", 1.0),)
    elif family == "warehouse":
        options = (("weekly", 0.12), ("hourly", 0.88))
    elif contract and north_america:
        options = (("hourly", 0.7), ("weekly", 0.2), ("yearly", 0.1))
    elif place.code == "in":
        options = (("monthly", 1.0),) if contract else (("monthly", 0.3), ("yearly", 0.7))
    elif contract:
        options = (("daily", 0.75), ("monthly", 0.15), ("yearly", 0.1))
    elif CURRENCY.get(place.code) == "EUR":
        options = (("monthly", 0.12), ("yearly", 0.88))
    else:
        options = (("yearly", 1.0),)
    return pick(rng, options)


def choose_salary(
    rng: random.Random,
    site: str,
    fam: Family,
    *,
    seniority: str,
    place: Place,
    job_types: list[str],
) -> tuple[str | None, float | None, float | None, str | None, str | None]:
    currency = CURRENCY.get(place.code)
    chance = {"indeed": 0.68, "linkedin": 0.42, "glassdoor": 0.6, "zip_recruiter": 0.88, "google": 0.3}[site]
    if currency is None or rng.random() > chance:
        return None, None, None, None, None
    contract = "contract" in job_types or "temporary" in job_types
    interval = choose_interval(rng, fam.key, place, job_types)
    yearly = BASE_YEARLY[currency] * fam.factor * SENIORITY_FACTOR[seniority]
    premium = 1.3 if contract else 1.0
    divisor = {"yearly": 1.0, "monthly": 12.0, "weekly": 52.0, "daily": 220.0, "hourly": 2080.0}[interval]
    base = yearly * (premium if interval != "yearly" else 1.0) / divisor
    step = {"yearly": 1000.0, "monthly": 50.0, "weekly": 25.0, "daily": 25.0, "hourly": 0.5}[interval]
    if currency == "INR":
        step *= 10 if interval == "yearly" else 20
    low = round_to(base * rng.uniform(0.85, 1.0), step)
    high = round_to(base * rng.uniform(1.12, 1.4), step)
    if high <= low:
        high = low + step
    shape = pick(rng, (("both", 0.82), ("min", 0.09), ("max", 0.09)))
    min_amount = None if shape == "max" else low
    max_amount = None if shape == "min" else high
    source = "description" if rng.random() < 0.25 else "direct_data"
    return interval, min_amount, max_amount, currency, source


def choose_company(rng: random.Random, family: str, site: str) -> Company:
    regions = SITE_REGIONS[site]
    options = [
        c
        for c in COMPANIES
        if family in c.families and (regions is None or any(PLACES[o].code in regions for o in c.offices))
    ]
    return rng.choice(options)


def make_draft(rng: random.Random, site: str) -> Draft:
    family = rng.choices(list(FAMILIES), weights=[f.weight for f in FAMILIES.values()])[0]
    fam = FAMILIES[family]
    seniority = pick(rng, fam.seniority)
    company = choose_company(rng, family, site)
    regions = SITE_REGIONS[site]
    offices = [o for o in company.offices if regions is None or PLACES[o].code in regions]
    office = PLACES[rng.choice(offices)]
    policy = choose_policy(rng, family, company)
    lang = choose_lang(rng, office)
    title = make_title(rng, fam, seniority, lang, office)
    job_types = choose_job_types(rng, family, company)
    interval, low, high, currency, source = choose_salary(
        rng, site, fam, seniority=seniority, place=office, job_types=job_types
    )
    location: Place | None = office
    if policy == "remote":
        location = pick_remote_location(rng, office)
    if rng.random() < 0.04:
        location = None
    shown: Company | None = company
    if rng.random() < 0.035:
        shown = None
    skill_pool = list(fam.skills)
    skills = rng.sample(skill_pool, min(len(skill_pool), rng.randint(3, 7)))
    direct: str | None = None
    if shown is not None and rng.random() < 0.85:
        number = rng.randint(1000, 99999)
        slug = ascii_slug(title)[:60]
        direct = rng.choice(
            (
                f"https://{company.domain}/careers/{number}",
                f"https://careers.{company.domain}/jobs/{number}-{slug}",
                f"https://jobs.{company.domain}/o/{slug}-{number}",
                f"https://www.{company.domain}/en/jobs/{slug}?ref={number}",
            )
        )
    emails: list[str] = []
    if shown is not None and rng.random() < 0.22:
        emails.append(rng.choice(("careers", "jobs", "talent", "recruiting", "hr")) + "@" + company.domain)
        if rng.random() < 0.2:
            person = rng.choice(("anna.keller", "j.okafor", "marta.nowak", "priya.raman", "tom.hughes", "lea.dubois"))
            emails.append(f"{person}@{company.domain}")
    days_ago = None if rng.random() < 0.07 else rng.randint(1, 30)
    tier = pick(
        rng, (("null", 0.035), ("empty", 0.02), ("short", 0.14), ("medium", 0.53), ("long", 0.22), ("huge", 0.055))
    )
    return Draft(
        shown,
        office,
        location,
        family,
        seniority,
        lang,
        policy,
        title,
        job_types,
        interval,
        low,
        high,
        currency,
        source,
        skills,
        direct,
        emails,
        days_ago,
        tier,
    )


def pick_remote_location(rng: random.Random, office: Place) -> Place:
    roll = rng.random()
    if roll < 0.35:
        return REMOTE_PLACE
    if roll < 0.6:
        return Place(None, None, office.country, office.code)
    return office
