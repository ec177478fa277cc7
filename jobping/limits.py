"""The profile's limits as rules, checked after any analyser against the posting's own words and the analysis.

Four limits: the remote preference and places, the deal-breakers, the salary floor and the
seniority. A posting that breaks a hard one (all four are, unless the profile's ``soft_limits``
names them) is judged "skip", its score capped at BROKEN_SCORE_CAP, and its row names what it
broke (``limits_broken``): it is never pinged, whatever an analyser (or a posting talking to
it) said. A soft limit broken lowers the score by SOFT_LIMIT_PENALTY. Where the posting does not
say (no place, no pay, no seniority), no limit is broken.

The places rule, by the profile's ``remote``:
- ``remote_only``: on-site and hybrid jobs break it, wherever they are;
- ``remote_or_hybrid``: on-site jobs break it, and hybrid ones in a place not among ``locations``;
- ``any``: on-site and hybrid jobs in a place not among ``locations`` break it, when it lists places.
A remote job breaks none of them; a place is a city or a country ("germany" holds "Berlin, Germany").
"""

from __future__ import annotations

from dataclasses import dataclass

from jobping.analysis import MAX_RED_FLAG_CHARS, Analyser, AnalysisResult, JobAnalysis, RemotePolicy
from jobping.contract import JobPosting
from jobping.deal_breakers import breaks
from jobping.names import fold, places_named
from jobping.pay import yearly_salary
from jobping.profile import LimitName, Profile
from jobping.reading import remote_policy, title_seniority
from jobping.text import one_line

# the rules' version: part of every analyser's prompt version, so that postings judged under older
# rules are judged again
LIMITS_VERSION = "limits-v2"
# a posting that breaks a hard limit fits badly whatever else it offers: it ranks below every "maybe"
BROKEN_SCORE_CAP = 30
# what each soft limit broken takes off the score: a soft break still costs a posting the ping unless it
# fits well otherwise (a 95 falls below the default bar of 80, a 100 stays at it)
SOFT_LIMIT_PENALTY = 20
# characters of a posting's place shown in a reason
MAX_PLACE_CHARS = 60
POLICY_WORDS: dict[RemotePolicy, str] = {"onsite": "on-site", "hybrid": "hybrid", "remote": "remote", "unknown": ""}


@dataclass(frozen=True)
class Broken:
    """One limit a posting breaks, and why, in words for the user."""

    limit: LimitName
    reason: str


def limits_prompt_version(version: str) -> str:
    """An analyser's prompt version with the rules' version: the same whether given once or twice."""
    suffix = f"+{LIMITS_VERSION}"
    return version if version.endswith(suffix) else version + suffix


def wanted_places(profile: Profile) -> frozenset[str]:
    # "remote" in the places names no place: it says remote jobs are wanted, as the remote preference does
    return frozenset().union(*(places_named(place) for place in profile.locations))


def place_break(profile: Profile, posting: JobPosting, policy: RemotePolicy) -> str | None:
    """Why the job's way of working or its place is outside the profile's, or None."""
    if policy in ("remote", "unknown"):
        return None
    how = POLICY_WORDS[policy]
    where = one_line(posting.location or "", MAX_PLACE_CHARS)
    at = f" in {where}" if where else ""
    if profile.remote == "remote_only":
        return f"{how}{at}: you want remote only"
    if profile.remote == "remote_or_hybrid" and policy == "onsite":
        named = places_named(posting.location)
        outside = named and not named & wanted_places(profile)
        return f"{how}{at}, outside your places" if outside else f"{how}{at}: you want remote or hybrid"
    wanted = wanted_places(profile)
    named = places_named(posting.location)
    if not wanted or not named or named & wanted:
        return None
    return f"{how}{at}, outside your places"


def deal_breaker_breaks(profile: Profile, posting: JobPosting, red_flags: list[str]) -> list[str]:
    """The deal-breakers the posting (its employer's name too: "… Zeitarbeit GmbH") or the analysis's flags
    say, in any words or language (jobping/deal_breakers.py), not negated: "no on-call" is none."""
    parts = (posting.company, posting.title, posting.description, posting.skills, posting.job_level, *red_flags)
    text = fold("\n".join(part for part in parts if part))
    return [
        f"deal-breaker: {one_line(breaker, MAX_RED_FLAG_CHARS)}"
        for breaker in profile.deal_breakers
        if breaker.strip() and breaks(breaker, text)
    ]


def salary_break(profile: Profile, posting: JobPosting, analysis: JobAnalysis) -> str | None:
    """Why the best pay offered, a year, is below the profile's floor; None when either is not said or the
    currencies differ."""
    floor = profile.salary_floor_yearly
    if floor is None:
        return None
    low, high = yearly_salary(posting)
    currency = posting.currency
    if low is None and high is None:
        # the posting's fields say nothing: the pay the analyser read in its text, if any
        low, high, currency = analysis.salary_min_yearly, analysis.salary_max_yearly, analysis.salary_currency
    best = high if high is not None else low
    if best is None or not currency or currency.strip().upper() != profile.salary_currency.strip().upper():
        return None
    if best >= floor:
        return None
    return f"pay up to {best:,.0f} {currency.upper()} a year, below your floor {floor:,.0f}"


def seniority_break(profile: Profile, posting: JobPosting, analysis: JobAnalysis) -> str | None:
    """Why the seniority the posting asks for (its title's, else the analyser's) is not one the profile wants."""
    if not profile.seniority:
        return None
    level = title_seniority(posting)
    if level == "unknown":
        level = analysis.seniority
    if level == "unknown" or level in profile.seniority:
        return None
    return f"seniority {level}: you want {', '.join(profile.seniority)}"


def broken_limits(profile: Profile, posting: JobPosting, analysis: JobAnalysis) -> list[Broken]:
    """Every limit of the profile the posting breaks, hard or soft."""
    broken: list[Broken] = []
    if reason := place_break(profile, posting, remote_policy(posting, analysis.remote_policy)):
        broken.append(Broken("places", reason))
    broken.extend(
        Broken("deal_breakers", reason) for reason in deal_breaker_breaks(profile, posting, analysis.red_flags)
    )
    if reason := salary_break(profile, posting, analysis):
        broken.append(Broken("salary", reason))
    if reason := seniority_break(profile, posting, analysis):
        broken.append(Broken("seniority", reason))
    return broken


def judged_within(profile: Profile, analysis: JobAnalysis, broken: list[Broken]) -> tuple[JobAnalysis, list[str]]:
    """The analysis with the limits' consequences (its words left as they are), and the hard limits broken."""
    hard = [item.reason for item in broken if item.limit not in profile.soft_limits]
    soft = {item.limit for item in broken if item.limit in profile.soft_limits}
    score = max(0, analysis.fit_score - SOFT_LIMIT_PENALTY * len(soft))
    verdict = analysis.verdict
    if hard:
        score, verdict = min(score, BROKEN_SCORE_CAP), "skip"
    return analysis.model_copy(update={"fit_score": score, "verdict": verdict}), hard


def within_limits(profile: Profile, posting: JobPosting, result: AnalysisResult) -> AnalysisResult:
    """The result judged by the limits: once only (a result already judged is returned as it is)."""
    if result.limits_checked:
        return result
    analysis, hard = judged_within(profile, result.analysis, broken_limits(profile, posting, result.analysis))
    return result.model_copy(
        update={
            "analysis": analysis,
            "limits_broken": hard,
            "limits_checked": True,
            "prompt_version": limits_prompt_version(result.prompt_version),
        }
    )


class WithinLimits:
    """Any analyser, its every result judged by the profile's limits: what every path (the analyse flow, the
    evaluation, the pings) uses, so that all agree."""

    def __init__(self, analyser: Analyser, profile: Profile) -> None:
        self.analyser = analyser
        self.profile = profile

    @property
    def model(self) -> str:
        return self.analyser.model

    @property
    def prompt_version(self) -> str:
        return limits_prompt_version(self.analyser.prompt_version)

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        return within_limits(self.profile, posting, await self.analyser.analyse(posting))

    async def aclose(self) -> None:
        """Give back what the analyser holds (the global limit's slots), if it holds anything."""
        close = getattr(self.analyser, "aclose", None)
        if close is not None:
            await close()
