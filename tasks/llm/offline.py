"""The offline analyser: deterministic keyword rules against the user's profile, no network."""

from __future__ import annotations

import re
from functools import cache

from jobping.analysis import (
    MAX_RED_FLAG_CHARS,
    MAX_RED_FLAGS,
    MAX_SKILL_CHARS,
    MAX_SKILLS,
    MAX_SUMMARY_CHARS,
    MAX_YEARLY_SALARY,
    AnalysisResult,
    JobAnalysis,
    RemotePolicy,
    Seniority,
    Verdict,
)
from jobping.contract import JobPosting
from jobping.profile import Profile

OFFLINE_MODEL = "heuristic-v1"
ANNUAL_FACTOR = {"hourly": 2080, "daily": 260, "weekly": 52, "monthly": 12, "yearly": 1}
APPLY_SCORE = 70
MAYBE_SCORE = 45
DEAL_BREAKER_PENALTY = 30

# common skills recognised even when the profile does not list them
KNOWN_SKILLS = (
    "python", "sql", "go", "java", "scala", "rust", "typescript", "javascript", "react",
    "aws", "gcp", "azure", "kubernetes", "docker", "terraform", "airflow", "dbt", "spark",
    "kafka", "flink", "postgresql", "mysql", "snowflake", "bigquery", "redshift", "duckdb",
    "pandas", "polars", "pytorch", "tensorflow", "machine learning", "llm", "fastapi",
    "django", "graphql", "linux", "ci/cd", "prefect", "dagster", "tableau", "power bi",
    "excel", "node.js", "c++", "elasticsearch", "redis", "mongodb",
)  # fmt: skip

SENIORITY_WORDS: tuple[tuple[Seniority, tuple[str, ...]], ...] = (
    ("intern", ("intern", "internship", "praktikum", "stagiaire", "working student")),
    ("manager", ("manager", "head of", "director", "vp ")),
    ("staff", ("staff", "principal", "lead", "architect")),
    ("senior", ("senior", "sr.", "sr ")),
    ("junior", ("junior", "jr.", "jr ", "graduate", "entry level", "entry-level")),
    ("mid", ("mid-level", "mid level", "intermediate")),
)


@cache
def _word(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w+#])" + re.escape(term.lower()) + r"(?![\w+#])")


def _mentions(text: str, term: str) -> bool:
    return bool(_word(term).search(text))


def infer_seniority(posting: JobPosting) -> Seniority:
    for text in (posting.title.lower() + " ", (posting.job_level or "").lower() + " "):
        for level, words in SENIORITY_WORDS:
            if any(word in text for word in words):
                return level
    if "engineer" in posting.title.lower() or "developer" in posting.title.lower():
        return "mid"
    return "unknown"


def infer_remote_policy(posting: JobPosting) -> RemotePolicy:
    wfh = (posting.text("work_from_home_type") or "").lower()
    text = f"{posting.location or ''} {posting.description or ''}".lower()
    if "hybrid" in wfh or _mentions(text, "hybrid"):
        return "hybrid"
    if posting.is_remote or "remote" in wfh or _mentions(text, "fully remote") or _mentions(text, "remote-first"):
        return "remote"
    if _mentions(text, "on-site") or _mentions(text, "onsite") or _mentions(text, "in office"):
        return "onsite"
    if posting.is_remote is False:
        return "onsite"
    return "unknown"


def yearly_salary(posting: JobPosting, flags: list[str] | None = None) -> tuple[float | None, float | None]:
    """The posting's pay a year; an implausible figure (90,000 "hourly") is None, noted in ``flags``."""
    factor = ANNUAL_FACTOR.get(posting.interval or "yearly", 1)

    def yearly(amount: float | None) -> float | None:
        if amount is None:
            return None
        value = round(amount * factor, 2)
        if value <= MAX_YEARLY_SALARY:
            return value
        if flags is not None:
            flags.append(f"salary {amount:,.0f} {posting.interval or 'yearly'} is implausible as pay: ignored")
        return None

    return yearly(posting.min_amount), yearly(posting.max_amount)


def offline_prompt_version(profile: Profile) -> str:
    """What an offline analysis with this profile is versioned as."""
    return f"{OFFLINE_MODEL}+profile-{profile.fingerprint}"


class OfflineAnalyser:
    """Scores postings by title, skills, seniority, remote policy, salary and deal-breakers."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._vocabulary = tuple(
            dict.fromkeys(s.lower() for s in (*profile.skills, *profile.nice_to_have_skills, *KNOWN_SKILLS))
        )

    @property
    def model(self) -> str:
        return OFFLINE_MODEL

    @property
    def prompt_version(self) -> str:
        return offline_prompt_version(self.profile)

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        return AnalysisResult(analysis=self.judge(posting), model=self.model, prompt_version=self.prompt_version)

    def judge(self, posting: JobPosting) -> JobAnalysis:
        profile = self.profile
        title = posting.title.lower()
        text = " ".join(filter(None, (posting.title, posting.description, posting.skills, posting.job_level))).lower()
        skills = [skill for skill in self._vocabulary if _mentions(text, skill)][:MAX_SKILLS]
        wanted = [s.lower() for s in profile.skills]
        matched = [s for s in wanted if s in skills]
        seniority = infer_seniority(posting)
        remote = infer_remote_policy(posting)
        flags: list[str] = []
        low, high = yearly_salary(posting, flags)

        score = 0.0
        title_hit = any(_mentions(title, wanted_title) for wanted_title in profile.wanted_titles)
        title_words = {w for t in profile.wanted_titles for w in t.lower().split() if len(w) > 3}
        if title_hit:
            score += 35
        elif title_words & set(re.findall(r"\w+", title)):
            score += 15
        score += 35 * (len(matched) / len(wanted) if wanted else 0.5)
        score += 5 * min(len([s for s in profile.nice_to_have_skills if s.lower() in skills]), 2) / 2
        if not profile.seniority or seniority in profile.seniority:
            score += 10
        elif seniority != "unknown":
            flags.append(f"seniority {seniority} is not one you want")
        score += self._place_points(posting, remote, flags)
        score += self._salary_points(posting, high or low, flags)
        for breaker in profile.deal_breakers:
            if _mentions(text, breaker):
                flags.append(f"deal-breaker: {breaker}")
                score -= DEAL_BREAKER_PENALTY
        fit = max(0, min(100, round(score)))
        verdict: Verdict = "apply" if fit >= APPLY_SCORE else "maybe" if fit >= MAYBE_SCORE else "skip"
        if any(flag.startswith("deal-breaker") for flag in flags):
            verdict = "skip"
        summary = (
            f"{posting.title} at {posting.company or 'an unnamed company'}: "
            f"{len(matched)} of your {len(wanted)} skills"
            f"{' (' + ', '.join(matched[:5]) + ')' if matched else ''}, {remote}, {seniority}."
            + (" No description: judged on its title and fields." if posting.description_missing else "")
        )
        return JobAnalysis(
            fit_score=fit,
            verdict=verdict,
            seniority=seniority,
            remote_policy=remote,
            # a skill of the profile may be longer than an answer's skill may be
            skills=[skill[:MAX_SKILL_CHARS] for skill in skills],
            salary_min_yearly=low,
            salary_max_yearly=high,
            salary_currency=posting.currency if (low or high) else None,
            red_flags=[flag[:MAX_RED_FLAG_CHARS] for flag in flags[:MAX_RED_FLAGS]],
            summary=summary[:MAX_SUMMARY_CHARS],
        )

    def _place_points(self, posting: JobPosting, remote: RemotePolicy, flags: list[str]) -> float:
        profile = self.profile
        where = (posting.location or "").lower()
        near = any(place.lower() in where for place in profile.locations if place.lower() != "remote")
        if profile.remote == "remote_only" and remote != "remote":
            flags.append(f"not remote ({remote})")
            return 0
        if profile.remote == "remote_or_hybrid" and remote == "onsite" and not near:
            flags.append("on-site outside your locations")
            return 0
        return 10 if remote == "remote" or near else 5

    def _salary_points(self, posting: JobPosting, best: float | None, flags: list[str]) -> float:
        floor = self.profile.salary_floor_yearly
        if floor is None or best is None:
            return 5
        if posting.currency and posting.currency.upper() != self.profile.salary_currency.upper():
            return 5
        if best < floor:
            flags.append(f"salary {best:,.0f} below your floor {floor:,.0f}")
            return 0
        return 10
