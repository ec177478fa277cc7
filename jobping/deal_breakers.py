"""A profile's deal-breakers read as concepts, found in a posting however it words them, in English, German or French.

A deal-breaker is read for the concepts its words name (the word lists are data:
``jobping/lexicon/deal_breakers.json``): "on-call 24/7" names on-call and around-the-clock,
"Zeitarbeit" names agency work, "travel 50%" names travel and much-of-the-time. A posting breaks it
when one of its sentences holds a phrasing of every concept named, none of them negated ("no
on-call", "kein Bereitschaftsdienst", "pas d'astreinte" are none): "Rufbereitschaft rund um die Uhr",
"placed through a temporary staffing agency" and "déplacements fréquents" break those three. A
deal-breaker that names no concept is looked for in its own words; one that names some is not,
since its words alone often say something else ("relocation" in "relocation support offered").
Alternatives ("crypto or gambling") are read one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from jobping.names import fold, lexicon
from jobping.reading import mentions, mentions_affirmed

# where one sentence ends and the next begins: a stop followed by a space, a line break, a bar between flags
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+|\s\|\s")


@dataclass(frozen=True)
class Concept:
    """One thing people rule out: the words a profile names it by, the ways postings say it."""

    name: str
    names: tuple[str, ...]
    phrases: tuple[str, ...]
    # says how much of another concept ("50%", "frequent"): never named alone
    qualifier: bool = False


def spellings(phrase: str) -> tuple[str, ...]:
    """A phrase as it is written in any of its ways: "on-call" or "on call", "50%" or "50 %"."""
    folded = fold(phrase.strip())
    ways = {folded, folded.replace("-", " "), folded.replace(" ", "-")}
    ways |= {way.replace(" %", "%") for way in ways} | {re.sub(r"(?<=\d)%", " %", way) for way in ways}
    return tuple(sorted(way for way in ways if way))


@cache
def concepts() -> tuple[Concept, ...]:
    """Every concept of the lexicon."""
    table = lexicon("deal_breakers.json")["concepts"]
    return tuple(
        Concept(
            name=name,
            names=tuple(way for word in entry["names"] for way in spellings(word)),
            phrases=tuple(way for word in entry["phrases"] for way in spellings(word)),
            qualifier=bool(entry.get("qualifier", False)),
        )
        for name, entry in table.items()
    )


def alternatives(breaker: str) -> list[str]:
    """A deal-breaker's alternatives: "crypto or gambling" is two, "on-call 24/7" one."""
    joins = "|".join(re.escape(word) for word in lexicon("deal_breakers.json")["alternatives"])
    return [part.strip() for part in re.split(rf"[,;]|\s(?:{joins})\s", fold(breaker)) if part.strip()]


def named_concepts(breaker: str) -> tuple[Concept, ...]:
    """The concepts one alternative of a deal-breaker names; none when it names qualifiers alone."""
    named = tuple(concept for concept in concepts() if any(mentions(breaker, name) for name in concept.names))
    return named if any(not concept.qualifier for concept in named) else ()


def _said(sentence: str, concept: Concept) -> bool:
    return any(mentions_affirmed(sentence, phrase) for phrase in concept.phrases)


def sentences(text: str) -> list[str]:
    """The folded text's sentences: where a negation reaches and where concepts must meet."""
    return [part for part in SENTENCE_END.split(text) if part.strip()]


def breaks(breaker: str, text: str) -> bool:
    """Whether the folded ``text`` says what the deal-breaker rules out, in its words or in any of its concepts'."""
    parts = sentences(text)
    for alternative in alternatives(breaker):
        named = named_concepts(alternative)
        if named and any(all(_said(part, concept) for concept in named) for part in parts):
            return True
        if not named and any(mentions_affirmed(part, way) for part in parts for way in spellings(alternative)):
            return True
    return False
