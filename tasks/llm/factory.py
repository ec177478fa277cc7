"""Which analyser a run uses, chosen from the settings."""

from __future__ import annotations

import logging

import openai
from prefect.blocks.system import Secret

from jobping.analysis import Analyser
from jobping.profile import load_profile
from jobping.settings import Settings
from tasks.llm.analyser import LLMAnalyser
from tasks.llm.offline import OfflineAnalyser

logger = logging.getLogger(__name__)

# a local openai-compatible server (ollama, vllm) ignores the key, but the sdk wants one
PLACEHOLDER_KEY = "not-needed"


def _api_key(settings: Settings) -> str:
    if settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value()
    if settings.openai_secret_block:
        secret = Secret.load(settings.openai_secret_block, _sync=True)  # type: ignore[call-arg]
        return str(secret.get())  # type: ignore[union-attr]
    return PLACEHOLDER_KEY


def make_analyser(settings: Settings) -> Analyser:
    """The LLM analyser when a key, a secret block or a base URL is set; else the offline one."""
    profile = load_profile(settings.profile_path)
    if not settings.llm_configured:
        return OfflineAnalyser(profile)

    client = openai.AsyncOpenAI(
        api_key=_api_key(settings),
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )
    return LLMAnalyser(
        client,
        profile,
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        description_chars=settings.llm_description_chars,
        max_output_tokens=settings.llm_max_output_tokens,
        price=settings.llm_prices.get(settings.llm_model),
    )
