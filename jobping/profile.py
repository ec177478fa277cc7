"""The user's profile: what they look for, read from one editable TOML file."""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EXAMPLE_PROFILE = "profile.example.toml"
USER_PROFILE = Path("profile.toml")


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
        raise ProfileError(f"profile {where} is invalid: {exc}") from exc
