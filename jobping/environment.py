"""Which ``JOBPING_*`` variables jobping reads, and the ones set that it would silently ignore.

A misspelt variable (``JOBPING_SCRAPE_SOURSE=sample``) is ignored by the settings tree, and the
run then does what the user meant to turn off. The names the tree accepts are derived from its
models with pydantic-settings' own rule (aliases, names, prefixes), so a new setting is known
the moment it is declared.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from pydantic_settings import BaseSettings, EnvSettingsSource

from jobping.settings import Settings

PREFIX = "JOBPING_"
# how alike a name must be to be offered as the one meant (difflib's ratio, 0 to 1)
NEAREST_MIN_RATIO = 0.6

# read outside the settings tree, each by one tool that is not a jobping run
READ_ELSEWHERE = frozenset(
    {
        # tests/test_stack_e2e.py: refresh the README's screenshots
        "JOBPING_SAVE_SCREENSHOTS",
        # scripts/faults.py: the fault suite hands a case the moto server's pid
        "JOBPING_FAULTS_MOTO_PID",
        # deploy/prefect.kubernetes.yaml: the image `prefect deploy` builds from
        "JOBPING_IMAGE",
    }
)


def _sections(model: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    """``model`` and every settings section under it (each reads the environment itself)."""
    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            yield from _sections(field.annotation)


def _env_names(model: type[BaseSettings]) -> Iterator[tuple[list[str], bool]]:
    """Each field's variable names (its alias first, upper-cased), and whether it is a whole section."""
    for section in _sections(model):
        source = EnvSettingsSource(section)
        for name, field in section.model_fields.items():
            is_section = isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
            # pydantic-settings' own rule, so that what is called known is what it reads
            found = source._extract_field_info(field, name)
            yield [env.upper() for _, env, _ in found], is_section


def settings_variables(model: type[BaseSettings] = Settings) -> frozenset[str]:
    """Every environment variable the settings tree reads, upper-cased, aliases included."""
    return frozenset(name for names, _ in _env_names(model) for name in names)


def _suggestions(model: type[BaseSettings]) -> list[str]:
    # the name a field is documented under (its alias, else prefix + name), not the fallbacks
    # pydantic also reads (JOBPING_URL for the lake's url) nor a section as one JSON value
    return sorted({names[0] for names, is_section in _env_names(model) if not is_section} | READ_ELSEWHERE)


def _nearest(name: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``name``, compared without the shared prefix that would make all alike."""
    by_key = {candidate.removeprefix(PREFIX): candidate for candidate in candidates}
    found = difflib.get_close_matches(name.removeprefix(PREFIX), list(by_key), n=1, cutoff=NEAREST_MIN_RATIO)
    return by_key[found[0]] if found else None


@dataclass(frozen=True)
class UnknownVariable:
    """A ``JOBPING_*`` variable that is set and that nothing reads; its value is never kept."""

    name: str
    where: str
    nearest: str | None

    def line(self) -> str:
        guess = f"did you mean {self.nearest}?" if self.nearest else "the README's Settings lists the known ones"
        return f"{self.name} (set in {self.where}) is not a jobping setting and is ignored: {guess}"


def _dotenv_names(path: Path) -> list[str]:
    if not path.is_file():
        return []
    # names only: a value may be a secret, and is dropped here
    return [name for name in dotenv_values(path) if name]


def unknown_variables(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> list[UnknownVariable]:
    """The ``JOBPING_*`` names set in ``environ`` (the process's) or ``dotenv`` that jobping would ignore.

    Names are compared without case, as the settings read them; the nearest known name is offered.
    """
    environ = os.environ if environ is None else environ
    dotenv = Path(str(Settings.model_config.get("env_file") or ".env")) if dotenv is None else dotenv
    known = settings_variables() | READ_ELSEWHERE
    candidates = _suggestions(Settings)
    found: list[UnknownVariable] = []
    seen: set[str] = set()
    for where, names in (("the environment", list(environ)), (str(dotenv), _dotenv_names(dotenv))):
        for name in names:
            upper = name.upper()
            if not upper.startswith(PREFIX) or upper in known or upper in seen:
                continue
            seen.add(upper)
            found.append(UnknownVariable(name, where, _nearest(upper, candidates)))
    return found
