"""Company, title and place of a posting, written one way whichever board wrote them.

Two boards write the same job differently: "Wiener Würfel GmbH" and "Wiener Wuerfel", "Sr. Data
Engineer (m/w/d)" and "Data Engineer, Senior", "München, Bayern, Deutschland" and "Munich, BY, DE".
Each normaliser maps such spellings to one string and keeps apart what names another job: a
seniority word, another city. The word lists are data: ``jobping/lexicon/*.json``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache
from importlib import resources
from typing import Any

DATA_PACKAGE = "jobping"
# not "data/": the repository ignores every folder of that name
DATA_FOLDER = "lexicon"
# german umlauts written without the dots: after accent folding "ü" and "ue" both become "u"
UMLAUT_DIGRAPHS = re.compile(r"([aou])e")
# a dot inside a word is part of it ("node.js", "b.v."): dropped, not turned into a space
INNER_DOT = re.compile(r"(?<=\w)\.(?=\w)")
APOSTROPHES = re.compile("['\u2019`\u00b4]")
# hyphen, en dash, em dash, bar: what boards put between a title and its " - Remote"
DASHES = "-\u2013\u2014|"
NOT_WORD = re.compile(r"[\W_]+")
MARKER = r"(?:m|w|f|d|x|h|div|divers|diverse|all)"
SLASHED_MARKER = rf"{MARKER}(?:\s*[/|,]\s*{MARKER})+\.?"
GENDER_MARKERS = re.compile(
    rf"[(\[]\s*(?:{SLASHED_MARKER}|all\s+genders?|alle\s+geschlechter|gn\*?|genderneutral)\s*[)\]]"
    rf"|(?<!\w){MARKER}(?:\s*/\s*{MARKER})+\.?(?!\w)"
)
# german gender endings: "Entwickler*in", "Entwickler:innen", "Entwickler/-in"
GENDER_ENDINGS = re.compile(r"(?<=[^\W\d_])(?:\*|:|_|/-?)in(?:nen)?\b")
MID_LEVEL = re.compile(r"\bmid[\s-]*level\b")
# a trailing " - Remote", ", Berlin", "(Hybrid)" or "| Wien / Remote" after the title proper
TRAILING_SEGMENT = re.compile(
    rf"^(?P<head>.*?\S)\s*(?:\s[{DASHES}]\s*|[{DASHES}]\s|,\s*|[(\[]\s*)(?P<tail>[^{DASHES},()\[\]]+?)\s*[)\]]?\s*$"
)
DECORATION_PARTS = re.compile(r"\s*(?:[/&+]|\bor\b|\band\b)\s*")
# letters that are not an accented base letter, so NFKD leaves them alone
LETTERS = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "\u0131": "i"})
PLACE_PARTS = re.compile(rf"\s*(?:[,/|()]|\s[{DASHES}]\s)\s*")
# two letters are too often a word of the title ("IT Support - LA") to be read as a place there
MIN_DECORATION_CHARS = 3


def fold(text: str) -> str:
    """Casefolded, accents and umlaut spellings folded: "Würfel", "Wuerfel" and "Wurfel" alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return UMLAUT_DIGRAPHS.sub(r"\1", bare)


def words(text: str) -> list[str]:
    """The folded words of ``text``, punctuation dropped."""
    text = APOSTROPHES.sub("", INNER_DOT.sub("", fold(text)))
    return NOT_WORD.sub(" ", text).split()


@cache
def _data(name: str) -> dict[str, Any]:
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FOLDER, name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def lexicon(name: str) -> dict[str, Any]:
    """The word list ``jobping/lexicon/<name>``, read once."""
    return _data(name)


def _phrase(text: str) -> str:
    return " ".join(words(text))


@cache
def _legal_suffixes() -> tuple[tuple[str, ...], ...]:
    forms = {tuple(words(form)) for form in _data("companies.json")["legal_suffixes"]}
    # longest first, so "gmbh co kg" goes as one form and does not leave "gmbh" behind
    return tuple(sorted(forms, key=len, reverse=True))


@cache
def _cities() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, variants in _data("places.json")["cities"].items():
        for variant in (canonical, *variants):
            table[_phrase(variant)] = _phrase(canonical)
    return table


@cache
def _countries() -> dict[str, str]:
    return {_phrase(v): code for code, variants in _data("places.json")["countries"].items() for v in variants}


@cache
def _remote_words() -> frozenset[str]:
    return frozenset(_phrase(word) for word in _data("places.json")["remote_words"])


@cache
def _title_aliases() -> dict[str, tuple[str, ...]]:
    aliases: dict[str, str] = _data("titles.json")["aliases"]
    return {_phrase(short): tuple(words(long)) for short, long in aliases.items()}


@cache
def _title_decorations() -> frozenset[str]:
    names = {*_cities(), *_cities().values(), *_countries(), *(_phrase(w) for w in _data("titles.json")["decorations"])}
    return frozenset(name for name in names if len(name) >= MIN_DECORATION_CHARS)


def normalise_company(name: str | None) -> str:
    """The company's name without legal form, punctuation, accents or "&": "" when there is none."""
    connectors = set(_data("companies.json")["connectors"])
    tokens = [token for token in words(name or "") if token not in connectors]
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    stripped = True
    while stripped:
        stripped = False
        for form in _legal_suffixes():
            # the last word always stays: a company called "Company" is still a company
            if len(tokens) > len(form) and tuple(tokens[-len(form) :]) == form:
                tokens = tokens[: -len(form)]
                stripped = True
                break
    return " ".join(tokens)


def _without_decorations(title: str) -> str:
    decorations = _title_decorations()
    while match := TRAILING_SEGMENT.match(title):
        parts = [_phrase(part) for part in DECORATION_PARTS.split(match["tail"])]
        if not all(part in decorations for part in parts if part):
            break
        title = match["head"]
    return title


def normalise_title(title: str | None) -> str:
    """The title's words, sorted, without gender markers or a place suffix; seniority kept, spelt out."""
    text = (title or "").casefold()
    for symbol, word in _data("titles.json")["symbols"].items():
        text = text.replace(symbol, word)
    text = GENDER_ENDINGS.sub("", GENDER_MARKERS.sub(" ", text))
    text = _without_decorations(MID_LEVEL.sub("mid", text.strip()))
    aliases = _title_aliases()
    tokens = {part for token in words(text) for part in aliases.get(token, (token,))}
    return " ".join(sorted(tokens))


def _city(part: str) -> str:
    cities = _cities()
    if part in cities:
        return cities[part]
    area = set(_data("places.json")["area_words"])
    # linkedin's "Greater Munich Metropolitan Area" is munich
    core = " ".join(token for token in part.split() if token not in area) or part
    return cities.get(core, core)


def normalise_place(location: str | None, is_remote: bool | None) -> str:
    """The city, in one spelling; else "remote" and the country, if the posting names one.

    A posting with a city is placed there whatever its ``is_remote`` says: boards disagree about
    the flag for one and the same posting (the bundled sample has True on glassdoor, None on google).
    """
    parts = [_phrase(part) for part in PLACE_PARTS.split(location or "")]
    parts = [part for part in parts if part and part not in _remote_words()]
    country = ""
    if parts and parts[-1] in _countries():
        country = _countries()[parts.pop()]
    if parts:
        return _city(parts[0])
    if not country and not location and is_remote is False:
        return ""
    return f"remote {country}".strip()


def places_named(location: str | None) -> frozenset[str]:
    """The city (in one spelling) and the country code a location names, remote words left out.

    "München, BY, Deutschland" names {"munich", "de"}; "London" names {"london"}; "uk" names {"uk"};
    "Remote" names nothing.
    """
    parts = [_phrase(part) for part in PLACE_PARTS.split(location or "")]
    parts = [part for part in parts if part and part not in _remote_words()]
    named: set[str] = set()
    if parts and parts[-1] in _countries():
        named.add(_countries()[parts.pop()])
    if parts:
        named.add(_city(parts[0]))
    return frozenset(named)
