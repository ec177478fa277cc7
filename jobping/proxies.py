"""The proxies JobSpy's scrapers go through, and the CA a TLS-terminating proxy needs, checked before use.

A proxy is written as JobSpy takes it: ``host:port`` or ``user:pass@host:port``, with an optional
scheme (``http://``, ``socks5://``, ...); JobSpy rotates through the list, one proxy a request.
Its credentials are a secret: an error names a proxy by its position, or by its scheme, host and
port, never by what it was written as.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from jobping.errors import ConfigurationError
from jobping.redaction import MIN_SECRET_CHARS

# the schemes requests (with PySocks) and curl_cffi both speak
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
DEFAULT_SCHEME = "http"
MAX_PROXIES = 1_000
MAX_PORT = 65_535
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
# a scheme is shown in an error only when it looks like one, so no mistyped secret is
SHOWN_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}")
FORMAT = "'host:port' or 'user:pass@host:port'"


@dataclass(frozen=True)
class Proxy:
    """One checked proxy: as JobSpy takes it, and as it may be shown."""

    text: str = field(repr=False)
    scheme: str
    host: str
    port: int
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    def shown(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def secrets(self) -> set[str]:
        """Every form its credentials may take in a message: as written, decoded, in a Basic header."""
        if not self.user:
            return set()
        userinfo = self.text.rpartition("@")[0].split("://", 1)[-1]
        # the credentials, not the whole entry: a message keeps naming the proxy's host
        found = {userinfo, unquote(userinfo), f"{self.user}:{self.password}"}
        found.add(base64.b64encode(f"{self.user}:{self.password}".encode()).decode())
        found |= {part for part in (self.user, self.password) if len(part) >= MIN_SECRET_CHARS}
        return found


@dataclass(frozen=True)
class Proxies:
    """The proxies of a scrape run and the CA to trust; shown (repr, logs) without credentials."""

    entries: tuple[Proxy, ...] = ()
    ca_cert: Path | None = None

    def __repr__(self) -> str:
        return f"Proxies({self.shown() or 'none'}, ca_cert={self.ca_cert})"

    def for_jobspy(self) -> list[str] | None:
        return [proxy.text for proxy in self.entries] or None

    def shown(self) -> str:
        return ", ".join(dict.fromkeys(proxy.shown() for proxy in self.entries))

    def secrets(self) -> set[str]:
        found: set[str] = set()
        for proxy in self.entries:
            found |= proxy.secrets()
        return found


def _why_not(text: str) -> str | None:
    """What is wrong with one proxy entry, in words that never repeat it; None when it is right."""
    if any(char.isspace() for char in text):
        return "it contains a space"
    scheme, has_scheme, _ = text.partition("://")
    if has_scheme and scheme.lower() not in PROXY_SCHEMES:
        named = f"{scheme!r}" if SHOWN_SCHEME.fullmatch(scheme) else "its scheme"
        return f"{named} is not one of {', '.join(PROXY_SCHEMES)}"
    return _address_why_not(urlsplit(text if has_scheme else f"{DEFAULT_SCHEME}://{text}"))


def _address_why_not(url: SplitResult) -> str | None:
    if url.path not in ("", "/") or url.query or url.fragment:
        return "it has a path after host:port"
    if "@" in url.netloc and not url.username:
        return "its credentials have no user"
    if not url.hostname:
        return "it has no host"
    try:
        port = url.port
    except ValueError:
        return f"its port is not a number from 1 to {MAX_PORT}"
    return None if port else "it has no port"


def parse_proxy(text: str, position: int, total: int, origin: str) -> Proxy:
    why = _why_not(text)
    if why is not None:
        raise ConfigurationError(f"{origin}: proxy {position} of {total} is not {FORMAT}: {why}")
    scheme = text.partition("://")[0].lower() if "://" in text else DEFAULT_SCHEME
    url = urlsplit(text if "://" in text else f"{DEFAULT_SCHEME}://{text}")
    return Proxy(
        text=text,
        scheme=scheme,
        host=url.hostname or "",
        port=url.port or 0,
        user=unquote(url.username or ""),
        password=unquote(url.password or ""),
    )


def split_proxies(value: object, origin: str) -> list[str]:
    """A proxy list as a string (comma- or newline-separated, or a JSON list) or a list, as entries."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigurationError(f"{origin}: the proxies are not a valid JSON list") from None
    if isinstance(value, str):
        return [entry.strip() for entry in re.split(r"[,\n]", value) if entry.strip()]
    if isinstance(value, list) and all(isinstance(entry, str) for entry in value):
        return [entry.strip() for entry in value if entry.strip()]
    raise ConfigurationError(f"{origin}: the proxies are neither comma-separated text nor a JSON list of strings")


def parse_proxies(value: object, origin: str) -> tuple[Proxy, ...]:
    """Every proxy of ``value`` checked; a ConfigurationError naming the first bad one by its position."""
    entries = split_proxies(value, origin)
    if len(entries) > MAX_PROXIES:
        raise ConfigurationError(f"{origin}: {len(entries)} proxies, more than {MAX_PROXIES}")
    return tuple(parse_proxy(entry, i, len(entries), origin) for i, entry in enumerate(entries, start=1))


def check_ca_cert(path: Path) -> Path:
    """The CA file, readable and PEM; else a ConfigurationError saying what to fix."""
    try:
        head = path.read_text(encoding="ascii", errors="replace")[:100_000]
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"JOBPING_SCRAPE_CA_CERT={path} cannot be read ({why})") from None
    if PEM_CERTIFICATE not in head:
        raise ConfigurationError(f"JOBPING_SCRAPE_CA_CERT={path} holds no PEM certificate ({PEM_CERTIFICATE})")
    return path
