"""What an analyser says about a posting, and the interface every analyser implements."""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from jobping.contract import JobPosting

Verdict = Literal["apply", "maybe", "skip"]
Seniority = Literal["intern", "junior", "mid", "senior", "staff", "manager", "unknown"]
RemotePolicy = Literal["remote", "hybrid", "onsite", "unknown"]

MAX_SKILLS = 25
MAX_SKILL_CHARS = 60
MAX_RED_FLAGS = 10
MAX_RED_FLAG_CHARS = 200
MAX_SUMMARY_CHARS = 600
# a yearly salary above this is implausible: a figure in the wrong unit, not a job's pay
MAX_YEARLY_SALARY = 100_000_000

# an answer with a longer one is refused like any answer out of bounds: the schema tells the model
Skill = Annotated[str, StringConstraints(max_length=MAX_SKILL_CHARS)]
RedFlag = Annotated[str, StringConstraints(max_length=MAX_RED_FLAG_CHARS)]


class JobAnalysis(BaseModel):
    """How well one posting fits the user's profile; the LLM answers in this shape."""

    model_config = ConfigDict(extra="forbid")

    fit_score: int = Field(ge=0, le=100, description="0 = no fit, 100 = perfect fit.")
    verdict: Verdict = Field(description="apply, maybe or skip.")
    seniority: Seniority = Field(description="Seniority the posting asks for.")
    remote_policy: RemotePolicy = Field(description="remote, hybrid, onsite or unknown.")
    skills: list[Skill] = Field(max_length=MAX_SKILLS, description="Skills the posting asks for, short names.")
    salary_min_yearly: float | None = Field(
        ge=0, le=MAX_YEARLY_SALARY, description="Lowest yearly salary offered, if stated."
    )
    salary_max_yearly: float | None = Field(
        ge=0, le=MAX_YEARLY_SALARY, description="Highest yearly salary offered, if stated."
    )
    salary_currency: str | None = Field(max_length=10, description="ISO currency code.")
    red_flags: list[RedFlag] = Field(max_length=MAX_RED_FLAGS, description="Deal-breakers or warning signs found.")
    summary: str = Field(max_length=MAX_SUMMARY_CHARS, description="One or two sentences.")


class AnalysisResult(BaseModel):
    """An analysis with what produced it and what it cost."""

    analysis: JobAnalysis
    model: str
    prompt_version: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    description_cut: bool = False
    # the profile's hard limits the posting breaks (jobping/limits.py): such a posting is never pinged
    limits_broken: list[str] = Field(default_factory=list)
    # whether the limits judged this result already: they judge it once (not stored)
    limits_checked: bool = False


class Analyser(Protocol):
    """Judges postings against the user's profile; implementations may call an LLM."""

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    async def analyse(self, posting: JobPosting) -> AnalysisResult: ...
