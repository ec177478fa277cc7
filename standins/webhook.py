"""A local HTTP server that receives webhooks, for the ping tests: it keeps every POST it gets.

Each POST to any path is appended, as one JSON line (path, content type, body), to the file
given by ``--store``, so what arrived survives the receiver being stopped and started again;
GET /_received returns the lines as a JSON list, GET /health answers 200. Run it as its own
process: ``python -m standins.webhook --port 8082 --store received.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web


def make_app(store: Path) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.text()
        record = {"path": request.path, "content_type": request.content_type, "body": body}
        with store.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True, help="JSON-lines file the received POSTs go to")
    args = parser.parse_args()
    web.run_app(make_app(args.store), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
