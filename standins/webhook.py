"""A local HTTP server that receives webhooks, for the ping tests: it keeps every POST it gets.

Each POST to any path is appended, as one JSON line (path, content type, body), to the file
given by ``--store``, so what arrived survives the receiver being stopped and started again;
GET /_received returns the lines as a JSON list, GET /health answers 200. A POST to a path
under ``/answer/<status>/`` is kept too and answered with that status (a webhook that is gone
answers 404), the rest with 200 (``ok`` under ``/services/``, as Slack answers). Run it as its own
process: ``python -m standins.webhook --port 8082 --store received.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack


def make_app(store: Path) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.text()
        record = {"path": request.path, "content_type": request.content_type, "body": body}
        with store.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        status = request.path.removeprefix("/answer/").partition("/")[0]
        if request.path.startswith("/answer/") and status.isdigit():
            return web.Response(status=int(status), text="no such webhook")
        if request.path.startswith("/services/"):
            # what Slack's incoming webhooks answer, and all that apprise takes for success
            return web.Response(text="ok")
        return web.json_response({"ok": True})

    async def received(_: web.Request) -> web.Response:
        lines = store.read_text(encoding="utf-8").splitlines() if store.exists() else []
        return web.json_response([json.loads(line) for line in lines])

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/_received", received)
    app.router.add_post("/{tail:.*}", receive)
    return app


@contextmanager
def chat_apps_at(url: str) -> Iterator[None]:
    """Prefect's SlackWebhook and DiscordWebhook blocks post to ``url`` (the receiver) while the block runs.

    Their apprise plugins post to fixed https hosts (hooks.slack.com, discord.com); only that
    base is moved here, every byte of the body is still apprise's. Slack's then arrive at
    ``/services/...``, Discord's at ``/api/webhooks/...``.
    """
    slack, discord = NotifySlack.webhook_url, NotifyDiscord.notify_url
    NotifySlack.webhook_url, NotifyDiscord.notify_url = f"{url}/services", f"{url}/api/webhooks"
    try:
        yield
    finally:
        NotifySlack.webhook_url, NotifyDiscord.notify_url = slack, discord


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True, help="JSON-lines file the received POSTs go to")
    args = parser.parse_args()
    web.run_app(make_app(args.store), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
