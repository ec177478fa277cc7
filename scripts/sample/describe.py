"""A draft's description, as the sites show them: short, localized, or long markdown with sections."""

# the descriptions deliberately carry real-world unicode punctuation (en dashes, full-width cjk)
# ruff: noqa: RUF001

from __future__ import annotations

import random

from scripts.sample.drafts import Draft
from scripts.sample.tables import (
    BENEFITS_DE,
    BENEFITS_EMOJI,
    BENEFITS_EN,
    BENEFITS_FR,
    BENEFITS_PT,
    BENEFITS_US,
    DAY_TEXT,
    DUTIES_DE,
    DUTIES_FR,
    DUTIES_JA,
    DUTIES_PT,
    EEO_TEXT,
    EXTRA_SECTIONS,
    FAMILIES,
    IRRELEVANT,
    NEEDS_DE,
    NEEDS_FR,
    NEEDS_JA,
    NEEDS_PT,
    PER,
    PER_DE,
    PER_FR,
    POLICY_DE,
    POLICY_EN,
    POLICY_FR,
    POLICY_JA,
    POLICY_PT,
    PRIVACY_TEXT,
    PROCESS_STEPS,
    STACK_NOTES,
    SUCCESS_TEXT,
    TEAM_TEXT,
    WHY_TEXT,
    YEARS,
    YEARS_TEXT,
    Place,
)


def region_name(place: Place) -> str:
    if place.code == "us":
        return "the US"
    if place.code in ("uk", "ca"):
        return "the UK" if place.code == "uk" else "Canada"
    if place.code in ("de", "at", "fr", "nl", "ie", "es", "pt", "pl"):
        return "the EU"
    return place.country or "your country"


def money(amount: float, currency: str, lang: str, interval: str) -> str:
    cents = interval == "hourly" and amount != int(amount)
    if currency == "INR":
        digits = str(int(amount))
        head, tail = digits[:-3], digits[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        return "₹" + ",".join([*groups, tail]) if groups else "₹" + tail
    text = f"{amount:,.2f}" if cents else f"{amount:,.0f}"
    if currency == "EUR" and lang == "de":
        return text.replace(",", "X").replace(".", ",").replace("X", ".") + " €"
    if currency == "EUR" and lang == "fr":
        return text.replace(",", "\u202f").replace(".", ",") + " €"
    symbol = {"USD": "$", "CAD": "CA$", "GBP": "£", "EUR": "€"}[currency]
    return symbol + text


def salary_line(draft: Draft, rng: random.Random) -> str:
    if draft.interval is None or draft.currency is None:
        return ""
    interval, currency, lang = draft.interval, draft.currency, draft.lang
    low = None if draft.min_amount is None else money(draft.min_amount, currency, lang, interval)
    high = None if draft.max_amount is None else money(draft.max_amount, currency, lang, interval)
    if lang == "de":
        label, per = "**Gehalt:**", "brutto " + PER_DE[interval]
        lead, upto = "ab", "bis zu"
    elif lang == "fr":
        label, per = "**Rémunération :**", "brut " + PER_FR[interval]
        lead, upto = "à partir de", "jusqu'à"
    else:
        label = "**CTC:**" if currency == "INR" else rng.choice(("**Salary:**", "**Pay:**", "**Compensation:**"))
        per = "per annum" if currency == "INR" and interval == "yearly" else PER[interval]
        lead, upto = "from", "up to"
    if low and high:
        amount = f"{low} – {high}"
    elif low:
        amount = f"{lead} {low}"
    else:
        amount = f"{upto} {high}"
    extra = ""
    if interval == "daily" and currency == "GBP":
        extra = " (outside IR35)"
    elif interval == "yearly" and lang == "en" and rng.random() < 0.3:
        extra = ", plus bonus and equity"
    return f"{label} {amount} {per}{extra}"


def bullets(items: list[str]) -> str:
    return "\n".join(f"* {item}" for item in items)


def skills_phrase(skills: list[str], lang: str) -> str:
    joiner = {"de": " und ", "fr": " et ", "pt": " e ", "ja": "・"}.get(lang, " and ")
    head = ", ".join(f"**{s}**" for s in skills[:-1])
    return f"{head}{joiner}**{skills[-1]}**" if head else f"**{skills[-1]}**"


def policy_line(rng: random.Random, draft: Draft) -> str:
    if draft.policy == "unspecified":
        return ""
    city = draft.office.city or draft.office.country
    region = region_name(draft.office)
    table = {"de": POLICY_DE, "fr": POLICY_FR, "pt": POLICY_PT, "ja": POLICY_JA}
    if draft.lang in table:
        return table[draft.lang][draft.policy].format(city=city, region=region)
    if draft.policy == "remote" and draft.office.code == "de" and rng.random() < 0.4:
        return "Remote-friendly within Germany; our Berlin office is optional."
    return rng.choice(POLICY_EN[draft.policy]).format(city=city, region=region)


def employer(draft: Draft) -> str:
    return draft.company.name if draft.company else "Our client"


def about_text(rng: random.Random, draft: Draft) -> str:
    if draft.company is None:
        return rng.choice(
            (
                "Our client, a fast-growing {ind} company, is expanding its engineering "
                "team. We are recruiting on their behalf.",
                "We are partnering with a well-funded {ind} business that is building "
                "out its team. Details on the company are shared after the first "
                "call.",
            )
        ).format(ind=rng.choice(("fintech", "logistics", "health-tech", "SaaS")))
    text = draft.company.blurb
    if draft.lang == "en" and rng.random() < 0.5:
        text += rng.choice(
            (
                " Founded in {y}, we are now {n} people across {o} offices.",
                " We have been growing every year since {y} and are backed by long-term investors.",
            )
        ).format(y=rng.randint(1998, 2021), n=rng.randint(40, 900), o=len(draft.company.offices) + 1)
    return text


def short_description(rng: random.Random, draft: Draft) -> str:
    fam = FAMILIES[draft.family]
    who = employer(draft)
    parts = [f"{who} is hiring a {draft.title}."]
    parts.append(rng.choice(fam.duties).replace("**", "") + ".")
    if draft.seniority != "intern":
        parts.append(
            f"You need {YEARS_TEXT[draft.seniority].lower()} of "
            f"experience with {skills_phrase(draft.skills[:3], 'en')}."
        )
    line = policy_line(rng, draft)
    if line:
        parts.append(line)
    if draft.salary_source == "description":
        parts.append(salary_line(draft, rng) + ".")
    if draft.emails:
        parts.append(f"Send your CV to {draft.emails[0]}.")
    else:
        parts.append("Apply through our careers page.")
    return " ".join(parts)


def localized_description(rng: random.Random, draft: Draft) -> str:
    lang = draft.lang
    years = YEARS[draft.seniority] or 1
    skills = skills_phrase(draft.skills[:3], lang)
    sections: list[str] = []
    if lang == "de":
        sections.append("## Über uns\n\n" + about_text(rng, draft))
        sections.append("## Deine Aufgaben\n\n" + bullets(rng.sample(DUTIES_DE, 4)))
        needs = [n.format(years=years, skills=skills) for n in NEEDS_DE]
        sections.append("## Dein Profil\n\n" + bullets(needs[: rng.randint(3, 5)]))
        sections.append("## Was wir bieten\n\n" + bullets(rng.sample(BENEFITS_DE, 4)))
    elif lang == "fr":
        sections.append("## Qui sommes-nous ?\n\n" + about_text(rng, draft))
        sections.append("## Vos missions\n\n" + bullets(rng.sample(DUTIES_FR, 4)))
        needs = [n.format(years=years, skills=skills) for n in NEEDS_FR]
        sections.append("## Votre profil\n\n" + bullets(needs[: rng.randint(3, 5)]))
        sections.append("## Ce que nous offrons\n\n" + bullets(rng.sample(BENEFITS_FR, 4)))
    elif lang == "pt":
        sections.append("## Sobre nós\n\n" + about_text(rng, draft))
        sections.append("## O que você vai fazer\n\n" + bullets(rng.sample(DUTIES_PT, 3)))
        needs = [n.format(years=years, skills=skills) for n in NEEDS_PT]
        sections.append("## Requisitos\n\n" + bullets(needs))
        sections.append("## Benefícios\n\n" + bullets(rng.sample(BENEFITS_PT, 4)))
    else:
        sections.append(
            "## 会社概要\n\n"
            + about_text(rng, draft)
            + "\n\n東京・渋谷のオフィスで、少数精鋭のチームが開発しています。"
        )
        sections.append("## 業務内容\n\n" + bullets(rng.sample(DUTIES_JA, 3)))
        needs = [n.format(years=years, skills=skills) for n in NEEDS_JA]
        sections.append("## 応募資格\n\n" + bullets(needs))
        sections.append(
            "## English summary\n\n"
            f"We are hiring a {draft.title.split(' / ')[-1]} to join our Tokyo "
            "(東京) team. English or Japanese is fine for interviews. "
            "Visa sponsorship and relocation support are available. ✈️"
        )
    line = policy_line(rng, draft)
    if line:
        sections.insert(2, line)
    if draft.salary_source == "description":
        sections.append(salary_line(draft, rng))
    if draft.emails:
        contact = {
            "de": "Fragen? Schreib uns an",
            "fr": "Des questions ? Écrivez à",
            "pt": "Dúvidas? Escreva para",
            "ja": "お問い合わせ:",
        }[lang]
        sections.append(f"{contact} {draft.emails[0]}")
    return "\n\n".join(sections)


def indeed_footer(rng: random.Random, draft: Draft) -> str:
    names = {
        "fulltime": "Full-time",
        "parttime": "Part-time",
        "contract": "Contract",
        "temporary": "Temporary",
        "internship": "Internship",
    }
    lines = ["Job Type: " + ", ".join(names[t] for t in draft.job_types)]
    if draft.interval and draft.currency and draft.min_amount and draft.max_amount:
        lines.append(
            f"Pay: {money(draft.min_amount, draft.currency, 'en', 'hourly')} - "
            f"{money(draft.max_amount, draft.currency, 'en', 'hourly')} "
            f"{PER[draft.interval]}"
        )
    perks = rng.sample(
        ("401(k)", "Dental insurance", "Health insurance", "Paid time off", "Vision insurance", "Employee discount"), 4
    )
    lines.append("Benefits:\n" + bullets(sorted(perks)))
    lines.append("Schedule:\n" + bullets(rng.sample(("Monday to Friday", "8 hour shift", "Day shift", "On call"), 2)))
    where = {
        "remote": "Remote",
        "hybrid": f"Hybrid remote in {draft.office.display}",
        "onsite": "In person",
        "unspecified": "In person",
    }[draft.policy]
    lines.append(f"Work Location: {where}")
    return "\n\n".join(lines)


def full_description(rng: random.Random, draft: Draft) -> str:
    fam = FAMILIES[draft.family]
    who = employer(draft)
    tier = draft.tier
    big = tier in ("long", "huge")
    heading = rng.choice(("## About us", "## Who we are", f"## About {who}", "**About the company**"))
    sections = [f"{heading}\n\n{about_text(rng, draft)}"]
    role = rng.choice(
        (
            "We are looking for a **{t}** to help us {goal}.",
            "As a **{t}** at {c}, you will help us {goal}.",
            "{c} is hiring a **{t}**. You will {goal}.",
        )
    ).format(
        t=draft.title,
        c=who,
        goal=rng.choice(
            (
                "scale our data platform as the business grows",
                "build reliable systems our customers depend on",
                "turn messy operational data into decisions",
                "ship product improvements faster and more safely",
            )
        ),
    )
    sections.append(rng.choice(("## The role", "## About the role", "## What you'll do")) + "\n\n" + role)
    n_duties = {"medium": (4, 7), "long": (7, 10), "huge": (9, 13)}[tier]
    duties = rng.sample(fam.duties, min(len(fam.duties), rng.randint(*n_duties)))
    sections.append("## Responsibilities\n\n" + bullets(duties))
    needs = [n.format(years=YEARS_TEXT[draft.seniority]) for n in fam.needs]
    count = min(len(needs), rng.randint(3, 6) if not big else len(needs))
    sections.append(
        rng.choice(("## Requirements", "## What we're looking for", "## About you")) + "\n\n" + bullets(needs[:count])
    )
    if big or rng.random() < 0.5:
        sections.append(
            "## Nice to have\n\n" + bullets(rng.sample(fam.extras, min(len(fam.extras), rng.randint(1, 3))))
        )
    line = policy_line(rng, draft)
    if line:
        sections.append("## Where you'll work\n\n" + line if big else line)
    if big and fam.key not in IRRELEVANT:
        sections.append("## Our tech stack\n\n" + bullets(rng.sample(STACK_NOTES, rng.randint(3, len(STACK_NOTES)))))
        sections.append("## The team\n\n" + rng.choice(TEAM_TEXT).format(n=rng.randint(4, 14)))
    if tier == "huge":
        sections.append("## A day in the life\n\n" + " ".join(DAY_TEXT))
        sections.append("## What success looks like\n\n" + SUCCESS_TEXT)
        sections.append("## Why join us\n\n" + " ".join(WHY_TEXT))
    if big or rng.random() < 0.6:
        pool = BENEFITS_EMOJI if rng.random() < 0.3 else BENEFITS_EN
        perks = rng.sample(pool, rng.randint(3, 6) if not big else len(pool) - 1)
        if draft.office.code == "us" and rng.random() < 0.7:
            perks += rng.sample(BENEFITS_US, 2)
        sections.append(rng.choice(("## Benefits", "## What we offer", "## Perks")) + "\n\n" + bullets(perks))
    if draft.salary_source == "description":
        sections.append(salary_line(draft, rng))
    if big:
        sections.append(
            "## Our hiring process\n\n" + "\n".join(f"{i}. {step}" for i, step in enumerate(PROCESS_STEPS, start=1))
        )
    if draft.emails:
        sections.append("Questions about the role? Email " + " or ".join(draft.emails) + ".")
    if draft.office.code == "us" and (big or rng.random() < 0.35):
        sections.append(EEO_TEXT.format(company=who))
    if tier == "huge":
        sections.append("## Privacy notice\n\n" + PRIVACY_TEXT)
        pad(rng, sections, rng.randint(6800, 8000))
    if draft.office.code == "us" and draft.family in (*IRRELEVANT, "intern") and rng.random() < 0.6:
        sections.append(indeed_footer(rng, draft))
    return "\n\n".join(sections)


def pad(rng: random.Random, sections: list[str], target: int) -> None:
    extras = list(EXTRA_SECTIONS)
    rng.shuffle(extras)
    for extra in extras:
        size = sum(len(part) + 2 for part in sections)
        if size + len(extra) + 2 <= target:
            sections.insert(len(sections) - 1, extra)


def describe(rng: random.Random, draft: Draft) -> str | None:
    if draft.tier == "null":
        return None
    if draft.tier == "empty":
        return ""
    if draft.tier == "short":
        return short_description(rng, draft)
    if draft.lang != "en":
        return localized_description(rng, draft)
    return full_description(rng, draft)
