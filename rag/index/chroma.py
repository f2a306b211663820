"""The Chroma collection: embedded (persistent, under the data dir) or a `chroma run` server, one code path."""

from __future__ import annotations

from urllib.parse import urlparse

import chromadb
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

from rag.settings import Settings

EMBEDDER_KEY = "rag_embedder"


class StoreError(RuntimeError):
    """The vector store cannot be reached or does not fit these settings."""


def client(settings: Settings) -> chromadb.ClientAPI:
    """A Chroma client for the settings: HttpClient when RAG_CHROMA_URL is set, else a PersistentClient."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            port = url.port  # raises ValueError for a port that is not a number in 0..65535
        except ValueError:
            port = -1
        if url.scheme not in {"http", "https"} or not url.hostname or port == -1:
            raise StoreError(f"RAG_CHROMA_URL must look like http://host:port, got {settings.chroma_url!r}")
        try:
            return chromadb.HttpClient(
                host=url.hostname, port=port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https", settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises ValueError/ConnectionError variants
            raise StoreError(f"Chroma server at {settings.chroma_url} is unreachable: {exc}") from exc
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def open_collection(settings: Settings, embedder: str) -> Collection:
    """The collection, created with cosine space; refuses one built by another embedder."""
    return open_store(settings, embedder)[1]


def open_store(settings: Settings, embedder: str) -> tuple[chromadb.ClientAPI, Collection]:
    """The client and the collection (see ``open_collection``); close the client to let go of the store."""
    api = client(settings)
    try:
        collection = api.get_or_create_collection(
            settings.collection,
            configuration={"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": 200}},
            metadata={EMBEDDER_KEY: embedder},
            embedding_function=None,  # we always pass vectors; Chroma's default would download a model
        )
    except Exception as exc:
        raise StoreError(f"cannot open Chroma collection {settings.collection!r}: {exc}") from exc
    built_with = (collection.metadata or {}).get(EMBEDDER_KEY)
    if built_with and built_with != embedder and collection.count():
        raise StoreError(
            f"the index {settings.collection!r} was built with embedder {built_with}, but the settings select "
            f"{embedder}; use the same embedder, or another RAG_COLLECTION / RAG_DATA_DIR and ingest again"
        )
    return api, collection
