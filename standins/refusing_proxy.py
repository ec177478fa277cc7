"""An HTTP proxy in front of an S3-compatible server that answers 503 SlowDown to its first writes.

A real socket server on 127.0.0.1, in a thread of the process that starts it: the storage
outage a lake on S3 meets when S3 throttles or fails for a while. Everything else, and every
write once the refusals are spent, reaches the server unchanged.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from standins.servers import in_a_thread

UPSTREAM_TIMEOUT_SECONDS = 30
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
WRITES = ("PUT", "POST")
# hop-by-hop headers, and the length the proxy sets itself
NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class RefusingProxy:
    """What the proxy refused so far, and how many refusals are left."""

    def __init__(self, upstream: str, refusals: int, path_prefix: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.left = refusals
        self.path_prefix = path_prefix
        self.refused: list[str] = []
        self.url = ""
        self._lock = threading.Lock()

    def refuses(self, method: str, path: str) -> bool:
        with self._lock:
            if method not in WRITES or not path.startswith(self.path_prefix) or self.left <= 0:
                return False
            self.left -= 1
            self.refused.append(f"{method} {path}")
            return True


def _handler(proxy: RefusingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test reads proxy.refused, not a log

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in NOT_FORWARDED:
                    self.send_header(name, value)
            # a HEAD's length is the object's, which its empty body is not
            length = {k.lower(): v for k, v in headers}.get("content-length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self) -> None:
            body = self._body()
            if proxy.refuses(self.command, self.path):
                self._answer(503, [("Content-Type", "application/xml")], SLOW_DOWN)
                return
            upstream = http.client.HTTPConnection(proxy.host, proxy.port, timeout=UPSTREAM_TIMEOUT_SECONDS)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self._answer(response.status, response.getheaders(), response.read())
            finally:
                upstream.close()

        def do_GET(self) -> None:
            self._forward()

        def do_HEAD(self) -> None:
            self._forward()

        def do_PUT(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def do_DELETE(self) -> None:
            self._forward()

    return Handler


@contextmanager
def refusing_proxy(upstream: str, *, refusals: int, path_prefix: str = "/") -> Iterator[RefusingProxy]:
    """A proxy to ``upstream`` answering 503 SlowDown to its first ``refusals`` writes under ``path_prefix``."""
    proxy = RefusingProxy(upstream, refusals, path_prefix)
    with in_a_thread(ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy)), "refusing-proxy") as port:
        proxy.url = f"http://127.0.0.1:{port}"
        yield proxy
