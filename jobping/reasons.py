"""Why a job was judged as it was, in the few short words a ping carries, and what its posting did not say.

The reasons come from the stored analysis (its red flags, skills, remote policy, pay and seniority),
each weighed against the user's profile where the profile says what it wants. A job judged "apply"
is explained first by what speaks for it, any other first by what speaks against it; the summary
is shown beside them, whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobping.profile import Profile

# a ping names this many reasons a job, each at most this long, and this many of its skills
MAX_REASONS = 3
MAX_REASON_CHARS = 100
MAX_NAMED_SKILLS = 3
# of what speaks against an "apply" (and for any other verdict) a ping names this many
MAX_OTHER_SIDE = 1

NO_SALARY = "no salary given"
NO_DESCRIPTION = "no description"
NO_PLACE = "no place given"
NO_COMPANY = "company not given"

# the remote policies each remote preference of the profile accepts ("any" accepts all and explains nothing)
ACCEPTED_POLICIES = {"remote_only": ("remote",), "remote_or_hybrid": ("remote", "hybrid")}
PREFERENCE_WORDS = {"remote_only": "remote only", "remote_or_hybrid": "remote or hybrid"}
POLICY_WORDS = {"onsite": "on-site"}


@dataclass(frozen=True)
class Judged:
    """A posting's stored analysis and those of its own fields a ping explains it by (the stored row's names)."""

    verdict: str
    skills: list[str]
    remote_policy: str
    seniority: str
    salary_min_yearly: float | None
    salary_max_yearly: float | None
    salary_currency: str | None
    red_flags: list[str]
    company: str | None
    location: str | None
    is_remote: bool | None
    min_amount: float | None
    max_amount: float | None
    # null in a row stored before the column was
    description_missing: bool | None


def _money(amount: float) -> str:
    return f"{amount / 1000:,.0f}k" if amount >= 1000 else f"{amount:,.0f}"


def _skills(judged: Judged, profile: Profile) -> tuple[list[str], list[str]]:
    wanted = {skill.lower() for skill in profile.skills}
    if not wanted:
        return [], []
    matched = list(dict.fromkeys(skill for skill in judged.skills if skill.lower() in wanted))
    if not matched:
        return [], ["none of your skills"]
    more = len(matched) - MAX_NAMED_SKILLS
    named = ", ".join(matched[:MAX_NAMED_SKILLS]) + (f" +{more}" if more > 0 else "")
    return [f"your skills: {named}"], []


def _remote(judged: Judged, profile: Profile) -> tuple[list[str], list[str]]:
    accepted = ACCEPTED_POLICIES.get(profile.remote)
    if accepted is None or judged.remote_policy == "unknown":
        return [], []
    policy = POLICY_WORDS.get(judged.remote_policy, judged.remote_policy)
    if judged.remote_policy in accepted:
        return [f"{policy}, as you want"], []
    return [], [f"{policy}, you want {PREFERENCE_WORDS[profile.remote]}"]


def _pay(judged: Judged, profile: Profile) -> tuple[list[str], list[str]]:
    floor = profile.salary_floor_yearly
    best = judged.salary_max_yearly or judged.salary_min_yearly
    currency = judged.salary_currency
    if floor is None or best is None or (currency and currency.upper() != profile.salary_currency.upper()):
        # a pay in another currency is not weighed against the floor: no rate is known here
        return [], []
    pay = f"pay up to {_money(best)} {(currency or profile.salary_currency).upper()}"
    if best >= floor:
        return [f"{pay}, over your {_money(floor)} floor"], []
    return [], [f"{pay}, under your {_money(floor)} floor"]


def _seniority(judged: Judged, profile: Profile) -> tuple[list[str], list[str]]:
    if not profile.seniority or judged.seniority == "unknown":
        return [], []
    if judged.seniority in profile.seniority:
        return [f"{judged.seniority}, as you want"], []
    return [], [f"{judged.seniority}, you want {' or '.join(profile.seniority)}"]


def reasons(judged: Judged, profile: Profile | None) -> list[str]:
    """The two or three reasons that decided the verdict, short; without a profile, the red flags only.

    For an "apply", what speaks for it and then the first thing against it (a red flag first);
    for any other verdict, what speaks against it and then the first thing for it.
    """
    pros: list[str] = []
    cons = [flag for flag in judged.red_flags if flag.strip()]
    if profile is not None:
        for weigh in (_skills, _remote, _pay, _seniority):
            pro, con = weigh(judged, profile)
            pros += pro
            cons += con
    first, other = (pros, cons) if judged.verdict == "apply" else (cons, pros)
    chosen = first[: MAX_REASONS - min(len(other), MAX_OTHER_SIDE)] + other[:MAX_OTHER_SIDE]
    rest = [reason for reason in first + other if reason not in chosen]
    return [reason[:MAX_REASON_CHARS] for reason in (chosen + rest)[:MAX_REASONS]]


def missing(judged: Judged) -> list[str]:
    """What the posting did not say that a person deciding on it would want to know."""
    pay = (judged.min_amount, judged.max_amount, judged.salary_min_yearly, judged.salary_max_yearly)
    gaps = {
        NO_SALARY: all(amount is None for amount in pay),
        NO_DESCRIPTION: bool(judged.description_missing),
        NO_PLACE: not (judged.location or "").strip() and not judged.is_remote,
        NO_COMPANY: not (judged.company or "").strip(),
    }
    return [gap for gap, is_missing in gaps.items() if is_missing]
