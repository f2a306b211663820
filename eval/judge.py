"""An OpenAI-compatible LLM judge of grounding: is a sentence entailed by the sources it cites? (ALCE-style)

Used by `rag eval` when RAG_JUDGE_BASE_URL or RAG_JUDGE_API_KEY is set; otherwise the offline check of
rag/answering/grounding.py decides. The judge sees the cited passages and records, never the question or the gold.
"""

from __future__ import annotations

from typing import Any

from rag import Citation, SentenceSupport
from rag.settings import Settings

PROMPT = """You check whether a claim is supported by its sources.

Sources:
{sources}

Claim: {claim}

Reply with exactly one word:
supported - the sources state everything the claim says (figures and names included);
partial - the sources state some of it, but not all;
unsupported - the sources do not state it, or contradict it."""

VERDICTS = ("unsupported", "partial", "supported")  # checked in this order: "supported" is inside "unsupported"


class Judge:
    """Asks one chat model per sentence; unreadable replies count as unsupported."""

    def __init__(self, model: str, client: Any) -> None:
        self.model = model
        self.client = client
        self.name = f"judge:{model}"

    @classmethod
    def from_settings(cls, settings: Settings) -> Judge:
        import openai

        key = settings.judge_api_key or settings.llm_api_key
        client = openai.OpenAI(base_url=settings.judge_base_url, api_key=key.get_secret_value() if key else "no-key",
                               timeout=settings.llm_timeout, max_retries=settings.llm_max_retries)
        return cls(settings.judge_model, client)

    def verdict(self, claim: str, citations: list[Citation]) -> str:
        if not citations:
            return "unsupported"
        sources = "\n\n".join(f"[{c.number}] {c.passage}\nRecord: {c.paper.record_text()}" for c in citations)
        response = self.client.chat.completions.create(
            model=self.model, temperature=0, max_tokens=5,
            messages=[{"role": "user", "content": PROMPT.format(sources=sources, claim=claim)}],
        )
        reply = (response.choices[0].message.content or "").strip().lower()
        return next((v for v in VERDICTS if reply.startswith(v)), "unsupported")

    def check(self, support: list[SentenceSupport], citations: list[Citation]) -> list[SentenceSupport]:
        """The offline verdicts re-decided by the judge (sentences and citation numbers kept)."""
        by_number = {c.number: c for c in citations}
        return [s.model_copy(update={"verdict": self.verdict(s.sentence, [by_number[n] for n in s.citations
                                                                           if n in by_number]),
                                     "method": "judge"}) for s in support]
