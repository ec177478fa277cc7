"""The user's profile: what they look for, read from one editable TOML file."""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from jobping.text import one_line

EXAMPLE_PROFILE = "profile.example.toml"
USER_PROFILE = Path("profile.toml")
# an error line names this many problems, then says how many more there are
MAX_SHOWN_ERRORS = 3
# characters of a wrong value shown in an error: enough to recognise it, never a whole text
MAX_SHOWN_VALUE_CHARS = 40


# the profile's limits, by the name soft_limits uses: remote preference and places, deal-breakers,
# salary floor, seniority
LimitName = Literal["places", "deal_breakers", "salary", "seniority"]


class ProfileError(ValueError):
    """The profile file is missing or invalid."""


class Profile(BaseModel):
    """What the user wants from a job; every list is matched case-insensitively."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=200)
    wanted_titles: list[str] = Field(default_factory=list, max_length=50)
    skills: list[str] = Field(default_factory=list, max_length=200)
    nice_to_have_skills: list[str] = Field(default_factory=list, max_length=200)
    seniority: list[Literal["intern", "junior", "mid", "senior", "staff", "manager"]] = Field(default_factory=list)
    locations: list[str] = Field(default_factory=list, max_length=50)
    remote: Literal["remote_only", "remote_or_hybrid", "any"] = "any"
    salary_floor_yearly: float | None = Field(default=None, ge=0)
    salary_currency: str = Field(default="USD", max_length=10)
    deal_breakers: list[str] = Field(default_factory=list, max_length=50)
    # every limit is hard (a posting that breaks it is never pinged) unless named here: then it lowers the score
    soft_limits: list[LimitName] = Field(default_factory=list)
    about: str = Field(default="", max_length=4_000)

    @property
    def fingerprint(self) -> str:
        """Short hash of the profile: a changed profile means a fresh analysis."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:8]


def bundled_example() -> str:
    return resources.files("jobping").joinpath(EXAMPLE_PROFILE).read_text(encoding="utf-8")


def load_profile(path: Path | None) -> Profile:
    """Read the profile at ``path``; unset means ./profile.toml, else the bundled example."""
    if path is None:
        text = USER_PROFILE.read_text(encoding="utf-8") if USER_PROFILE.is_file() else bundled_example()
        where = str(USER_PROFILE) if USER_PROFILE.is_file() else f"bundled {EXAMPLE_PROFILE}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from exc
        where = str(path)
    try:
        return Profile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {where} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise ProfileError(describe_invalid(where, exc)) from exc


def _shown(value: object) -> str:
    """A value as the TOML file spells it (strings quoted, lists bracketed), shortened, on one line."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        text = str(type(value).__name__)
    return one_line(text, MAX_SHOWN_VALUE_CHARS)


def _problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "profile"
    if error["type"] == "extra_forbidden":
        near = difflib.get_close_matches(str(loc[-1]), list(Profile.model_fields), n=1)
        return f"{field} is not a profile field" + (f" (did you mean {near[0]}?)" if near else "")
    if error["type"] == "literal_error":
        # pydantic says "'a', 'b' or 'c'"; the file wants the bare names
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{field} = {_shown(error['input'])} is not one of {expected}"
    message = error["msg"][:1].lower() + error["msg"][1:]
    return f"{field} = {_shown(error['input'])}: {message}"


def describe_invalid(where: str, exc: ValidationError) -> str:
    """One line naming each wrong field and its value (the first few), without pydantic's links."""
    problems = [_problem(error) for error in exc.errors(include_url=False)]
    more = len(problems) - MAX_SHOWN_ERRORS
    return f"{where}: {'; '.join(problems[:MAX_SHOWN_ERRORS])}" + (f" (and {more} more)" if more > 0 else "")
