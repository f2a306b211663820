"""Token-aware chunks of one paper (tiktoken cl100k_base, the copy LlamaIndex ships), never spanning papers."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import TextNode
from llama_index.core.utils import get_tokenizer

from rag.models import Paper

# Metadata kept on every chunk so filters and citations work from the vector store alone.
# Title and authors are part of the embedded / BM25-indexed text; the rest is for filters and display.
EMBED_KEYS = ("title", "authors")
RECORD_KEY = "record"
RECORD_HASH_KEY = "record_hash"


@lru_cache(maxsize=8)
def _splitter(tokens: int, overlap: int) -> SentenceSplitter:
    return SentenceSplitter(chunk_size=tokens, chunk_overlap=overlap, tokenizer=get_tokenizer())


def count_tokens(text: str) -> int:
    return len(get_tokenizer()(text))


def paper_metadata(paper: Paper) -> dict[str, str | int]:
    return {
        "paper_id": paper.id,
        "title": paper.title or "",
        "authors": "; ".join(paper.authors),
        "year": paper.year or 0,  # Chroma metadata has no null; 0 = unknown (excluded by year filters)
        "arxiv_id": paper.arxiv_id or "",
        "date": paper.date or "",
    }


def record_metadata(paper: Paper) -> dict[str, str]:
    """The whole record (with provenance), stored on the paper's first chunk so that any client of a shared
    Chroma server can rebuild the catalog. Kept out of the LlamaIndex node (which would copy it into every
    query result) and out of the content hash (provenance changes re-embed nothing)."""
    record = paper.model_dump_json()
    return {RECORD_KEY: record, RECORD_HASH_KEY: hashlib.sha1(record.encode()).hexdigest()[:16]}


SOURCE_KEY = "source"


def source_key(paper: Paper, tokens: int, overlap: int, embedder: str) -> str:
    """A digest of everything a paper's chunks are made from, computed without chunking: when the stored chunks
    carry the same one (and all of them are there), an ingest passes the paper over without splitting it."""
    return hashlib.sha1(json.dumps([embedder, tokens, overlap, EMBED_KEYS, paper.abstract, paper_metadata(paper)],
                                   ensure_ascii=False).encode()).hexdigest()[:16]


def chunk_paper(paper: Paper, tokens: int, overlap: int, embedder: str) -> list[TextNode]:
    """The paper's chunks with deterministic ids, a content hash shared by all of them and the source key."""
    texts = _splitter(tokens, overlap).split_text(paper.abstract) or [paper.abstract]
    meta = paper_metadata(paper)
    source = source_key(paper, tokens, overlap, embedder)
    digest = hashlib.sha1(
        json.dumps([embedder, tokens, overlap, EMBED_KEYS, texts, meta], ensure_ascii=False).encode()
    ).hexdigest()[:16]
    nodes = []
    for number, text in enumerate(texts):
        metadata = {**meta, "chunk": number, "chunks": len(texts), "hash": digest, SOURCE_KEY: source}
        nodes.append(
            TextNode(
                id_=f"{paper.id}#{number}",
                text=text,
                metadata=metadata,
                excluded_embed_metadata_keys=[k for k in metadata if k not in EMBED_KEYS],
                excluded_llm_metadata_keys=list(metadata),
            )
        )
    return nodes
