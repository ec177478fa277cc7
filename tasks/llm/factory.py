"""Which analyser a run uses, chosen from the settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect.blocks.system import Secret

from jobping.analysis import Analyser
from jobping.errors import ConfigurationError
from jobping.limits import WithinLimits, limits_prompt_version
from jobping.profile import Profile
from jobping.settings import LlmSettings
from tasks.llm.offline import OfflineAnalyser, offline_prompt_version
from tasks.llm.prompt import llm_prompt_version

logger = logging.getLogger(__name__)

# a local openai-compatible server (ollama, vllm) ignores the key, but the sdk wants one
PLACEHOLDER_KEY = "not-needed"


def _api_key(llm: LlmSettings) -> str:
    if llm.api_key is not None:
        return llm.api_key.get_secret_value()
    if llm.secret_block:
        secret = Secret.load(llm.secret_block, _sync=True)  # type: ignore[call-arg]
        return str(secret.get())  # type: ignore[union-attr]
    return PLACEHOLDER_KEY


def prompt_version(llm: LlmSettings, profile: Profile) -> str:
    """The version the analyser these settings choose gives its analyses, without building it.

    No client is made and no Secret block read: the scrape flow needs only this, to skip what
    is already analysed.
    """
    version = llm_prompt_version(llm.model, profile) if llm.configured else offline_prompt_version(profile)
    return limits_prompt_version(version)


def make_analyser(llm: LlmSettings, profile: Profile) -> Analyser:
    """The LLM analyser when a key, a secret block or a base URL is set, else the offline one; either judged
    by the profile's limits (jobping/limits.py), which every path that analyses shares through here."""
    return WithinLimits(_analyser(llm, profile), profile)


def _analyser(llm: LlmSettings, profile: Profile) -> Analyser:
    if not llm.configured:
        return OfflineAnalyser(profile)
    # the openai sdk is imported only when an LLM is configured: importing it slows every start-up
    import openai  # noqa: PLC0415

    from tasks.llm.analyser import LLMAnalyser  # noqa: PLC0415

    client = openai.AsyncOpenAI(
        api_key=_api_key(llm), base_url=llm.base_url, timeout=llm.timeout_seconds, max_retries=llm.max_retries
    )
    analyser = LLMAnalyser(
        client,
        profile,
        model=llm.model,
        temperature=llm.temperature,
        description_chars=llm.description_chars,
        max_output_tokens=llm.max_output_tokens,
        price=llm.prices.get(llm.model),
    )
    if llm.global_limit:
        from tasks.llm.limit import GloballyLimited  # noqa: PLC0415

        return GloballyLimited(analyser, llm.global_limit)
    return analyser


@asynccontextmanager
async def analyser_in_use(analyser: Analyser) -> AsyncIterator[Analyser]:
    """The analyser for the block; what it holds (the global limit's slots) is given back at its end."""
    try:
        yield analyser
    finally:
        close = getattr(analyser, "aclose", None)
        if close is not None:
            await close()


def check_llm(llm: LlmSettings) -> None:
    """Raise a one-line ConfigurationError now when the LLM's key is named by a block that cannot be read."""
    if llm.api_key is not None or not llm.secret_block:
        return
    try:
        _api_key(llm)
    except ValueError as exc:
        raise ConfigurationError(
            f"the Secret block {llm.secret_block!r} (JOBPING_OPENAI_SECRET_BLOCK) cannot be read: create it in "
            "the UI (Blocks > Secret) or unset the variable"
        ) from exc
