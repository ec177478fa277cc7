"""Posting text in the markup of the app that shows it: read as written, never a mention, a link or markup.

A ping carries text from strangers (a posting's title, company, place, a model's summary).
Each chat app reads some characters as commands, so each gets the text escaped for its own
markup, in one place: :func:`escape`. The only links a ping holds are the posting's own
http(s) URLs, written out as themselves (:func:`link`); any other scheme is dropped.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote, urlsplit

from jobping.text import one_line

# where the text is shown, and so which characters it must not hold as themselves:
#   slack: Slack mrkdwn as Prefect's SlackWebhook block sends it (through apprise)
#   discord: Discord's markdown and mentions
#   markdown: CommonMark, raw html included (Prefect's artifacts)
#   text: any other receiver (a custom webhook block, Teams, Mattermost): nothing any of them acts on
#   plain: a terminal, which shows text as text
Markup = Literal["slack", "discord", "markdown", "text", "plain"]

# after "@" a mention is no mention: discord.py's escape_mentions does the same
ZERO_WIDTH_SPACE = "\u200b"
# look-alikes for < and >: apprise escapes them for Slack and then turns "!x>", "@x>" and
# "https://x|y>" back into <!x>, <@x> and <https://x|y>, so no > may reach it at all
SINGLE_ANGLE_LEFT, SINGLE_ANGLE_RIGHT = "\u2039", "\u203a"
ANGLES = str.maketrans({"<": SINGLE_ANGLE_LEFT, ">": SINGLE_ANGLE_RIGHT})
# what discord's markdown acts on inline (a ping's lines never start with posting text)
DISCORD_SPECIAL = re.compile(r"([\\`*_~|<>\[\]()])")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
# a markdown link or image is "]" then "(": kept apart, neither is one
LINK_JOIN = re.compile(r"\](?=\()")

LINK_SCHEMES = ("http", "https")
# kept as they are in a link; anything else is percent-encoded, so that no markup
# (< > | [ ] ( ) * ` @, spaces) can end the link or be read beside it
URL_PATH_SAFE = "/%:=&?;,+$!-._~"


# the "text" markup as plain replacements, for templates rendered elsewhere (the Prefect server's alerts)
NEUTRAL_TEXT = (
    ("<", SINGLE_ANGLE_LEFT),
    (">", SINGLE_ANGLE_RIGHT),
    ("@", "@" + ZERO_WIDTH_SPACE),
    ("](", "]" + ZERO_WIDTH_SPACE + "("),
)


def escape(text: str, markup: Markup) -> str:
    """``text`` (made one line) as ``markup`` shows it literally: no mention, link, html or formatting of its own."""
    line = one_line(text)
    match markup:
        case "slack":
            # & is escaped by apprise (and a lone & is read as itself by Slack); newer Slack
            # surfaces read [text](url) too
            return LINK_JOIN.sub("]" + ZERO_WIDTH_SPACE, line.translate(ANGLES))
        case "discord":
            return DISCORD_SPECIAL.sub(r"\\\1", line).replace("@", "@" + ZERO_WIDTH_SPACE)
        case "markdown":
            return MARKDOWN_SPECIAL.sub(r"\\\1", line)
        case "text":
            for found, shown in NEUTRAL_TEXT:
                line = line.replace(found, shown)
            return line
        case "plain":
            return line


def link(url: str) -> str | None:
    """The posting's own http(s) URL as itself, safe to write bare in any markup; None for anything else.

    Another scheme (javascript:, data:, file:), a URL without a host, or one with a user
    part (``https://indeed.com@evil.example/``, a host in disguise) gives None: the job is
    shown without a link. The host is written in ASCII (punycode), so no look-alike letters.
    """
    try:
        parts = urlsplit(one_line(url))
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not host or "@" in parts.netloc:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", ascii_host):
        return None
    if ":" in ascii_host:
        ascii_host = f"[{ascii_host}]"
    where = ascii_host if port is None else f"{ascii_host}:{port}"
    query = "?" + quote(parts.query, safe=URL_PATH_SAFE) if parts.query else ""
    fragment = "#" + quote(parts.fragment, safe=URL_PATH_SAFE) if parts.fragment else ""
    return f"{parts.scheme.lower()}://{where}{quote(parts.path, safe=URL_PATH_SAFE)}{query}{fragment}"
