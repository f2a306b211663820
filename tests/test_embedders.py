"""Embedding providers: the offline default, and the OpenAI-compatible path against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag import Assistant, Settings
from rag.index.embedders import EmbedderError, embedder_id, make_embedder
from rag.index.chroma import StoreError
from tests.conftest import SEEDS
from tests.llama_server import EMBEDDING_PROBE, MEAN_POOLING, llama_server


def test_local_embedder_is_offline_and_normalised():
    model = make_embedder(Settings())
    vector = model.get_query_embedding("score matching for GANs")
    assert len(vector) == 384
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-3
    assert make_embedder(Settings()) is model  # loaded once per process


def test_embedder_ids_name_model_and_endpoint():
    assert embedder_id(Settings()) == "local:all-MiniLM-L6-v2"
    remote = Settings(embedder="openai", embed_model="m", embed_base_url="http://127.0.0.1:9/v1")
    assert embedder_id(remote) == "openai:m@http://127.0.0.1:9/v1"


def test_openai_embedder_needs_a_key_or_url():
    with pytest.raises(EmbedderError, match="OPENAI_API_KEY"):
        make_embedder(Settings(embedder="openai"))


def test_unreachable_embeddings_endpoint_is_a_clear_error(tmp_path):
    assistant = Assistant(Settings(embedder="openai", embed_base_url="http://127.0.0.1:9/v1", llm_timeout=2))
    with pytest.raises(EmbedderError, match="embeddings endpoint failed"):
        assistant.ingest(SEEDS / "000_5005df3c1c9c486a.txt", progress=False)


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory) -> Iterator[str]:
    """llama.cpp's server in embedding mode: a real OpenAI-compatible /v1/embeddings endpoint."""
    with llama_server(tmp_path_factory.mktemp("llama-embed"), ["--embedding", "true"], EMBEDDING_PROBE,
                      [MEAN_POOLING]) as url:
        yield url


@pytest.mark.slow
def test_ingest_and_search_through_a_real_embeddings_server(embedding_server, tmp_path):
    settings = Settings(data_dir=tmp_path / "remote", embedder="openai", embed_model="smollm2",
                        embed_base_url=embedding_server, embed_batch_size=4)
    assistant = Assistant(settings)
    report = assistant.ingest(SEEDS / "000_5005df3c1c9c486a.txt", progress=False)
    assert (report.added, report.papers) == (7, 7)
    assert assistant.index.count() >= 7
    hits = assistant.search("score matching regularity for GANs", k=3)
    assert hits and hits[0].paper.title.startswith("SMaRt")  # BM25 carries it; the dense side must not break it
    assert all(h.similarity is None or -1.0 <= h.similarity <= 1.0 for h in hits)
    # The index remembers this embedder: the offline default may not open it.
    with pytest.raises(StoreError, match=f"openai:smollm2@{embedding_server}"):
        Assistant(Settings(data_dir=tmp_path / "remote")).search("GAN")
