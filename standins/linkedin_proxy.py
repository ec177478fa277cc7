"""An authenticating HTTPS proxy that answers LinkedIn's guest pages itself, for JobSpy's real LinkedIn scraper.

A real socket server on 127.0.0.1, in a thread of the process that starts it. It takes a
``CONNECT www.linkedin.com:443`` only with the right ``Proxy-Authorization``, terminates TLS
with a certificate signed by a CA it makes (the CA a TLS-terminating proxy asks its users to
trust, given to JobSpy as ``ca_cert``), and answers the two pages JobSpy's scraper reads:
the guest search (``/jobs-guest/jobs/api/seeMoreJobPostings/search``) and a posting's own page
(``/jobs/view/<id>``), shaped as LinkedIn serves them. It records every request it carried
and with which user, and every request it refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from standins.servers import in_a_thread

LINKEDIN_HOST = "www.linkedin.com"
SEARCH_PATH = "/jobs-guest/jobs/api/seeMoreJobPostings/search"
VIEW_PATH = "/jobs/view/"
# what linkedin answers past the last page of a search (jobspy.linkedin.constant.empty_page)
EMPTY_PAGE = "<!DOCTYPE html>\n\n<!---->"
CERT_DAYS = 2


@dataclass(frozen=True)
class Posting:
    """One posting as the search card and its own page show it; ``page`` says how its page answers."""

    job_id: str
    title: str
    company: str
    location: str
    description_html: str = ""
    page: str = "ok"  # "ok", "error" (a 500) or "empty" (a page without the description)


@dataclass
class Carried:
    method: str
    host: str
    path: str
    user: str


@dataclass
class LinkedInProxy:
    """The users it lets through (user: password), its postings, what it saw; its port and CA once it runs."""

    credentials: dict[str, str]
    postings: list[Posting]
    carried: list[Carried] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    port: int = 0
    ca_cert: Path = Path()
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def proxy(self, user: str, password: str | None = None) -> str:
        """The proxy as JobSpy takes it, for ``user`` (with their password unless another is given)."""
        return f"{user}:{password or self.credentials[user]}@127.0.0.1:{self.port}"

    def user_of(self, header: str | None) -> str | None:
        """The user of a right ``Proxy-Authorization``; None when it is missing or wrong."""
        scheme, _, encoded = (header or "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        known = scheme.lower() == "basic" and user in self.credentials and self.credentials[user] == password
        return user if known else None

    def record(self, seen: Carried | str) -> None:
        with self._lock:
            if isinstance(seen, Carried):
                self.carried.append(seen)
            else:
                self.refused.append(seen)

    def paths(self) -> list[str]:
        return [seen.path.partition("?")[0] for seen in self.carried]


def search_page(postings: list[Posting]) -> str:
    cards = "".join(
        f'<li><div class="base-card base-search-card" data-entity-urn="urn:li:jobPosting:{p.job_id}">'
        f'<h3 class="base-search-card__title">{html.escape(p.title)}</h3>'
        f'<h4 class="base-search-card__subtitle"><a href="https://www.linkedin.com/company/'
        f'{html.escape(p.company.lower().replace(" ", "-"))}?trk=public_jobs">{html.escape(p.company)}</a></h4>'
        f'<div class="base-search-card__metadata"><span class="job-search-card__location">'
        f'{html.escape(p.location)}</span><time datetime="2026-12-01">6 days ago</time></div></div></li>'
        for p in postings
    )
    return f"<!DOCTYPE html>\n\n{cards}"


def view_page(posting: Posting) -> str:
    description = (
        f'<div class="show-more-less-html__markup show-more-less-html__markup--clamp-after-5">'
        f"{posting.description_html}</div>"
        if posting.page == "ok"
        else ""
    )
    return (
        f"<!DOCTYPE html><html><body><h1>{html.escape(posting.title)}</h1>{description}"
        '<ul class="description__job-criteria-list">'
        '<li><h3 class="description__job-criteria-subheader">Seniority level</h3>'
        '<span class="description__job-criteria-text">Mid-Senior level</span></li>'
        '<li><h3 class="description__job-criteria-subheader">Employment type</h3>'
        '<span class="description__job-criteria-text">Full-time</span></li></ul></body></html>'
    )


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for LinkedIn's host signed by it: (ca.pem, host.pem, host.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, host_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobping test proxy CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    host = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LINKEDIN_HOST)]))
        .issuer_name(ca_name)
        .public_key(host_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(LINKEDIN_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "proxy-ca.pem", folder / "linkedin.pem", folder / "linkedin.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(host.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        host_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _pages(proxy: LinkedInProxy, user: str) -> type[BaseHTTPRequestHandler]:
    """LinkedIn's side of a tunnel: its pages, as one user of the proxy asked for them."""
    by_id = {posting.job_id: posting for posting in proxy.postings}

    class Pages(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test reads proxy.carried, not a log

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            proxy.record(Carried("GET", self.headers.get("Host", ""), self.path, user))
            url = urlsplit(self.path)
            if url.path == SEARCH_PATH:
                start = int(parse_qs(url.query).get("start", ["0"])[0])
                self._send(200, search_page(proxy.postings) if start == 0 else EMPTY_PAGE)
                return
            posting = by_id.get(url.path.removeprefix(VIEW_PATH)) if url.path.startswith(VIEW_PATH) else None
            if posting is None or posting.page == "error":
                self._send(404 if posting is None else 500, "<html><body>not here</body></html>")
                return
            self._send(200, view_page(posting))

    return Pages


def _handler(proxy: LinkedInProxy, tls: ssl.SSLContext) -> type[BaseHTTPRequestHandler]:
    class Tunnel(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _refuse(self, status: int, reason: str) -> None:
            proxy.record(f"{self.command} {self.path}: {reason}")
            self.send_response(status)
            if status == 407:
                self.send_header("Proxy-Authenticate", 'Basic realm="jobping test proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True

        def do_CONNECT(self) -> None:
            user = proxy.user_of(self.headers.get("Proxy-Authorization"))
            if user is None:
                self._refuse(407, "no or wrong credentials")
                return
            if self.path != f"{LINKEDIN_HOST}:443":
                self._refuse(502, "not linkedin")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            try:
                inner = tls.wrap_socket(self.connection, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                proxy.record(f"TLS handshake failed: {exc}")
                return
            server: Any = self.server
            _pages(proxy, user)(inner, self.client_address, server)

        def do_GET(self) -> None:
            # plain http through the proxy: linkedin is https only
            self._refuse(502, "plain http")

    return Tunnel


@contextmanager
def linkedin_proxy(folder: Path, credentials: dict[str, str], postings: list[Posting]) -> Iterator[LinkedInProxy]:
    """The proxy on a free port of 127.0.0.1 until the block ends; its CA is written to ``folder``."""
    ca_cert, host_cert, host_key = make_certificates(folder)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(host_cert, host_key)
    proxy = LinkedInProxy(credentials=credentials, postings=postings, ca_cert=ca_cert)
    with in_a_thread(ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy, tls)), "linkedin-proxy") as port:
        proxy.port = port
        yield proxy
