"""The search index: chunks in Chroma (dense) plus a persisted BM25 index (lexical) kept consistent with it.

Consistency: every sync stores a fingerprint of Chroma's chunk set in the collection's metadata and
beside the BM25 files; when they differ on open (a killed ingest, another process, a Chroma server
shared by several machines) the BM25 index is rebuilt from Chroma, the source of truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Iterator

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import VectorStoreQueryResult
from llama_index.core.vector_stores.utils import metadata_dict_to_node
from llama_index.retrievers.bm25 import BM25Retriever
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

from rag.index.chunking import RECORD_HASH_KEY, RECORD_KEY, SOURCE_KEY, chunk_paper, record_metadata, source_key
from rag.models import Paper
from rag.settings import Settings
from rag.index.chroma import EMBEDDER_KEY, open_store


FINGERPRINT_KEY = "rag_fingerprint"
_PAGE = 5000  # rows per Chroma get(); keeps memory flat on large collections


def _tally(state: dict[str, tuple[str, int]], meta: dict) -> None:
    """Count one chunk into paper_id -> (hash, chunks)."""
    pid, digest = str(meta.get("paper_id")), str(meta.get("hash"))
    old = state.get(pid)
    # Chunks of one paper with two hashes = a half-replaced paper: it counts as changed.
    state[pid] = (digest if not old or old[0] == digest else "mixed", (old[1] if old else 0) + 1)


class LexicalRetriever(BM25Retriever):
    """LlamaIndex's BM25 retriever, minus the zero-score padding bm25s returns when few terms match."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [n for n in super()._retrieve(query_bundle) if (n.score or 0) > 0]


class CorpusBackedChromaStore(ChromaVectorStore):
    """LlamaIndex's Chroma store that asks Chroma for ids and distances only.

    On the seeds, a 30-result Chroma query takes 0.7 ms for ids and distances but 5.4 ms with each chunk's
    text and metadata; the BM25 corpus already holds those same chunks in memory, kept consistent with
    Chroma by the fingerprint. Chunks the corpus lacks (just added to a shared server by another client)
    are fetched from Chroma, so a result is never dropped for being new. A chunk another client *changed*
    is shown with its previous text until this client's BM25 index is rebuilt (next open or ingest), the
    same lag the BM25 side has always had.
    """

    _chunks: Callable[[], dict[str, dict]] = PrivateAttr()

    def __init__(self, chunks: Callable[[], dict[str, dict]], **kwargs) -> None:
        super().__init__(**kwargs)
        self._chunks = chunks

    def _query(self, query_embeddings: list[float], n_results: int, where: dict, **kwargs) -> VectorStoreQueryResult:
        if kwargs:  # an include= or where_document= of the caller: LlamaIndex's own path
            return super()._query(query_embeddings, n_results, where, **kwargs)
        found = self._collection.query(query_embeddings=query_embeddings, n_results=n_results,
                                       where=where or None, include=["distances"])  # type: ignore[arg-type]
        ids, distances = found["ids"][0], (found["distances"] or [[]])[0]
        known = self._chunks()
        nodes: dict[str, BaseNode] = {}
        missing = [i for i in ids if i not in known]
        if missing:
            got = self._collection.get(ids=missing, include=["metadatas", "documents"])  # type: ignore[list-item]
            for chunk_id, meta, doc in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True):
                nodes[chunk_id] = metadata_dict_to_node(dict(meta), text=doc)
        result = VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        for chunk_id, distance in zip(ids, distances, strict=True):
            node = nodes.get(chunk_id) or (metadata_dict_to_node(known[chunk_id]) if chunk_id in known else None)
            if node is None:
                continue  # deleted between the query and the fetch
            result.nodes.append(node)  # type: ignore[union-attr]
            result.similarities.append(math.exp(-distance))  # type: ignore[union-attr]  # as LlamaIndex reports it
            result.ids.append(chunk_id)  # type: ignore[union-attr]
        return result


class Index:
    """Chroma collection + LlamaIndex vector index + BM25, for one embedder."""

    def __init__(self, settings: Settings, embed_model: BaseEmbedding, embedder: str) -> None:
        self.settings = settings
        self.embed_model = embed_model
        self.embedder = embedder
        self.client, self.collection = open_store(settings, embedder)
        self.seen: str | None = None  # the store's fingerprint this index reflects (see ``current``)
        self.vector_store = CorpusBackedChromaStore(self.chunks, chroma_collection=self.collection)
        self.vector_index = VectorStoreIndex.from_vector_store(self.vector_store, embed_model=embed_model)
        self.bm25_dir = settings.data_dir / "bm25" / settings.collection
        self.lexical: LexicalRetriever | None = None
        self._by_id: tuple[LexicalRetriever | None, dict[str, dict]] = (None, {})
        self._load_lexical()

    # -- state ---------------------------------------------------------------------------------
    def _rows(self, include: list[str]) -> Iterator[tuple[str, dict, str | None]]:
        offset = 0
        while True:
            page = self.collection.get(include=include, limit=_PAGE, offset=offset)  # type: ignore[arg-type]
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [None] * len(ids)
            for chunk_id, meta, doc in zip(ids, page["metadatas"] or [], docs, strict=True):
                yield chunk_id, dict(meta or {}), doc
            offset += len(ids)

    def state(self) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
        """As Chroma holds them: paper_id -> (content hash, chunks present), and paper_id -> stored record hash."""
        seen, records, _, _ = self._state()
        return seen, records

    def _state(self) -> tuple[dict[str, tuple[str, int]], dict[str, str], set[str], dict[str, tuple[str, int]]]:
        seen: dict[str, tuple[str, int]] = {}
        records: dict[str, str] = {}
        stored: set[str] = set()  # chunk ids
        sources: dict[str, tuple[str, int]] = {}  # paper id -> (source key, chunks the paper has), when stored
        for chunk_id, meta, _ in self._rows(["metadatas"]):
            _tally(seen, meta)
            stored.add(chunk_id)
            pid = str(meta.get("paper_id"))
            if RECORD_HASH_KEY in meta:
                records[pid] = str(meta[RECORD_HASH_KEY])
            if SOURCE_KEY in meta:
                sources[pid] = (str(meta[SOURCE_KEY]), int(meta.get("chunks") or 0))
        return seen, records, stored, sources

    def _fingerprint(self, state: dict[str, tuple[str, int]]) -> str:
        return hashlib.sha1(json.dumps(sorted(state.items())).encode()).hexdigest()

    def _set_fingerprint(self, value: str) -> None:
        self.collection.modify(metadata={EMBEDDER_KEY: self.embedder, FINGERPRINT_KEY: value})
        self.seen = value

    def count(self) -> int:
        return self.collection.count()

    def stored_fingerprint(self) -> str | None:
        """The fingerprint the store holds now, read afresh (another process or machine may have changed it)."""
        fresh = self.client.get_collection(self.settings.collection, embedding_function=None)  # type: ignore[arg-type]
        return (fresh.metadata or {}).get(FINGERPRINT_KEY)

    def current(self) -> bool:
        """Whether this index still reflects the store: no other process has written to it since."""
        return self.stored_fingerprint() == self.seen

    def close(self) -> None:
        """Let go of the store. An embedded Chroma keeps its vector index in memory, where another process's
        writes never reach it: closing, then opening a new Index, is how a process sees them."""
        self.client.close()

    def records(self) -> list[Paper]:
        """The paper records stored with the chunks (what a client of a shared server rebuilds its catalog from)."""
        papers = []
        for offset in range(0, self.count(), _PAGE):
            page = self.collection.get(where={"chunk": 0}, include=["metadatas"], limit=_PAGE, offset=offset)
            papers += [Paper.model_validate_json(m[RECORD_KEY]) for m in page["metadatas"] or [] if RECORD_KEY in m]
        return papers

    def _write_records(self, papers: list[Paper]) -> None:
        """Store each paper's record on its first chunk (Chroma merges it into that chunk's metadata)."""
        for start in range(0, len(papers), _PAGE):
            batch = papers[start:start + _PAGE]
            self.collection.update(ids=[f"{p.id}#0" for p in batch], metadatas=[record_metadata(p) for p in batch])

    # -- lexical -------------------------------------------------------------------------------
    def chunks(self) -> dict[str, dict]:
        """chunk id -> stored node dict, for every chunk of the in-memory BM25 corpus."""
        lexical = self.lexical
        if lexical is None:
            return {}
        if self._by_id[0] is not lexical:  # rebuilt since the last call
            self._by_id = (lexical, {d["node_id"]: d for d in lexical.corpus})
        return self._by_id[1]

    def _load_lexical(self) -> None:
        stored = (self.collection.metadata or {}).get(FINGERPRINT_KEY)
        marker = self.bm25_dir / "fingerprint"
        if stored and marker.exists() and marker.read_text() == stored:
            self.lexical = LexicalRetriever.from_persist_dir(str(self.bm25_dir))
            self.seen = stored
            return
        self.rebuild_lexical()

    def rebuild_lexical(self) -> None:
        """Rebuild BM25 from what Chroma holds and record the fingerprint on both sides."""
        nodes: list[TextNode] = []
        state: dict[str, tuple[str, int]] = {}
        for _chunk_id, meta, doc in self._rows(["metadatas", "documents"]):
            node = metadata_dict_to_node(meta, text=doc)
            nodes.append(node)  # type: ignore[arg-type]
            _tally(state, meta)
        fingerprint = self._fingerprint(state)
        shutil.rmtree(self.bm25_dir, ignore_errors=True)
        if not nodes:
            self.lexical = None
            self._set_fingerprint(fingerprint)
            return
        self.lexical = LexicalRetriever(nodes=nodes, similarity_top_k=self.settings.candidates)
        self.bm25_dir.mkdir(parents=True, exist_ok=True)
        # bm25s would draw its own stray progress bar here; ingest already shows one.
        self.lexical.persist(str(self.bm25_dir), show_progress=False)
        (self.bm25_dir / "fingerprint").write_text(fingerprint)
        self._set_fingerprint(fingerprint)

    # -- sync ----------------------------------------------------------------------------------
    def sync(self, papers: list[Paper], progress: Callable[[int, int], None] | None = None,
             on_written: Callable[[], None] | None = None) -> dict[str, int]:
        """Make Chroma hold exactly these papers' chunks; embed only what is new or changed.

        ``on_written`` runs once the chunks and records are stored and before the new fingerprint is: the
        caller saves its catalog there, so a process that sees the new fingerprint also finds the new catalog.
        """
        s = self.settings
        have, stored_records, stored, sources = self._state()
        wanted = {p.id for p in papers}
        counts = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0}
        todo: list[TextNode] = []
        backfill: list[TextNode] = []  # unchanged chunks stored before source keys existed: key added, not re-embedded
        # Records to (re)write: papers embedded now, and unchanged ones whose provenance changed (a record
        # missing after a killed ingest counts as changed).
        records = {p.id: p for p in papers if stored_records.get(p.id) != record_metadata(p)[RECORD_HASH_KEY]}
        stale: list[str] = [pid for pid in have if pid not in wanted]
        for paper in papers:
            pid, current, source = paper.id, have.get(paper.id), sources.get(paper.id)
            if (source and current and current[0] != "mixed" and current[1] == source[1]
                    and source[0] == source_key(paper, s.chunk_tokens, s.chunk_overlap, self.embedder)):
                counts["unchanged"] += 1  # all its chunks are there, made from the same text: not even split
                continue
            nodes = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap, self.embedder)
            if current == (nodes[0].metadata["hash"], len(nodes)):
                counts["unchanged"] += 1
                backfill += nodes
                continue
            if current and current[0] == nodes[0].metadata["hash"] and current[1] < len(nodes):
                # Half stored by an interrupted ingest (batches run shortest chunk first, across papers): the
                # stored chunks are right, only the missing ones are embedded.
                counts["added"] += 1
                todo += [n for n in nodes if n.node_id not in stored]
                continue
            counts["updated" if current else "added"] += 1
            if current:
                stale.append(pid)
            todo += nodes
        counts["removed"] = sum(1 for pid in stale if pid not in wanted)
        for start in range(0, len(backfill), _PAGE):
            batch_nodes = backfill[start:start + _PAGE]
            self.collection.update(ids=[n.node_id for n in batch_nodes],
                                   metadatas=[{SOURCE_KEY: n.metadata[SOURCE_KEY]} for n in batch_nodes])
        if not todo and not stale:
            self._write_records(list(records.values()))
            if on_written:
                on_written()
            if self.stored_fingerprint() != self._fingerprint(have) or not self.lexical:
                self.rebuild_lexical()
            return counts
        self._set_fingerprint("dirty")  # a crash from here on makes the next open rebuild BM25
        for start in range(0, len(stale), 500):
            self.collection.delete(where={"paper_id": {"$in": stale[start:start + 500]}})
        batch = s.embed_batch_size
        done = 0
        texts_of = {n.node_id: n.get_content(metadata_mode="embed") for n in todo}  # type: ignore[arg-type]
        # Batches of similar length pad little: what sentence-transformers does inside one encode() call.
        todo.sort(key=lambda n: len(texts_of[n.node_id]))
        for start in range(0, len(todo), batch):
            nodes = todo[start:start + batch]
            texts = [texts_of[n.node_id] for n in nodes]
            for node, vector in zip(nodes, self.embed_model.get_text_embedding_batch(texts), strict=True):
                node.embedding = vector
            self.vector_store.add(nodes)
            done += len(nodes)
            if progress:
                progress(done, len(todo))
        self._write_records(list(records.values()))
        if on_written:
            on_written()
        self.rebuild_lexical()
        return counts
