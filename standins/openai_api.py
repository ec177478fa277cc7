"""A local HTTP server that speaks the Chat Completions wire format, for tests and benchmarks.

It answers structured-output requests for jobping's JobAnalysis schema with deterministic
answers, and misbehaves on demand: latency, 429 with Retry-After, 500, hanging requests,
malformed JSON, invalid answers, refusals and length cut-offs, by rate (POST /_config) or
by a marker in the posting text (``STANDIN:REFUSE`` and friends). GET /_stats counts what
it did, GET /_requests gives the user messages it was sent. Run it as its own process:
``python -m standins.openai_api --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

POSTING = re.compile(r"<posting>\n(.*)\n</posting>", re.DOTALL)
# a refusal that tries to forge a log line of its own and to clear the terminal
FORGED_LINE = "05:00:00.000 | INFO    | Flow run 'forged' - Finished in state Completed()"
REFUSAL = f"I can't help with that.\n{FORGED_LINE}\r\n\x1b[2J"
# the user messages kept for GET /_requests, the newest: a test reads what the model was told
KEPT_REQUESTS = 1_000
MARKERS = ("REFUSE", "LENGTH", "MALFORMED", "INVALID", "HANG", "FAIL500", "RATELIMIT")


class Faults(BaseModel):
    """How the stand-in misbehaves; rates are per request, 0 to 1."""

    latency_ms: float = Field(default=0, ge=0)
    rate_429: float = Field(default=0, ge=0, le=1)
    rate_500: float = Field(default=0, ge=0, le=1)
    rate_hang: float = Field(default=0, ge=0, le=1)
    rate_malformed: float = Field(default=0, ge=0, le=1)
    rate_invalid: float = Field(default=0, ge=0, le=1)
    retry_after_seconds: float = Field(default=0.2, ge=0)
    hang_seconds: float = Field(default=60, ge=0)
    seed: int = 7
    require_key: str | None = None
    # a careless server: its 401 echoes the Authorization header it got, whole and masked
    echo_key: bool = False
    # fields every valid answer gives instead of its own: {"fit_score": 95, "verdict": "apply"} is a model
    # that wants every job
    answer: dict[str, Any] = Field(default_factory=dict)


class State:
    def __init__(self) -> None:
        self.faults = Faults()
        self.random = random.Random(self.faults.seed)
        self.stats: Counter[str] = Counter()
        self.keys_seen: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.user_messages: deque[str] = deque(maxlen=KEPT_REQUESTS)


def answer_for(posting: dict[str, Any]) -> dict[str, Any]:
    """A valid JobAnalysis, derived from the posting so that equal postings get equal answers."""
    digest = hashlib.sha256(json.dumps(posting, sort_keys=True).encode()).digest()
    title = str(posting.get("title", "")).lower()
    score = digest[0] % 101
    if "engineer" in title:
        score = max(score, 55)
    words = re.findall(r"[a-z][a-z+#.]{1,20}", str(posting.get("description", "")).lower())
    known = ["python", "sql", "aws", "airflow", "dbt", "spark", "kafka", "go", "kubernetes", "terraform"]
    return {
        "fit_score": score,
        "verdict": "apply" if score >= 70 else "maybe" if score >= 45 else "skip",
        "seniority": "senior" if "senior" in title else "mid",
        "remote_policy": "remote" if posting.get("is_remote") else "unknown",
        "skills": [k for k in known if k in words][:25],
        "salary_min_yearly": posting.get("min_amount"),
        "salary_max_yearly": posting.get("max_amount"),
        "salary_currency": posting.get("currency"),
        "red_flags": ["asks the reader to change the rating"] if "ignore previous" in str(posting).lower() else [],
        "summary": f"{posting.get('title', 'A job')} judged by the stand-in.",
    }


def completion(model: str, content: str | None, *, refusal: str | None = None, finish: str = "stop") -> dict[str, Any]:
    prompt_tokens = 350 + len(content or "") // 8
    return {
        "id": f"chatcmpl-{random.getrandbits(48):x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 120, "total_tokens": prompt_tokens + 120},
    }


def reply(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


def make_app() -> web.Application:
    state = State()

    async def configure(request: web.Request) -> web.Response:
        faults = Faults.model_validate(await request.json())
        state.faults = faults
        state.random = random.Random(faults.seed)
        state.stats.clear()
        state.keys_seen.clear()
        state.user_messages.clear()
        state.max_in_flight = 0
        return reply({"status": "ok"})

    async def stats(_: web.Request) -> web.Response:
        return reply({**state.stats, "max_in_flight": state.max_in_flight, "keys_seen": dict(state.keys_seen)})

    async def requests(_: web.Request) -> web.Response:
        return reply({"user_messages": list(state.user_messages)})

    async def chat(request: web.Request) -> web.Response:
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await respond(request)
        finally:
            state.in_flight -= 1

    async def respond(request: web.Request) -> web.Response:
        faults, rng = state.faults, state.random
        state.stats["requests"] += 1
        auth = request.headers.get("authorization", "")
        state.keys_seen[auth.removeprefix("Bearer ")[:64]] += 1
        if faults.require_key is not None and auth != f"Bearer {faults.require_key}":
            state.stats["401"] += 1
            given = auth.removeprefix("Bearer ")
            message = (
                f"Incorrect API key provided: {auth} ({given[:3]}...{given[-4:]})" if faults.echo_key else "bad key"
            )
            return reply({"error": {"message": message, "type": "invalid_request_error"}}, status=401)
        body = await request.json()
        schema = (body.get("response_format") or {}).get("json_schema") or {}
        if body.get("response_format", {}).get("type") != "json_schema" or not schema.get("strict"):
            state.stats["400"] += 1
            return reply({"error": {"message": "expected a strict json_schema"}}, status=400)
        user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        state.user_messages.append(str(user))
        found = POSTING.search(user)
        posting = json.loads(found.group(1)) if found else {}
        text = json.dumps(posting)
        marker = next((m for m in MARKERS if f"STANDIN:{m}" in text), None)
        await asyncio.sleep(faults.latency_ms / 1000)
        draw = rng.random()
        if marker == "HANG" or draw < faults.rate_hang:
            state.stats["hang"] += 1
            await asyncio.sleep(faults.hang_seconds)
        draw -= faults.rate_hang
        if marker == "RATELIMIT" or 0 <= draw < faults.rate_429:
            state.stats["429"] += 1
            headers = {"retry-after": f"{faults.retry_after_seconds:g}"}
            return reply({"error": {"message": "slow down", "type": "rate_limit"}}, status=429, headers=headers)
        draw -= faults.rate_429
        if marker == "FAIL500" or 0 <= draw < faults.rate_500:
            state.stats["500"] += 1
            return reply({"error": {"message": "boom", "type": "server_error"}}, status=500)
        draw -= faults.rate_500
        model = str(body.get("model", ""))
        if marker == "REFUSE":
            state.stats["refusal"] += 1
            return reply(completion(model, None, refusal=REFUSAL))
        if marker == "LENGTH":
            state.stats["length"] += 1
            return reply(completion(model, '{"fit_score": 5', finish="length"))
        if marker == "MALFORMED" or 0 <= draw < faults.rate_malformed:
            state.stats["malformed"] += 1
            return reply(completion(model, '{"fit_score": 80, "verdict": "apply", '))
        draw -= faults.rate_malformed
        if marker == "INVALID" or 0 <= draw < faults.rate_invalid:
            state.stats["invalid"] += 1
            return reply(completion(model, json.dumps({**answer_for(posting), "fit_score": 150})))
        state.stats["ok"] += 1
        return reply(completion(model, json.dumps({**answer_for(posting), **faults.answer})))

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/_config", configure)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_requests", requests)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    # hanging requests must not hold up a shutdown
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None, shutdown_timeout=1)


if __name__ == "__main__":
    main()
