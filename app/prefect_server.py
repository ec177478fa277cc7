"""The local Prefect server as its clients reach it: its URL, its password, whether it answers.

`make up`, the services and every flow command of the CLI share one server on 127.0.0.1; its
password is never written anywhere but the owner-only file it was generated into.
"""

from __future__ import annotations

import base64
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jobping import private
from jobping.errors import ConfigurationError
from jobping.settings import Settings

# the server's basic authentication: this environment variable's value, else a secret generated
# once and kept owner-only in the data dir; "user:password", as the UI's login form asks for it
AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
AUTH_USER = "jobping"


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.stack.prefect_port}/api"


def healthy(settings: Settings) -> bool:
    """Whether the local Prefect server answers its health check."""
    return _healthy(api_url(settings) + "/health")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http url
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class Auth:
    """The local server's basic-auth string, and the file it was generated into (None: from the env)."""

    string: str
    path: Path | None

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(self.string.encode()).decode()}


def auth_path(settings: Settings) -> Path:
    return settings.data_dir / "prefect" / "api-auth"


def auth(settings: Settings) -> Auth:
    """The auth string of the local Prefect server: PREFECT_SERVER_API_AUTH_STRING, else a generated one.

    The generated secret is written once, owner-only (0600 in a 0700 folder), and reused; a file
    that others can read is refused, as ssh refuses a key that others can read.
    """
    given = os.environ.get(AUTH_ENV, "").strip()
    if given:
        return Auth(given, None)
    path = auth_path(settings)
    # the server's database beside it is the users' too: the folder is theirs alone
    private.folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(
                f"{path} (the Prefect server's password) can be read by other users: "
                f"`chmod 600 {path}`, or delete it to make a new one"
            ) from None
        string = path.read_text(encoding="ascii").strip()
        if string:
            return Auth(string, path)
        raise ConfigurationError(f"{path} is empty: delete it to make a new password") from None
    string = f"{AUTH_USER}:{secrets.token_urlsafe(24)}"
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(string + "\n")
    return Auth(string, path)


def http_status(url: str, headers: dict[str, str]) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own http url
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - our own http url
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0
