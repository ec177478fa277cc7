"""Pings in chat apps: posting text is never a mention or a disguised link, and a webhook's secret URL
is in no error or log. Sent through Prefect's real Slack and Discord blocks (apprise) to a real receiver."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.notifications import DiscordWebhook, SlackWebhook
from pydantic import SecretStr

from flows.artifacts import top_matches_markdown
from jobping.digest import Digest, Match
from jobping.engine.outcomes import TopMatch
from jobping.markup import Markup, escape, link
from standins.servers import free_port, received, webhook_receiver
from standins.webhook import chat_apps_at
from tasks.notify.channels import NotifyError, send_to_block, send_to_webhook

TITLE = "<!channel> URGENT [Verify your account](https://evil.example/login)"
SUMMARY = "Log in at <https://evil.example|indeed.com/viewjob?jk=1> now, @everyone <@123456789012345678> <@&42> <#77>"
# a model's red flag and skills are outside text too: a ping's reasons quote them
REASONS = ("[Apply here](https://evil.example/a) <!here>", "skills: @everyone, *bold*, `code`")
REAL_URL = "https://www.indeed.com/viewjob?jk=1&from=serp"
SLACK_TOKEN = "XoXSECRETtoken123"
SLACK_URL = f"https://hooks.slack.com/services/T0001/B0001/{SLACK_TOKEN}"
DISCORD_TOKEN = "DiscordSECRETtoken456"
QUERY_KEY = "QueryKEYsecret789"
SECRETS = (SLACK_TOKEN, DISCORD_TOKEN, QUERY_KEY)


def hostile_digest(*job_urls: str) -> Digest:
    match = Match(
        "g1", TITLE, "ACME & <b>Co</b>", "Berlin", 91, "apply", SUMMARY, ["indeed"],
        list(job_urls or (REAL_URL, "javascript:alert(document.cookie)")), datetime(2026, 12, 6, tzinfo=UTC),
        reasons=list(REASONS), missing=["no salary given"],
    )  # fmt: skip
    return Digest([match])


@pytest.fixture
def receiver(tmp_path: Path) -> Any:
    with webhook_receiver(tmp_path / "received.jsonl", free_port()) as url:
        yield url


def save(block: SlackWebhook | DiscordWebhook) -> str:
    name = f"chat-{uuid.uuid4().hex[:8]}"
    block.save(name, overwrite=True)
    return f"{block.get_block_type_slug()}/{name}"


def slack_block() -> SlackWebhook:
    return SlackWebhook(url=SecretStr(SLACK_URL))


def discord_block() -> DiscordWebhook:
    return DiscordWebhook(webhook_id=SecretStr("1234567890"), webhook_token=SecretStr(DISCORD_TOKEN))


# what Slack reads as a command in mrkdwn: <!channel>, <!here>, <@U123>, <https://x|shown>
SLACK_CONTROL = re.compile(r"<[^>]*>")
# what Discord reads as a mention in content (the server finds <@id> even escaped), or as a
# channel link (\\< is markdown's escape), or a masked link
DISCORD_MENTION = re.compile(r"@(?:everyone|here)|<@[!&]?\d|(?<!\\)<#\d")
DISCORD_MASKED_LINK = re.compile(r"(?<!\\)\]\(")


@pytest.mark.usefixtures("prefect_api")
def test_prefect_s_slack_block_delivers_posting_text_with_no_mention_or_disguised_link(receiver: str) -> None:
    with chat_apps_at(receiver):
        asyncio.run(send_to_block(hostile_digest(), save(slack_block()), 10))
    [sent] = received(receiver)
    assert sent["path"] == f"/services/T0001/B0001/{SLACK_TOKEN}"
    payload = json.loads(sent["body"])
    assert payload["mrkdwn"] is True
    text = payload["attachments"][0]["text"]
    assert SLACK_CONTROL.findall(text) == []
    assert "URGENT" in text
    assert "indeed.com/viewjob?jk=1" in text
    # the posting's own link, as itself (& as slack's &amp;), and no other scheme
    assert "https://www.indeed.com/viewjob?jk=1&amp;from=serp" in text.splitlines()[-1]
    assert "javascript" not in text


@pytest.mark.usefixtures("prefect_api")
def test_prefect_s_discord_block_delivers_posting_text_with_no_mention_or_masked_link(receiver: str) -> None:
    with chat_apps_at(receiver):
        asyncio.run(send_to_block(hostile_digest(), save(discord_block()), 10))
    [sent] = received(receiver)
    content = json.loads(sent["body"])["content"]
    assert DISCORD_MENTION.findall(content) == []
    assert DISCORD_MASKED_LINK.findall(content) == []
    assert "URGENT" in content
    assert content.splitlines()[-1].strip() == REAL_URL
    assert "javascript" not in content


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "data:text/html,<script>x</script>", "file:///etc/passwd", "https://indeed.com@evil.example/",
     "https:///no-host", "ftp://indeed.com/job"],
    ids=["javascript", "data", "file", "user-part", "no-host", "ftp"],
)  # fmt: skip
def test_a_job_url_that_is_not_a_plain_http_link_is_left_out_of_the_ping(url: str) -> None:
    assert link(url) is None
    body = hostile_digest(url).body("slack")
    assert url not in body
    assert "://" not in body.splitlines()[-1]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (REAL_URL, REAL_URL),
        ("https://x.example/jobs/1|indeed.com>", "https://x.example/jobs/1%7Cindeed.com%3E"),
        ("https://x.example/@everyone", "https://x.example/%40everyone"),
        ("https://bücher.example/job", "https://xn--bcher-kva.example/job"),
    ],
    ids=["plain", "pipe-and-angle", "at-sign", "unicode-host"],
)
def test_a_job_link_is_written_as_itself_with_nothing_that_could_end_it(url: str, shown: str) -> None:
    assert link(url) == shown


# what each markup would act on, were it left in posting text
ACTED_ON: dict[Markup, list[str]] = {
    "slack": [r"<[^>]*>", r"\]\("],
    "text": [r"<[^>]*>", r"\]\(", r"@(?:everyone|here)", r"<@"],
    "discord": [r"(?<!\\)[<>\[\]()*_~|]", r"@(?:everyone|here)", r"<@[!&]?\d"],
    "markdown": [r"(?<!\\)[<>\[\]()!*_|]"],
}
UNESCAPE = str.maketrans({"\\": "", "\u200b": "", "\u2039": "<", "\u203a": ">"})


@pytest.mark.parametrize("markup", list(ACTED_ON))
def test_the_hostile_title_is_neither_mention_nor_link_in_any_chat_markup_and_still_reads_as_written(
    markup: Markup,
) -> None:
    given = TITLE + " " + SUMMARY
    shown = escape(given, markup)
    for acted_on in ACTED_ON[markup]:
        assert re.findall(acted_on, shown) == [], shown
    assert shown.translate(UNESCAPE) == given


@pytest.mark.parametrize("markup", list(ACTED_ON))
def test_a_match_s_reasons_are_escaped_as_its_posting_text_is(markup: Markup) -> None:
    [why] = [line for line in hostile_digest().body(markup).splitlines() if line.startswith("  why: ")]
    shown = why.removeprefix("  why: ")
    for acted_on in ACTED_ON[markup]:
        assert re.findall(acted_on, shown) == [], shown
    assert shown.translate(UNESCAPE) == "; ".join(REASONS)


def assert_chains_nothing(error: BaseException) -> None:
    """No exception under ``error`` in a traceback: httpx's and apprise's carry the url."""
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{leaked} in: {text[:300]}"


def test_a_webhook_answering_404_names_its_host_and_status_and_not_its_secret_url(
    receiver: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{receiver}/answer/404/services/T0001/B0001/{SLACK_TOKEN}?key={QUERY_KEY}"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotifyError) as raised:
        asyncio.run(send_to_webhook(hostile_digest(), url, 10))
    assert str(raised.value) == "the webhook http://127.0.0.1 answered 404 Not Found"
    assert_chains_nothing(raised.value)
    assert_no_secret("".join(traceback.format_exception(raised.value)), caplog.text)
    assert_no_secret(*(record.getMessage() for record in caplog.records))
    assert [record["path"] for record in received(receiver)] == [f"/answer/404/services/T0001/B0001/{SLACK_TOKEN}"]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("block", [slack_block, discord_block], ids=["slack", "discord"])
def test_a_chat_block_answering_404_fails_with_no_token_in_the_error_or_any_log(
    block: Any, receiver: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = save(block())
    caplog.set_level(logging.DEBUG)
    with chat_apps_at(receiver + "/answer/404"), pytest.raises(NotifyError) as raised:
        asyncio.run(send_to_block(hostile_digest(), name, 10))
    assert_no_secret("".join(traceback.format_exception(raised.value)), caplog.text)
    assert_no_secret(*(record.getMessage() for record in caplog.records))
    assert_chains_nothing(raised.value)
    assert "error=404" in str(raised.value)
    # the posting's text stays out of the error too
    assert "URGENT" not in str(raised.value)
    assert len(received(receiver)) == 1


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(document.cookie)", "https://x.example/a> [Verify](https://evil.example)"],
    ids=["javascript", "closing-angle"],
)
def test_the_top_matches_artifact_links_only_a_posting_s_own_http_url_inside_its_link(url: str) -> None:
    shown = top_matches_markdown([TopMatch(97, "apply", TITLE, "ACME", url)])
    row = shown.splitlines()[-1]
    assert "javascript" not in row
    # one link in the row, ours, and nothing of the url outside its <...>
    assert re.findall(r"(?<!\\)\]\(", row) == (["]("] if url.startswith("https") else [])
    assert re.findall(r"(?<!\\)[<>]", row) == (["<", ">"] if url.startswith("https") else [])
