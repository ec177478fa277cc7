"""A labelled set: postings with the verdict a careful person gives them, to measure an analyser on.

One JSON object per line (JSON Lines), of two kinds. A profile line names a profile for the
lines after it; a posting line carries a posting as the queue carries it and its label. A
posting line without a verdict is unlabelled: it is skipped and counted, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobping.analysis import Verdict
from jobping.contract import Envelope, PoisonMessageError, envelope_from
from jobping.errors import ConfigurationError, describe
from jobping.fits import PING_VERDICT
from jobping.profile import LimitName, Profile
from jobping.text import one_line

# the profile's hard limits a posting can break, as a label names them
Limit = LimitName
LIMITS: tuple[Limit, ...] = get_args(LimitName)
# the shipped set, package data under jobping/eval/
BUNDLED_SET = "labelled.jsonl"
MAX_NOTE_CHARS = 1_000
MAX_ID_CHARS = 200
MAX_SHOWN_LINE_ERROR_CHARS = 300
# a scrape moment for postings that carry none: the set's postings are not tied to a night
LABELLED_AT = datetime(2026, 1, 1, tzinfo=UTC)

FORMAT_HELP = """\
The labelled set is JSON Lines: one JSON object per line, blank lines ignored. Two kinds of line:

  profile line: {"profile_name": "alex", "profile": {...}}
      profile = the fields of profile.toml (wanted_titles, skills, seniority, locations, remote,
      salary_floor_yearly, salary_currency, deal_breakers, ...); names it for the lines below.

  posting line: {"id": "en-001", "profile": "alex", "posting": {...}, "label": {...}}
      id       = optional, shown in the results (else the line number)
      profile  = a profile_name from an earlier line, a profile object inline, or left out for
                 your own profile (JOBPING_PROFILE_PATH, ./profile.toml or the bundled example)
      posting  = the posting in JobSpy's field names, as the queue carries it (title and job_url
                 required; company, location, description, is_remote, min_amount, max_amount,
                 currency, interval (yearly, monthly, weekly, daily, hourly) ... optional), or a
                 whole queue envelope
      label    = what a careful person says of it against the profile:
                 verdict       = apply, maybe or skip (null: unlabelled, the line is skipped and counted)
                 ping          = true when it should be pinged (default: verdict is apply)
                 score         = optional 0-100 fit score, for the score error
                 limits_broken = the hard limits it breaks: places, deal_breakers, salary, seniority
                 note          = why, in a few words
      stored   = optional, ignored: what the lake said of it (written by --from-lake)
"""


class LabelledSetError(ConfigurationError):
    """A labelled set that cannot be read: the message names the file, the line and the field."""


class Label(BaseModel):
    """What a careful person says of a posting against a profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict | None = None
    ping: bool | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    limits_broken: list[Limit] = Field(default_factory=list, max_length=len(LIMITS))
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)

    @property
    def labelled(self) -> bool:
        return self.verdict is not None

    @property
    def pinged(self) -> bool:
        """Whether it should be pinged: said, else whether the verdict is the one that pings."""
        return self.ping if self.ping is not None else self.verdict == PING_VERDICT


class ProfileLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_name: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    profile: Profile


class PostingLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    profile: str | Profile | None = None
    posting: dict[str, Any]
    label: Label = Field(default_factory=Label)
    stored: dict[str, Any] | None = None


@dataclass(frozen=True)
class LabelledPosting:
    """One labelled posting, validated as the queue's consumer validates it, with its profile."""

    line: int
    id: str
    profile: Profile
    envelope: Envelope
    label: Label


@dataclass(frozen=True)
class LabelledSet:
    postings: list[LabelledPosting]
    # posting lines without a verdict: skipped, and said how many
    unlabelled: int


def _line_error(where: str, number: int, problem: str) -> LabelledSetError:
    return LabelledSetError(f"{where} line {number}: {one_line(problem, MAX_SHOWN_LINE_ERROR_CHARS)}")


def _profile_of(line: PostingLine, named: dict[str, Profile], default: Profile) -> Profile | str:
    """The line's profile, or what is wrong with its name."""
    if line.profile is None:
        return default
    if isinstance(line.profile, Profile):
        return line.profile
    if line.profile not in named:
        known = ", ".join(sorted(named)) or "none yet"
        return f"profile {line.profile!r} is named on no earlier line (named: {known})"
    return named[line.profile]


def parse_labelled(text: str, where: str, default: Profile) -> LabelledSet:
    """The labelled set in ``text`` (from ``where``); ``default`` is the profile of lines that name none.

    Raises ``LabelledSetError`` naming the line and the field at the first line that is not
    valid, and when no line is a posting line.
    """
    named: dict[str, Profile] = {}
    postings: list[LabelledPosting] = []
    unlabelled = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise _line_error(where, number, f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise _line_error(where, number, f"not a JSON object but {type(data).__name__}")
        try:
            if "profile_name" in data:
                profile_line = ProfileLine.model_validate(data)
                named[profile_line.profile_name] = profile_line.profile
                continue
            line = PostingLine.model_validate(data)
        except ValidationError as exc:
            raise _line_error(where, number, describe(exc)) from exc
        profile = _profile_of(line, named, default)
        if isinstance(profile, str):
            raise _line_error(where, number, profile)
        try:
            envelope = envelope_from(line.posting, LABELLED_AT)
        except PoisonMessageError as exc:
            raise _line_error(where, number, f"posting: {exc.reason}") from exc
        if not line.label.labelled:
            unlabelled += 1
            continue
        postings.append(LabelledPosting(number, line.id or f"line {number}", profile, envelope, line.label))
    if not postings:
        reason = (
            f"none of its {unlabelled} posting lines has a label.verdict" if unlabelled else "it has no posting lines"
        )
        raise LabelledSetError(f"{where}: nothing to evaluate: {reason}")
    return LabelledSet(postings, unlabelled)


def read_labelled(path: Path, default: Profile) -> LabelledSet:
    """The labelled set in the file at ``path`` (see :func:`parse_labelled`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelledSetError(f"cannot read the labelled set {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise LabelledSetError(f"the labelled set {path} is not UTF-8 text") from exc
    return parse_labelled(text, str(path), default)


def bundled_set_text() -> str:
    """The shipped labelled set (synthetic postings, labelled by hand)."""
    return resources.files("jobping").joinpath("eval", BUNDLED_SET).read_text(encoding="utf-8")
