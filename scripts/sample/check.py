"""The sample's promises, checked before it is written: every site, every salary shape, unicode, injections."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import timedelta

from jobspy.model import JobPost

from scripts.sample.postings import COLUMNS, SITES, TODAY, Posting
from scripts.sample.tables import INJECTIONS, PER


def cross_posted_pairs(postings: list[Posting]) -> int:
    groups: dict[tuple[str, str, str], list[Posting]] = {}
    for p in postings:
        if p.company and p.description:
            groups.setdefault((p.company, p.title, p.description), []).append(p)
    pairs = 0
    for members in groups.values():
        sites = {p.site for p in members}
        n = len(members)
        if len(sites) > 1:
            pairs += n * (n - 1) // 2
    return pairs


def has_emoji(text: str) -> bool:
    return any(ord(ch) >= 0x1F300 or 0x2600 <= ord(ch) <= 0x27BF for ch in text)


def self_check(postings: list[Posting]) -> None:
    problems: list[str] = []
    sites = Counter(p.site for p in postings)
    intervals = Counter(p.interval for p in postings)
    texts = " ".join(p.description or "" for p in postings)
    titles = " | ".join(p.title for p in postings)
    # every record must be JobPost input; its serializer gives the scrape_jobs row, location as text
    rows = [JobPost.model_validate(asdict(p)).model_dump() for p in postings]
    everything = " ".join(f"{r['company']} {r['location']} {r['title']} {r['description']}" for r in rows)

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    need(len(postings) >= 320, f"only {len(postings)} postings")
    need(sum(1 for n in sites.values() if n >= 50) >= 4, f"site counts {sites}")
    need(set(SITES) <= set(sites), "not every site is present")
    need(all(intervals[i] for i in PER), f"interval counts {intervals}")
    need(any(p.min_amount is None and p.max_amount is None for p in postings), "every posting has a salary")
    need(any(p.min_amount is not None and p.max_amount is None for p in postings), "no min-only salary")
    need(any(p.min_amount is None and p.max_amount is not None for p in postings), "no max-only salary")
    need(
        all((p.salary_source is not None) == bool(p.min_amount or p.max_amount) for p in postings),
        "salary_source disagrees with amounts",
    )
    need(all(p.currency is not None for p in postings if p.interval), "salary without currency")
    need(any(p.is_remote is True for p in postings), "no remote postings")
    need(any(p.work_from_home_type == "Hybrid" for p in postings), "no hybrid")
    need(any(p.is_remote is False and "on-site" in (p.description or "") for p in postings), "no on-site postings")
    for name in ("company", "location", "date_posted", "id", "job_type", "job_url_direct", "interval"):
        need(any(getattr(p, name) is None for p in postings), f"{name} never null")
    need(any(p.description is None for p in postings), "description never null")
    need(any(p.description == "" for p in postings), "description never empty")
    need(all(p.job_url.startswith("https://") for p in postings), "bad job_url")
    for needle in (
        "Zürich, Switzerland",
        "São Paulo, Brazil",
        "Kraków, Poland",
        "Müller & Söhne GmbH",
        "Développeur",
        "東京",
    ):
        need(needle in everything, f"missing non-ASCII sample {needle!r}")
    need(has_emoji(texts), "no emoji in descriptions")
    pairs = cross_posted_pairs(postings)
    need(pairs >= 25, f"only {pairs} cross-posted pairs")
    ids = [(p.site, p.id) for p in postings if p.id is not None]
    need(len(ids) == len(set(ids)), "duplicate (site, id)")
    urls = [p.job_url for p in postings]
    need(len(urls) == len(set(urls)), "duplicate job_url")
    for needle in (
        "Senior Data Engineer",
        "Data Engineer",
        "Analytics Engineer",
        "Backend Engineer (Python)",
        "Backend Engineer (Go)",
        "Machine Learning Engineer",
        "Platform Engineer",
        "DevOps",
        "Data Analyst",
        "Frontend Engineer",
        "Engineering Manager",
        "Intern",
        "Nurse",
        "Warehouse",
        "Account Executive",
        "Junior ",
        "Staff ",
        "Lead ",
        "Principal ",
        "Head of",
    ):
        need(needle in titles, f"no title containing {needle!r}")
    injected = sum(1 for p in postings if p.description and any(n in p.description for n in INJECTIONS))
    need(3 <= injected <= 8, f"{injected} descriptions with injected instructions")
    lengths = [len(p.description) for p in postings if p.description]
    need(min(lengths) <= 400, f"shortest description is {min(lengths)} chars")
    need(6000 <= max(lengths) <= 8500, f"longest description is {max(lengths)} chars")
    low, high = (TODAY - timedelta(days=30)).isoformat(), TODAY.isoformat()
    need(
        all(low <= p.date_posted < high for p in postings if p.date_posted),
        "date_posted outside the 30 days before 2026-11-27",
    )
    need(all(p.interval is None or p.interval in PER for p in postings), "unknown interval")
    need(len(COLUMNS) == 34, f"{len(COLUMNS)} columns")
    if problems:
        raise SystemExit("sample self-check failed:\n- " + "\n- ".join(problems))
