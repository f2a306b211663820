"""LLM answerer through the `openai` client: OpenAI or any OpenAI-compatible server, streaming."""

from __future__ import annotations

import re
import time
from collections.abc import Generator

import openai

from rag.answering.base import Draft, Turn
from rag.models import Hit
from rag.answering.prompts import REFUSAL, SYSTEM, user_message
from rag.settings import Settings


def describe_error(exc: Exception, settings: Settings) -> str:
    """One clear line for an LLM failure."""
    where = settings.llm_base_url or "https://api.openai.com/v1"
    if isinstance(exc, _Deadline):
        return f"LLM endpoint {where} did not finish the answer within {settings.llm_timeout:g}s"
    if isinstance(exc, openai.APITimeoutError):
        return f"LLM endpoint {where} did not answer within {settings.llm_timeout:g}s"
    if isinstance(exc, openai.APIConnectionError):
        return f"LLM endpoint {where} is unreachable ({exc.__cause__ or exc})"
    if isinstance(exc, openai.AuthenticationError):
        return f"LLM endpoint {where} rejected the API key (HTTP 401); check OPENAI_API_KEY / RAG_LLM_API_KEY"
    if isinstance(exc, openai.RateLimitError):
        return f"LLM endpoint {where} is rate-limiting (HTTP 429) after {settings.llm_max_retries} retries"
    if isinstance(exc, openai.NotFoundError):
        return (f"LLM endpoint {where} has no model {settings.llm_model!r} (HTTP 404: {exc.message[:120]}); "
                "check RAG_LLM_MODEL, and that the base URL ends with the API root (usually /v1)")
    if isinstance(exc, openai.APIStatusError):
        return f"LLM endpoint {where} failed with HTTP {exc.status_code}: {str(exc)[:200]}"
    return f"LLM call failed: {exc}"


class _Deadline(Exception):
    """The whole answer took longer than llm_timeout (each read was on time, the sum was not)."""


_CITED = re.compile(r"\[\s*\d")


_CITATION_GROUP = re.compile(r"\[[\d\s,;\-–]*\]")


def is_refusal(text: str) -> bool:
    """True when the answer is nothing but the refusal: no text, REFUSAL with no citation after it, or only
    citation marks and refusals (small models answer "[1] The collection does not say. [2] …" or "[1] [2]").

    "X is 5 [1]. The sources do not say Y." answers a part and is an answer, not an abstention.
    """
    flat = " ".join(text.split()).lower()
    if not flat or (flat.startswith(REFUSAL.lower().rstrip(".")) and not _CITED.search(flat)):
        return True
    rest = _CITATION_GROUP.sub(" ", flat)
    if _OWN_WORDS_REFUSAL.fullmatch(rest.strip()):
        return True
    return not re.search(r"[a-z0-9]", rest.replace(REFUSAL.lower().rstrip("."), " "))


# The refusal in a model's own words, as the whole answer: "The sources do not say." (a 1.5B model's habit).
_OWN_WORDS_REFUSAL = re.compile(r"(the )?(collection|sources?|(provided |given )?abstracts?|context) (does|do) not "
                                r"(say|state|mention|contain|provide|answer|address)( (this|that|so|it))?\.?")


class LLMAnswerer:
    """Numbered sources in, cited answer out; refusal when the sources do not hold the answer."""

    name = "llm"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        # Local servers (Ollama, llama.cpp, vLLM) accept any key; the client insists on one.
        self.client = openai.OpenAI(
            base_url=settings.llm_base_url,
            api_key=key or "no-key",
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )

    def messages(self, question: str, hits: list[Hit], history: list[Turn]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": SYSTEM}]
        for turn in history[-self.settings.history_turns:] if self.settings.history_turns else []:
            messages.append({"role": "user", "content": turn.question})
            messages.append({"role": "assistant", "content": turn.answer})
        messages.append({"role": "user", "content": user_message(question, hits)})
        return messages

    def generate(self, question: str, hits: list[Hit], history: list[Turn]) -> Generator[str, None, Draft]:
        parts: list[str] = []
        stream = None
        deadline = time.monotonic() + self.settings.llm_timeout  # for the whole answer, not each read
        try:
            stream = self.client.chat.completions.create(
                model=self.settings.llm_model,
                messages=self.messages(question, hits, history),  # type: ignore[arg-type]
                temperature=self.settings.llm_temperature,
                max_tokens=self.settings.llm_max_tokens,
                stream=True,
            )
            for chunk in stream:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    parts.append(delta)
                    yield delta
                if time.monotonic() > deadline:
                    raise _Deadline
        except (openai.OpenAIError, _Deadline) as exc:
            return Draft(text="".join(parts), error=describe_error(exc, self.settings))
        finally:
            # A reader that stops early (closed UI, Ctrl-C) closes this generator: hang up, so the
            # connection is not left open and the server stops generating.
            if stream is not None:
                stream.close()
        text = "".join(parts).strip()
        refused = is_refusal(text)
        return Draft(text=REFUSAL if refused else text, abstained=refused)
