"""The offline analyser: deterministic rules against the user's profile, no network.

It reads English, German and French postings (jobping/reading.py: titles, seniority, how the job is
worked), scores what fits, judges by the profile's limits (jobping/limits.py, the rules every
analyser is judged by) and says why in its summary: what fits, what is missing, which limit broke.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobping.analysis import (
    MAX_RED_FLAG_CHARS,
    MAX_RED_FLAGS,
    MAX_SKILL_CHARS,
    MAX_SKILLS,
    MAX_SUMMARY_CHARS,
    AnalysisResult,
    JobAnalysis,
    RemotePolicy,
    Verdict,
)
from jobping.contract import JobPosting
from jobping.limits import LIMITS_VERSION, broken_limits, judged_within, wanted_places
from jobping.names import fold, places_named
from jobping.pay import yearly_salary
from jobping.profile import Profile
from jobping.reading import folded_text, mentions, related_roles, remote_policy, title_seniority, title_words
from jobping.text import one_line

OFFLINE_MODEL = "heuristic-v3"
APPLY_SCORE = 70
MAYBE_SCORE = 45
# the points of each part of a fit; they add up to 100
TITLE_POINTS = 40
NEAR_TITLE_POINTS = 15
SKILL_POINTS = 30
NICE_POINTS = 5
SENIORITY_POINTS = 10
PLACE_POINTS = 10
SALARY_POINTS = 5
# of the 100 points a fit is judged by, a posting must give this many to be judged an apply
MIN_JUDGED_POINTS = 50
# a posting names a handful of requirements: this many of the profile's skills among them is a full match
SKILLS_FOR_FULL_MARKS = 4
# a title word this short, or one any role has, says nothing of which role it is
MIN_TITLE_WORD_CHARS = 4
ROLE_WORDS = frozenset({"engineer", "engineering", "senior", "junior", "lead", "manager", "staff", "principal"})
SHOWN_SKILLS = 5
PART_TIME = ("part-time", "part time", "teilzeit", "temps partiel", "mi-temps")

# common skills recognised even when the profile does not list them
KNOWN_SKILLS = (
    "python", "sql", "go", "golang", "java", "scala", "rust", "typescript", "javascript", "react",
    "aws", "gcp", "azure", "kubernetes", "docker", "terraform", "airflow", "dbt", "spark",
    "kafka", "flink", "postgresql", "mysql", "snowflake", "bigquery", "redshift", "duckdb",
    "pandas", "polars", "pytorch", "tensorflow", "machine learning", "llm", "fastapi",
    "django", "graphql", "linux", "ci/cd", "prefect", "dagster", "tableau", "power bi",
    "excel", "node.js", "c++", "elasticsearch", "redis", "mongodb",
)  # fmt: skip
# a skill's other spellings: a posting asking for golang asks for go
SKILL_SPELLINGS = {"go": ("golang",), "postgresql": ("postgres",), "kubernetes": ("k8s",)}


@dataclass
class Fit:
    """The parts of one posting's fit: points and the words that explain them."""

    points: float = 0
    fits: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # the posting leaves open whether it can be done from where the user wants to work: at most a "maybe"
    doubtful: bool = False
    # the title is not one wanted but a role next to one (jobping/lexicon/judging.json, related_roles): a "maybe"
    near: bool = False
    # the points of the parts the posting gives nothing to judge by (no description, level, place or pay)
    unjudged: float = 0

    def score(self) -> int:
        """The points out of those that could be judged, on 0-100: what a posting does not say counts for it as
        much as what it does, neither more nor less."""
        judged = 100 - self.unjudged
        fraction = self.points / judged if judged > 0 else 0
        # a posting that gives less than half of what a fit is judged by (a title and little else) is worth a
        # look at most: what it leaves out cannot vouch for it
        vouched = not self.doubtful and judged >= MIN_JUDGED_POINTS
        return max(0, min(100 if vouched else APPLY_SCORE - 1, round(100 * fraction)))


def offline_prompt_version(profile: Profile) -> str:
    """What an offline analysis with this profile is versioned as: its rules, the limits' and the profile."""
    return f"{OFFLINE_MODEL}+profile-{profile.fingerprint}+{LIMITS_VERSION}"


def _asks_for(text: str, skill: str) -> bool:
    return any(mentions(text, spelling) for spelling in (skill, *SKILL_SPELLINGS.get(skill, ())))


class OfflineAnalyser:
    """Scores postings by title, skills, seniority, remote policy and place, and salary; judged by the limits."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._vocabulary = tuple(
            dict.fromkeys(s.lower() for s in (*profile.skills, *profile.nice_to_have_skills, *KNOWN_SKILLS))
        )
        self._wanted_titles = [title_words(title) for title in profile.wanted_titles]
        self._related = {role for title in profile.wanted_titles for role in related_roles(title)}

    @property
    def model(self) -> str:
        return OFFLINE_MODEL

    @property
    def prompt_version(self) -> str:
        return offline_prompt_version(self.profile)

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        analysis, hard = self.judgement(posting)
        return AnalysisResult(
            analysis=analysis,
            model=self.model,
            prompt_version=self.prompt_version,
            limits_broken=hard,
            limits_checked=True,
        )

    def judge(self, posting: JobPosting) -> JobAnalysis:
        """The analysis of one posting, judged by the profile's limits."""
        return self.judgement(posting)[0]

    def judgement(self, posting: JobPosting) -> tuple[JobAnalysis, list[str]]:
        """The analysis of one posting, judged by the profile's limits, and the hard limits it breaks."""
        text = folded_text(posting)
        skills = [skill for skill in self._vocabulary if _asks_for(text, skill)][:MAX_SKILLS]
        seniority = title_seniority(posting)
        remote = remote_policy(posting)
        flags: list[str] = []
        low, high = yearly_salary(posting, flags)
        fit = Fit()
        self._title(posting, fit)
        if posting.description or posting.skills:
            self._skills(skills, fit)
        else:
            # with nothing to read, skills are neither there nor missing
            fit.unjudged += SKILL_POINTS + NICE_POINTS
        if seniority == "unknown" and self.profile.seniority:
            fit.unjudged += SENIORITY_POINTS
        elif not self.profile.seniority or seniority in self.profile.seniority:
            fit.points += SENIORITY_POINTS
        self._place(posting, remote, fit)
        if low is not None or high is not None:
            fit.points += SALARY_POINTS
        else:
            fit.unjudged += SALARY_POINTS
        score = fit.score()
        verdict: Verdict = "apply" if score >= APPLY_SCORE else "maybe" if score >= MAYBE_SCORE else "skip"
        if fit.near:
            # a role next to the one wanted is worth a look, never more: the fit's score says how good a look
            verdict = "maybe"
        draft = JobAnalysis(
            fit_score=score,
            verdict=verdict,
            seniority=seniority,
            remote_policy=remote,
            # a skill of the profile may be longer than an answer's skill may be
            skills=[skill[:MAX_SKILL_CHARS] for skill in skills],
            salary_min_yearly=low,
            salary_max_yearly=high,
            salary_currency=posting.currency if (low or high) else None,
            red_flags=[],
            summary="",
        )
        broken = broken_limits(self.profile, posting, draft)
        analysis, hard = judged_within(self.profile, draft, broken)
        reasons = [item.reason for item in broken]
        flags = [*reasons, *flags]
        summary = self._summary(posting, fit, remote, reasons, hard)
        return analysis.model_copy(
            update={
                "red_flags": [flag[:MAX_RED_FLAG_CHARS] for flag in flags[:MAX_RED_FLAGS]],
                "summary": summary[:MAX_SUMMARY_CHARS],
            }
        ), hard

    def _title(self, posting: JobPosting, fit: Fit) -> None:
        words = title_words(posting.title)
        if any(wanted and wanted <= words for wanted in self._wanted_titles):
            fit.points += TITLE_POINTS
            fit.fits.append("a title you want")
            return
        distinctive = {w for wanted in self._wanted_titles for w in wanted if len(w) >= MIN_TITLE_WORD_CHARS}
        if any(role <= words for role in self._related):
            fit.near = True
            fit.points += NEAR_TITLE_POINTS
            fit.fits.append("a role next to one you want")
        elif (distinctive - ROLE_WORDS) & words:
            fit.points += NEAR_TITLE_POINTS
            fit.fits.append("a title near one you want")
        else:
            fit.missing.append("not a title you want")

    def _skills(self, found: list[str], fit: Fit) -> None:
        wanted = list(dict.fromkeys(s.lower() for s in self.profile.skills))
        matched = [skill for skill in wanted if skill in found]
        if wanted:
            fit.points += SKILL_POINTS * min(1.0, len(matched) / min(len(wanted), SKILLS_FOR_FULL_MARKS))
        else:
            fit.points += SKILL_POINTS / 2
        nice = [s for s in self.profile.nice_to_have_skills if s.lower() in found]
        fit.points += NICE_POINTS * min(len(nice), 2) / 2
        if matched:
            fit.fits.append(f"{len(matched)} of your {len(wanted)} skills ({', '.join(matched[:SHOWN_SKILLS])})")
        elif wanted:
            fit.missing.append("none of your skills")

    def _place(self, posting: JobPosting, remote: RemotePolicy, fit: Fit) -> None:
        wanted = wanted_places(self.profile)
        named = places_named(posting.location)
        if remote == "remote" or (named and named & wanted):
            fit.points += PLACE_POINTS
        elif remote == "unknown" and named and wanted:
            # not a broken limit (the posting does not say), but nothing says it can be done from your places
            fit.doubtful = True
            fit.missing.append("no word on remote work, in a place not yours")
        elif not named:
            fit.unjudged += PLACE_POINTS
            fit.missing.append("no place given")

    def _summary(self, posting: JobPosting, fit: Fit, remote: RemotePolicy, reasons: list[str], hard: list[str]) -> str:
        where = one_line(posting.location or "", 40)
        how = {"onsite": "on-site", "unknown": "work mode not given"}.get(remote, remote)
        head = f"{one_line(posting.title, 80)}, {how}{' in ' + where if where else ''}"
        parts = [head + (": " + "; ".join(fit.fits) if fit.fits else "")]
        if fit.missing:
            parts.append("missing: " + ", ".join(fit.missing))
        if posting.min_amount is None and posting.max_amount is None:
            parts.append("no salary given")
        if posting.description_missing or not (posting.description or posting.skills):
            parts.append("no description: judged on its title and fields, skills not judged")
        if hard:
            parts.append("breaks your limits: " + "; ".join(hard))
        soft = [reason for reason in reasons if reason not in hard]
        if soft:
            parts.append("below what you asked: " + "; ".join(soft))
        if any(mentions(fold(posting.title), word) for word in PART_TIME) or "parttime" in (posting.job_type or ""):
            parts.append("part-time")
        return ". ".join(parts) + "."
