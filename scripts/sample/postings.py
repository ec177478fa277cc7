"""Postings as the sites list them: drafts given ids, urls and each site's own fields, then cross-posted."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta

from scripts.sample.describe import describe
from scripts.sample.drafts import Draft, ascii_slug, make_draft
from scripts.sample.tables import (
    COMPANIES,
    EXPERIENCE_RANGE,
    FAMILIES,
    GLASSDOOR_HOST,
    INDEED_HOST,
    INJECTIONS,
    IRRELEVANT,
    JOB_LEVEL,
    SITE_REGIONS,
)

TODAY = date(2026, 11, 27)
SITES = ("indeed", "linkedin", "glassdoor", "zip_recruiter", "google")
BASE_COUNTS = {
    "indeed": 88,
    "linkedin": 82,
    "glassdoor": 64,
    "zip_recruiter": 58,
    "google": 6,
}
CROSS_POSTS = 32
INJECTED = 5


# field for field jobspy's JobPost, in the shapes its model_validate takes
@dataclass
class Posting:
    id: str | None
    site: str
    job_url: str
    job_url_direct: str | None = None
    title: str = ""
    company: str | None = None
    location: dict[str, str] | None = None
    date_posted: str | None = None
    job_type: list[str] | None = None
    salary_source: str | None = None
    interval: str | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    currency: str | None = None
    is_remote: bool | None = None
    job_level: str | None = None
    job_function: str | None = None
    listing_type: str | None = None
    emails: list[str] | None = None
    description: str | None = None
    company_industry: str | None = None
    company_url: str | None = None
    company_logo: str | None = None
    company_url_direct: str | None = None
    company_addresses: str | None = None
    company_num_employees: str | None = None
    company_revenue: str | None = None
    company_description: str | None = None
    skills: list[str] | None = None
    experience_range: str | None = None
    company_rating: float | None = None
    company_reviews_count: int | None = None
    vacancy_count: int | None = None
    work_from_home_type: str | None = None


COLUMNS = [f.name for f in fields(Posting)]


@dataclass
class CompanyTokens:
    glassdoor_id: int
    indeed_logo: str
    linkedin_logo: str


def hex_token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def alnum_token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def make_ids(rng: random.Random, site: str, draft: Draft, taken: set[str]) -> tuple[str, str]:
    while True:
        if site == "indeed":
            key = hex_token(rng, 16)
            host = INDEED_HOST.get(draft.office.code, draft.office.code)
            url = f"https://{host}.indeed.com/viewjob?jk={key}"
            ident = f"in-{key}"
        elif site == "linkedin":
            key = str(rng.randint(4_000_000_000, 4_099_999_999))
            url = f"https://www.linkedin.com/jobs/view/{key}"
            ident = f"li-{key}"
        elif site == "glassdoor":
            key = str(rng.randint(1_009_000_000_000, 1_009_999_999_999))
            host = GLASSDOOR_HOST.get(draft.office.code, "www.glassdoor.com")
            url = f"https://{host}/job-listing/j?jl={key}"
            ident = f"gd-{key}"
        elif site == "zip_recruiter":
            key = alnum_token(rng, 24)
            url = f"https://www.ziprecruiter.com/jobs//j?lvk={key}"
            ident = f"zr-{key}"
        else:
            key = alnum_token(rng, 22) + "=="
            query = "+".join(ascii_slug(draft.title).split("-")[:4]) or "jobs"
            url = f"https://www.google.com/search?q={query}&ibp=htl;jobs#htidocid={key}"
            ident = f"go-{key}"
        if ident not in taken and url not in taken:
            taken.add(ident)
            taken.add(url)
            return ident, url


def listed(values: list[str]) -> list[str] | None:
    # a copy, so postings never share a draft's list; jobspy leaves an empty list out anyway
    return list(values) or None


def build_posting(
    rng: random.Random,
    site: str,
    draft: Draft,
    *,
    description: str | None,
    taken: set[str],
    tokens: dict[str, CompanyTokens],
) -> Posting:
    ident, url = make_ids(rng, site, draft, taken)
    company = draft.company
    posting = Posting(id=ident if rng.random() > 0.018 else None, site=site, job_url=url, title=draft.title)
    posting.company = company.name if company else None
    posting.location = draft.location.jobspy_location if draft.location else None
    if draft.days_ago is not None:
        posting.date_posted = (TODAY - timedelta(days=draft.days_ago)).isoformat()
    posting.description = description
    has_pay = bool(draft.min_amount or draft.max_amount)
    posting.interval = draft.interval
    posting.min_amount = draft.min_amount
    posting.max_amount = draft.max_amount
    posting.currency = draft.currency
    posting.salary_source = (draft.salary_source or "direct_data") if has_pay else None
    if description and draft.emails:
        posting.emails = listed(draft.emails)
    add_work_fields(rng, posting, draft)
    if site == "linkedin":
        add_linkedin_fields(rng, posting, draft, tokens)
    elif site == "indeed":
        add_indeed_fields(rng, posting, draft, tokens)
    elif site == "glassdoor":
        add_glassdoor_fields(rng, posting, draft, tokens)
    elif site == "zip_recruiter":
        if rng.random() < 0.45:
            posting.listing_type = rng.choice(("organic", "sponsored", "sponsored"))
        if company and rng.random() < 0.3:
            posting.company_url_direct = f"https://www.{company.domain}"
    if site in ("glassdoor", "indeed"):
        add_profile_fields(rng, posting, draft)
    return posting


def add_work_fields(rng: random.Random, posting: Posting, draft: Draft) -> None:
    site = posting.site
    remote = {"remote": True, "hybrid": False, "onsite": False, "unspecified": None}[draft.policy]
    if draft.policy == "unspecified" and site != "google" and rng.random() < 0.6:
        remote = False
    if site == "google" and rng.random() < 0.5:
        remote = None
    posting.is_remote = remote
    wfh = {"remote": "Remote", "hybrid": "Hybrid"}.get(draft.policy)
    wfh_chance = {"indeed": 0.55, "linkedin": 0.45, "glassdoor": 0.5, "zip_recruiter": 0.2, "google": 0.0}[site]
    if wfh and rng.random() < wfh_chance:
        posting.work_from_home_type = wfh
    type_chance = {"indeed": 0.85, "linkedin": 0.55, "glassdoor": 0.6, "zip_recruiter": 0.9, "google": 0.5}[site]
    if rng.random() < type_chance:
        posting.job_type = listed(draft.job_types)
    direct_chance = {"indeed": 0.6, "linkedin": 0.45, "glassdoor": 0.3, "zip_recruiter": 0.5, "google": 0.9}[site]
    if draft.direct_url and rng.random() < direct_chance:
        posting.job_url_direct = draft.direct_url


def add_linkedin_fields(rng: random.Random, posting: Posting, draft: Draft, tokens: dict[str, CompanyTokens]) -> None:
    if rng.random() < 0.92:
        posting.job_level = rng.choice(JOB_LEVEL[draft.seniority])
    if rng.random() < 0.8:
        posting.job_function = FAMILIES[draft.family].function
    company = draft.company
    if company is None:
        return
    if rng.random() < 0.65:
        posting.company_industry = company.industry
    posting.company_url = f"https://www.linkedin.com/company/{company.slug}"
    if rng.random() < 0.8:
        posting.company_logo = tokens[company.name].linkedin_logo


def add_indeed_fields(rng: random.Random, posting: Posting, draft: Draft, tokens: dict[str, CompanyTokens]) -> None:
    company = draft.company
    if company is None:
        return
    posting.company_url = f"https://www.indeed.com/cmp/{title_slug(company.name)}"
    if rng.random() < 0.75:
        posting.company_industry = company.industry
        posting.company_url_direct = f"https://www.{company.domain}"
        posting.company_addresses = company.address
        posting.company_num_employees = company.size
        posting.company_revenue = company.revenue
        posting.company_description = company.blurb
    if rng.random() < 0.7:
        posting.company_logo = tokens[company.name].indeed_logo
    if rng.random() < 0.12:
        posting.vacancy_count = rng.randint(1, 25 if draft.family == "warehouse" else 4)


def add_glassdoor_fields(rng: random.Random, posting: Posting, draft: Draft, tokens: dict[str, CompanyTokens]) -> None:
    if rng.random() < 0.1:
        posting.vacancy_count = rng.randint(1, 5)
    company = draft.company
    if company is None:
        return
    employer_id = tokens[company.name].glassdoor_id
    name = title_slug(company.name)
    posting.company_url = (
        f"https://www.glassdoor.com/Overview/Working-at-{name}-EI_IE{employer_id}.11,{11 + len(name)}.htm"
    )
    if rng.random() < 0.6:
        posting.company_logo = (
            f"https://media.glassdoor.com/sqll/{employer_id}/{company.slug}-squarelogo-20{rng.randint(18, 25)}.png"
        )
    if company.rating is not None and rng.random() < 0.75:
        posting.company_rating = company.rating
        posting.company_reviews_count = company.reviews
    if rng.random() < 0.55:
        posting.listing_type = rng.choice(("organic", "organic", "sponsored"))
    if rng.random() < 0.35:
        posting.company_num_employees = company.size
        posting.company_revenue = company.revenue


def add_profile_fields(rng: random.Random, posting: Posting, draft: Draft) -> None:
    if rng.random() < 0.3:
        posting.skills = listed(draft.skills)
    if draft.seniority in EXPERIENCE_RANGE and draft.family not in IRRELEVANT and rng.random() < 0.25:
        posting.experience_range = rng.choice(EXPERIENCE_RANGE[draft.seniority])


def title_slug(name: str) -> str:
    return "-".join(word.capitalize() for word in ascii_slug(name).split("-"))


def cross_post(rng: random.Random, draft: Draft, site: str) -> Draft:
    copy = replace(draft)
    if draft.days_ago is not None:
        copy.days_ago = max(1, min(30, draft.days_ago + rng.randint(-3, 3)))
    if draft.salary_source != "description" and site in ("linkedin", "google") and rng.random() < 0.5:
        copy.interval = None
        copy.min_amount = None
        copy.max_amount = None
        copy.currency = None
        copy.salary_source = None
    return copy


def inject(rng: random.Random, text: str, note: str) -> str:
    parts = text.split("\n\n")
    if len(parts) < 2:
        return f"{text} {note}"
    # only at section boundaries, so a heading never loses its body
    where = rng.choice([i for i in range(1, len(parts) + 1) if i == len(parts) or parts[i].startswith("#")])
    return "\n\n".join([*parts[:where], note, *parts[where:]])


def generate(rng: random.Random) -> list[Posting]:
    tokens = {
        c.name: CompanyTokens(
            glassdoor_id=rng.randint(100_000, 9_999_999),
            indeed_logo=f"https://d2q79iu7y748jz.cloudfront.net/s/_squarelogo/256x256/{hex_token(rng, 32)}",
            linkedin_logo=f"https://media.licdn.com/dms/image/v2/"
            f"{alnum_token(rng, 14)}/company-logo_200_200/company-logo_200_200/0/"
            f"{rng.randint(1_600_000_000_000, 1_760_000_000_000)}/{c.slug}_logo",
        )
        for c in COMPANIES
    }
    drafts: list[tuple[str, Draft]] = []
    for site, count in BASE_COUNTS.items():
        drafts.extend((site, make_draft(rng, site)) for _ in range(count))
    descriptions = [describe(rng, draft) for _, draft in drafts]

    eligible = [i for i, (_, d) in enumerate(drafts) if d.company is not None and descriptions[i] and d.tier != "short"]
    sources = rng.sample(eligible, CROSS_POSTS)
    rest = [i for i in eligible if i not in sources]
    odd = [i for i in rest if drafts[i][1].family in IRRELEVANT]
    targets = rng.sample(odd, 1) + rng.sample([i for i in rest if drafts[i][1].family not in IRRELEVANT], INJECTED - 1)
    for note, i in zip(INJECTIONS, targets, strict=True):
        text = descriptions[i]
        if text:
            descriptions[i] = inject(rng, text, note)

    taken: set[str] = set()
    postings = [
        build_posting(rng, site, draft, description=descriptions[i], taken=taken, tokens=tokens)
        for i, (site, draft) in enumerate(drafts)
    ]
    weights = {"indeed": 3.0, "linkedin": 3.0, "glassdoor": 2.5, "zip_recruiter": 2.5, "google": 2.0}
    for i in sources:
        origin, draft = drafts[i]
        options = [
            s
            for s in SITES
            if s != origin and (SITE_REGIONS[s] is None or draft.office.code in (SITE_REGIONS[s] or ()))
        ]
        site = rng.choices(options, weights=[weights[s] for s in options])[0]
        copy = cross_post(rng, draft, site)
        postings.append(build_posting(rng, site, copy, description=descriptions[i], taken=taken, tokens=tokens))

    # same row order scrape_jobs returns, so consumers never rely on generation order
    by_site: dict[str, list[Posting]] = {}
    for p in postings:
        by_site.setdefault(p.site, []).append(p)
    result: list[Posting] = []
    for site in sorted(by_site):
        dated = [p for p in by_site[site] if p.date_posted is not None]
        undated = [p for p in by_site[site] if p.date_posted is None]
        dated.sort(key=lambda p: p.date_posted or "", reverse=True)
        result.extend(dated + undated)
    return result
