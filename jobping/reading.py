"""What a posting says of itself, read in English, German or French: its seniority, how it is worked, its role.

Pure rules over the posting's own words (the word lists are data: ``jobping/lexicon/judging.json``),
shared by the hard limits (jobping/limits.py) and the offline analyser, so that both read a
posting alike. Each answers "unknown" or None where the posting does not say.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from jobping.analysis import RemotePolicy, Seniority
from jobping.contract import JobPosting
from jobping.names import fold, lexicon

# a word of a phrase: letters, digits and the signs skills are spelt with (c++, c#, ci/cd, node.js)
WORD = r"[\w+#/.%-]"
# how many words before a phrase a negation reaches: "no on-call", "without any security clearance"
NEGATION_REACH = 3
# how far after a phrase a negation reaches: "security clearance is not required", a few words on
NEGATION_AFTER_CHARS = 30
# a board's work-from-home type ("Hybrid", "Remote", "On-site"), by a word of it
WFH_WORDS: tuple[tuple[str, RemotePolicy], ...] = (
    ("hybrid", "hybrid"), ("remote", "remote"), ("site", "onsite"), ("office", "onsite"),
)  # fmt: skip


def _lexicon() -> dict[str, Any]:
    return lexicon("judging.json")


@cache
def _pattern(phrase: str) -> re.Pattern[str]:
    """``phrase`` (folded) as whole words: "go" is not found in "google", "c++" is found in "c++17"."""
    return re.compile(r"(?<![\w+#])" + re.escape(fold(phrase)) + r"(?![\w+#])")


def mentions(text: str, phrase: str) -> bool:
    """Whether the folded ``text`` holds ``phrase`` as whole words."""
    return bool(_pattern(phrase).search(text))


def mentions_affirmed(text: str, phrase: str) -> bool:
    """Whether the folded ``text`` holds ``phrase`` other than negated: by a word before it ("no on-call",
    "ohne Bereitschaft") or words after it ("security clearance is not required", "astreinte non requise")."""
    negations = set(_lexicon()["negations"])
    for found in _pattern(phrase).finditer(text):
        before = re.findall(r"\w+", text[max(0, found.start() - 60) : found.start()])[-NEGATION_REACH:]
        # within the phrase's own sentence
        after = re.split(r"[.;!?]", text[found.end() : found.end() + NEGATION_AFTER_CHARS], maxsplit=1)[0]
        if not negations & set(before) and not any(mentions(after, words) for words in _lexicon()["negations_after"]):
            return True
    return False


def folded_text(posting: JobPosting) -> str:
    """The posting's title, description, skills and level, folded: what its words are looked for in."""
    parts = (posting.title, posting.description, posting.skills, posting.job_level)
    return fold(" ".join(part for part in parts if part))


def title_seniority(posting: JobPosting) -> Seniority:
    """The seniority the title names (else the board's job level); "unknown" when neither says."""
    title = fold(posting.title).replace("sr.", "sr ").replace("jr.", "jr ")
    for phrase in _lexicon()["not_seniority"]:
        title = title.replace(fold(phrase), " ")
    levels: dict[str, list[str]] = _lexicon()["seniority_in_title"]
    for level, phrases in levels.items():
        if any(mentions(title, phrase) for phrase in phrases):
            return level  # type: ignore[return-value]
    first = title.split(maxsplit=1)[:1]
    openers: dict[str, str] = _lexicon()["seniority_as_first_word"]
    if first and first[0] in openers:
        return openers[first[0]]  # type: ignore[return-value]
    by_level: dict[str, str] = _lexicon()["seniority_by_level"]
    return by_level.get(fold(posting.job_level or "").strip(), "unknown")  # type: ignore[return-value]


def _hybrid(text: str) -> bool:
    after = "|".join(re.escape(word) for word in _lexicon()["not_hybrid"])
    # "hybrid cloud" and "hybrid app" say nothing of where one works
    return any(
        re.search(r"(?<!\w)" + re.escape(fold(phrase)) + rf"(?!\w)(?!\W+(?:{after})\b)", text)
        for phrase in _lexicon()["remote_policy"]["hybrid"]
    )


def stated_remote_policy(posting: JobPosting) -> RemotePolicy:
    """How the posting says the job is worked: its board's work-from-home type, else its own words.

    The board's ``is_remote`` flag is not read here: boards set True for a hybrid job and False for
    one they know nothing of; :func:`remote_policy` weighs it last.
    """
    wfh = fold(posting.text("work_from_home_type") or "")
    for word, policy in WFH_WORDS:
        if word in wfh:
            return policy
    text = fold(f"{posting.location or ''} {posting.description or ''}")
    if _hybrid(text):
        return "hybrid"
    cues: dict[str, list[str]] = _lexicon()["remote_policy"]
    said: RemotePolicy
    for said in ("remote", "onsite"):
        if any(mentions(text, phrase) for phrase in cues[said]):
            return said
    return "unknown"


def remote_policy(posting: JobPosting, judged: RemotePolicy = "unknown") -> RemotePolicy:
    """How the job is worked: the posting's own words, else its remote flag, else ``judged`` (an analyser's
    reading), else a board's "not remote" flag taken as on-site when the posting's description, silent on
    it, was read; "unknown" when nothing says.

    Boards set "not remote" for jobs they know nothing of: without a description it says nothing, and a
    posting is not judged on-site (a broken limit) for what it does not say.
    """
    stated = stated_remote_policy(posting)
    if stated != "unknown":
        return stated
    if posting.is_remote:
        return "remote"
    if judged != "unknown":
        return judged
    return "onsite" if posting.is_remote is False and posting.description else "unknown"


def title_words(title: str) -> frozenset[str]:
    """A title's words in English, role words made one ("developer" is "engineer"), filler dropped.

    "Ingénieur de données (H/F)", "Datenengineer (m/w/d)" and "Data Engineer" give the same words; an
    engineer of a language a backend is written in is a backend engineer ("Go Engineer", "Java-Entwickler").
    """
    lexicon = _lexicon()
    text = fold(title)
    # the lexicon's words folded as the title is: "automatique" is read as "automatiqu"
    translations = {fold(word): english for word, english in lexicon["title_words"].items()}
    for phrase in sorted((p for p in translations if " " in p or "-" in p), key=len, reverse=True):
        text = text.replace(phrase, translations[phrase])
    tokens: list[str] = []
    for token in re.findall(r"[\w+#]+", text):
        tokens.extend(translations.get(token, token).split())
    same: dict[str, str] = lexicon["same_role"]
    filler = set(lexicon["title_filler"])
    found = {same.get(token, token) for token in tokens if token not in filler}
    if "engineer" in found and found & {fold(word) for word in lexicon["server_languages"]}:
        found.add("backend")
    return frozenset(found)


def related_roles(title: str) -> tuple[frozenset[str], ...]:
    """The roles close to a title (its groups in the lexicon's ``related_roles``), as :func:`title_words` gives them."""
    words = title_words(title)
    groups = [[title_words(role) for role in group] for group in _lexicon()["related_roles"]]
    return tuple(role for group in groups if any(role <= words or words <= role for role in group) for role in group)
