"""The LLM analyser: Chat Completions structured output, bounded concurrency, errors that say what to do."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import openai
from pydantic import ValidationError

from jobping.analysis import AnalysisResult, JobAnalysis
from jobping.contract import JobPosting
from jobping.errors import ConfigurationError, PostingRejectedError, TransientError, describe
from jobping.profile import Profile
from jobping.settings import ModelPrice
from jobping.text import one_line
from tasks.llm.prompt import llm_prompt_version, system_message, user_message

if TYPE_CHECKING:
    from openai.types.chat import ParsedChatCompletionMessage

logger = logging.getLogger(__name__)

ANSWER_ATTEMPTS = 2
TOKENS_PER_MILLION = 1_000_000
MAX_REASON_CHARS = 300


class LLMUnavailableError(TransientError):
    """Rate limits, server errors, timeouts: the same request may succeed later."""


class LLMConfigurationError(ConfigurationError):
    """The key, the model or the server is wrong: no posting can be analysed until it is fixed."""


class Usage:
    """Tokens spent on one posting, across its attempts, read from the raw answer."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(self, body: object) -> None:
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict):
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)


def cost_usd(price: ModelPrice | None, prompt_tokens: int, completion_tokens: int) -> float:
    if price is None:
        return 0.0
    spent = prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
    return round(spent / TOKENS_PER_MILLION, 8)


class LLMAnalyser:
    """Judges one posting per request; the caller bounds how many requests are in flight."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        profile: Profile,
        *,
        model: str,
        temperature: float | None,
        description_chars: int,
        max_output_tokens: int,
        price: ModelPrice | None,
    ) -> None:
        self._client = client
        self._system = system_message(profile)
        self._model = model
        self._temperature = temperature
        self._description_chars = description_chars
        self._max_output_tokens = max_output_tokens
        self._price = price
        self._version = llm_prompt_version(model, profile)
        if price is None:
            logger.warning("no price known for model %s: costs are recorded as 0 (set JOBPING_LLM_PRICES)", model)

    @property
    def model(self) -> str:
        return self._model

    @property
    def prompt_version(self) -> str:
        return self._version

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        content, cut = user_message(posting, self._description_chars)
        usage = Usage()
        problem = "no answer"
        for _ in range(ANSWER_ATTEMPTS):
            message = await self._ask(content, usage)
            if isinstance(message, str):
                problem = message
                continue
            if message.refusal:
                # one line: a refusal's newline must not forge a log line of its own
                raise PostingRejectedError(f"the model refused: {one_line(message.refusal, MAX_REASON_CHARS)}")
            if message.parsed is None:
                problem = "the answer was empty"
                continue
            return AnalysisResult(
                analysis=message.parsed,
                model=self._model,
                prompt_version=self._version,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=cost_usd(self._price, usage.prompt_tokens, usage.completion_tokens),
                description_cut=cut,
            )
        raise PostingRejectedError(f"the answer failed validation {ANSWER_ATTEMPTS} times: {problem}")

    async def _ask(self, content: str, usage: Usage) -> ParsedChatCompletionMessage[JobAnalysis] | str:
        """One request: the parsed message, or why its answer did not validate."""
        extra: dict[str, float] = {} if self._temperature is None else {"temperature": self._temperature}
        try:
            raw = await self._client.chat.completions.with_raw_response.parse(
                model=self._model,
                messages=[{"role": "system", "content": self._system}, {"role": "user", "content": content}],
                response_format=JobAnalysis,
                max_completion_tokens=self._max_output_tokens,
                **extra,  # type: ignore[arg-type]
            )
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError) as exc:
            raise LLMUnavailableError(f"the LLM is unavailable: {type(exc).__name__}") from None
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError("the LLM server could not be reached") from exc
        # an error body may echo the request's Authorization header: it is dropped (from None), never
        # chained into a traceback that Prefect logs and stores; the status says what happened
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise LLMConfigurationError(
                f"the LLM refused the configuration: {type(exc).__name__} {exc.status_code}"
            ) from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409, 429):
                raise LLMUnavailableError(f"the LLM answered {exc.status_code}") from None
            raise PostingRejectedError(f"the LLM refused this posting: {exc.status_code}") from None
        try:
            usage.add(json.loads(raw.http_response.content))
        except ValueError:
            logger.warning("the LLM's answer was not JSON")
        try:
            return raw.parse().choices[0].message
        except openai.LengthFinishReasonError as exc:
            raise PostingRejectedError("the answer was cut off at the output token limit") from exc
        except openai.ContentFilterFinishReasonError as exc:
            raise PostingRejectedError("the answer was stopped by the content filter") from exc
        except ValidationError as exc:
            reason = describe(exc, show_input=False)
        except (ValueError, IndexError) as exc:
            reason = one_line(exc, MAX_REASON_CHARS)
        logger.warning("the model's answer failed validation: %s", reason)
        return reason
