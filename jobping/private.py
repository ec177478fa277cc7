"""What stays private: which settings are secrets, and the owner-only files the stack keeps.

One rule says what a secret is, so that the console, the stack's state file and the service
units all hide the same values: a secret is never written, shown or logged, only named as
``<set>`` and compared by a keyed digest. The stack's state files and logs are the user's
alone: 0600 files in 0700 folders, tightened when an older jobping left them open.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from jobping.settings import Settings

# how a secret is shown: named, never its value
SHOWN = "<set>"
FILE_MODE = 0o600
FOLDER_MODE = 0o700
# a name ending so holds a secret (AWS_SECRET_ACCESS_KEY, OPENAI_API_KEY, PREFECT_API_AUTH_STRING...)
SECRET_NAME = re.compile(r"(KEY|KEY_ID|SECRET|TOKEN|PASSWORD|PASSWD|AUTH_STRING|CREDENTIALS?)$")
# a name naming one of these holds a url whose path or userinfo is the secret
SECRET_NAME_PARTS = ("WEBHOOK", "PROXY", "PROXIES")
DIGEST_HEX_CHARS = 32


def _secret_fields(model: type[BaseSettings]) -> set[str]:
    """Every variable a SecretStr setting is read from, derived from the settings tree itself."""
    prefix = str(model.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= _secret_fields(annotation)
        elif SecretStr in getattr(annotation, "__args__", ()) or annotation is SecretStr:
            alias = field.validation_alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias or prefix + name]
            names |= {str(choice).upper() for choice in choices}
    return names


SECRET_SETTINGS = frozenset(_secret_fields(Settings))


def _credential_url(value: str) -> bool:
    """A url carrying a credential: a user or password before the host, or a query string."""
    for part in value.split(","):
        try:
            url = urlsplit(part.strip())
        except ValueError:
            # not a url python can read: treated as one that may hold anything
            return True
        if url.scheme and url.netloc and (url.username is not None or url.password is not None or url.query):
            return True
    return False


def is_secret(name: str, value: str) -> bool:
    """Whether an environment variable holds a secret, by its name or by what its value looks like."""
    upper = name.upper()
    return (
        upper in SECRET_SETTINGS
        or SECRET_NAME.search(upper) is not None
        or any(part in upper for part in SECRET_NAME_PARTS)
        or _credential_url(value)
    )


def shown(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` as it may be printed or kept: each secret's value replaced by ``<set>``."""
    return {name: SHOWN if is_secret(name, value) else value for name, value in env.items()}


def digest(key: str, env: Mapping[str, str]) -> str:
    """A digest of ``env``, names and values, keyed by ``key``: it tells a change, never a value."""
    text = "\0".join(f"{name}={value}" for name, value in sorted(env.items()))
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()[:DIGEST_HEX_CHARS]


def folder(path: Path) -> Path:
    """``path`` made (with its parents) and owner-only, also when it was there already, open to others."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != FOLDER_MODE:
        path.chmod(FOLDER_MODE)
    return path


def tighten(path: Path) -> None:
    """Make an existing file owner-only (one another program made); a missing one is left missing."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o777 != FILE_MODE:
            path.chmod(FILE_MODE)


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once, owner-only (a reader never sees half a file)."""
    folder(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    # a partial file from a crash may have been made open to others before: ours is 0600 now
    partial.chmod(FILE_MODE)
    os.replace(partial, path)


def open_file(path: Path, mode: str = "a") -> BinaryIO:
    """``path`` opened in binary for append (``a``) or write (``w``), owner-only, its folder too."""
    folder(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    # a file an older jobping made 0644 is tightened: os.open's mode only applies to a new file
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "ab" if mode == "a" else "wb")
