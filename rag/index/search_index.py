"""The search index: chunk vectors in Chroma (dense), chunk rows and BM25 in the collection's database (lexical).

An ingest writes the vectors first, then, in one database transaction, the chunk rows, their BM25 terms and
the catalog change: readers see the new papers with both sides of search at once, and a killed ingest leaves
the database as it was (the vectors it stored are found by id and kept on the next run).

Chroma's collection metadata carries a fingerprint that changes with every write; the database records the
fingerprint it reflects. When they differ (a client of a shared server whose peers wrote, or an index built
before the database existed), the database is rebuilt from Chroma, the store every client shares.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, TextNode
from llama_index.core.vector_stores.types import VectorStoreQueryResult
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

from rag.index.catalog import Catalog, CatalogChange
from rag.index.chroma import EMBEDDER_KEY, open_store
from rag.index.chunking import RECORD_HASH_KEY, RECORD_KEY, chunk_paper, record_metadata, source_key
from rag.index.database import Database
from rag.index.lexical import LexicalIndex
from rag.models import Paper
from rag.settings import Settings

FINGERPRINT_KEY = "rag_fingerprint"
STORE_FINGERPRINT = "store_fingerprint"  # database meta: the Chroma fingerprint the database reflects
LOG_SEQ = "log_seq"  # database meta: the newest change-log entry taken in (ns since the epoch, writer's clock)
_PAGE = 5000  # rows per Chroma get(); keeps memory flat on large collections
_LOG_IDS = 2000  # paper ids per change-log entry
# Change-log entries are re-read this far back: writers' clocks may disagree a little, and an entry already
# taken in is skipped by its id.
_LOG_MARGIN_NS = 600 * 10**9


class CorpusBackedChromaStore(ChromaVectorStore):
    """LlamaIndex's Chroma store that asks Chroma for ids and distances only, and takes each chunk's text and
    metadata from the database (0.7 ms for a 30-result query instead of 5.4 ms with documents and metadata).

    Embedded, a chunk the database does not list is dropped: it belongs to an ingest that has not committed
    (or was killed), so its paper is not in the catalog either. A client of a shared server fetches such chunks
    from Chroma: another client may have just added them.
    """

    _nodes: Callable[[list[str]], dict[str, TextNode]] = PrivateAttr()
    _shared: bool = PrivateAttr()

    def __init__(self, nodes: Callable[[list[str]], dict[str, TextNode]], shared: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self._nodes = nodes
        self._shared = shared

    def _query(self, query_embeddings: list[float], n_results: int, where: dict, **kwargs) -> VectorStoreQueryResult:
        if kwargs:  # an include= or where_document= of the caller: LlamaIndex's own path
            return super()._query(query_embeddings, n_results, where, **kwargs)
        found = self._collection.query(query_embeddings=query_embeddings, n_results=n_results,
                                       where=where or None, include=["distances"])  # type: ignore[arg-type]
        ids, distances = found["ids"][0], (found["distances"] or [[]])[0]
        nodes: dict[str, BaseNode] = dict(self._nodes(ids))
        missing = [i for i in ids if i not in nodes]
        if missing and self._shared:
            got = self._collection.get(ids=missing, include=["metadatas", "documents"])  # type: ignore[list-item]
            for chunk_id, meta, doc in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True):
                meta = {k: v for k, v in dict(meta).items() if k not in (RECORD_KEY, RECORD_HASH_KEY)}
                nodes[chunk_id] = metadata_dict_to_node(meta, text=doc)
        result = VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        for chunk_id, distance in zip(ids, distances, strict=True):
            node = nodes.get(chunk_id)
            if node is None:
                continue
            result.nodes.append(node)  # type: ignore[union-attr]
            result.similarities.append(math.exp(-distance))  # type: ignore[union-attr]  # as LlamaIndex reports it
            result.ids.append(chunk_id)  # type: ignore[union-attr]
        return result


class Index:
    """Chroma collection + LlamaIndex vector index + the database's lexical index, for one embedder."""

    def __init__(self, settings: Settings, embed_model: BaseEmbedding, embedder: str, db: Database) -> None:
        self.settings = settings
        self.embed_model = embed_model
        self.embedder = embedder
        self.db = db
        self.client, self.collection = open_store(settings, embedder)
        self.lexical = LexicalIndex(db)
        self.vector_store = CorpusBackedChromaStore(self.lexical.nodes, bool(settings.chroma_url),
                                                    chroma_collection=self.collection)
        self.vector_index = VectorStoreIndex.from_vector_store(self.vector_store, embed_model=embed_model)

    # -- state ---------------------------------------------------------------------------------------
    def _rows(self, include: list[str], where: dict | None = None) -> Iterator[tuple[str, dict, str | None]]:
        offset = 0
        while True:
            page = self.collection.get(include=include, where=where, limit=_PAGE, offset=offset)  # type: ignore[arg-type]
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [None] * len(ids)
            for chunk_id, meta, doc in zip(ids, page["metadatas"] or [], docs, strict=True):
                yield chunk_id, dict(meta or {}), doc
            offset += len(ids)

    def count(self) -> int:
        return self.collection.count()

    def stored_fingerprint(self) -> str | None:
        """The fingerprint the store holds now, read afresh (another process or machine may have changed it)."""
        fresh = self.client.get_collection(self.settings.collection, embedding_function=None)  # type: ignore[arg-type]
        return (fresh.metadata or {}).get(FINGERPRINT_KEY)

    def in_step(self) -> bool:
        """Whether the database reflects what Chroma holds (see the module docstring)."""
        stored = self.stored_fingerprint()
        # None: no ingest ever completed (a killed first one leaves vectors the next run finds by id).
        return stored is None or stored == self.db.get_meta(STORE_FINGERPRINT)

    def close(self) -> None:
        """Let go of the store. An embedded Chroma keeps its vector index in memory, where another process's
        writes never reach it: closing, then opening a new Index, is how a process sees them."""
        self.client.close()

    # -- rebuilding from Chroma ----------------------------------------------------------------------
    def adopt(self, catalog: Catalog) -> None:
        """Make the database reflect Chroma: papers from the records stored on first chunks, chunk rows and BM25
        from the chunks. A client of a shared server does this when other clients wrote; an index built before
        the database existed does it once."""
        fingerprint = self.stored_fingerprint()
        started = time.time_ns()
        papers = self._records(where={"chunk": 0})
        with self.db.transaction() as conn:
            catalog.restore(conn, papers)
            self.lexical.clear(conn)
            for start in range(0, len(papers), 1000):
                self.lexical.add(conn, self._stored_chunks(papers[start:start + 1000]))
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (STORE_FINGERPRINT, fingerprint or ""))
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (LOG_SEQ, str(started)))

    def _records(self, where: dict) -> list[Paper]:
        """The paper records stored on the first chunks matching ``where``."""
        return [Paper.model_validate_json(meta[RECORD_KEY]) for _, meta, _ in self._rows(["metadatas"], where=where)
                if RECORD_KEY in meta]

    def _stored_chunks(self, papers: list[Paper]) -> list[TextNode]:
        """These papers' chunks, made again from their records (chunking is deterministic), that Chroma holds with
        the same content hash: the database's rows for them, without reading any text back from Chroma."""
        s = self.settings
        nodes = [n for p in papers for n in chunk_paper(p, s.chunk_tokens, s.chunk_overlap, self.embedder)]
        stored = self._stored_ids(nodes)
        return [n for n in nodes if n.node_id in stored]

    # -- catching up with other clients of a shared server -------------------------------------------
    def _log(self):
        """The change log beside a shared collection: one entry per write, naming the papers it touched."""
        return self.client.get_or_create_collection(f"{self.settings.collection}_log", embedding_function=None)  # type: ignore[arg-type]

    def catch_up(self, catalog: Catalog) -> bool:
        """Take in what other clients of the shared server wrote since this database last looked: only the papers
        their change-log entries name are read back (records and chunks). Falls back to ``adopt`` when the log
        cannot tell (an empty database, or writes by a version that kept no log). True when anything changed."""
        stored = self.stored_fingerprint()
        if stored is None or stored == self.db.get_meta(STORE_FINGERPRINT):
            return False
        since = self.db.get_meta(LOG_SEQ)
        if since is None:
            self.adopt(catalog)
            return True
        log = self._log()
        found = log.get(where={"seq": {"$gt": int(since) - _LOG_MARGIN_NS}}, include=["documents", "metadatas"])
        applied: set[str] = set()  # of these entries (the table keeps every entry ever taken in)
        for start in range(0, len(found["ids"]), 500):
            batch = found["ids"][start:start + 500]
            applied |= {i for (i,) in self.db.conn.execute(
                f"SELECT id FROM applied_log WHERE id IN ({','.join('?' * len(batch))})", batch)}
        entries = [(i, json.loads(doc), int(meta["seq"])) for i, doc, meta in
                   zip(found["ids"], found["documents"] or [], found["metadatas"] or [], strict=True) if i not in applied]
        if not entries:
            self.adopt(catalog)  # the fingerprint moved but no entry says why: written without a log
            return True
        touched = sorted({pid for _, entry, _ in entries for pid in entry["papers"]})
        papers: list[Paper] = []
        for start in range(0, len(touched), 500):
            papers += self._records(where={"$and": [{"paper_id": {"$in": touched[start:start + 500]}}, {"chunk": 0}]})
        nodes = self._stored_chunks(papers)
        with self.db.transaction() as conn:
            self.lexical.remove_papers(conn, touched)
            self.lexical.add(conn, nodes)
            catalog.replace_papers(conn, touched, papers)
            conn.executemany("INSERT OR IGNORE INTO applied_log VALUES (?, ?)", [(i, seq) for i, _, seq in entries])
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         (LOG_SEQ, str(max([int(since)] + [seq for _, _, seq in entries]))))
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (STORE_FINGERPRINT, stored))
        return True

    # -- applying a catalog change -------------------------------------------------------------------
    def apply(self, catalog: Catalog, change: CatalogChange,
              progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Store what a catalog change needs: chunks of new and changed papers embedded (only what is not stored
        already), chunks of removed or re-split papers deleted, records rewritten; then, in one transaction, the
        chunk rows, BM25 terms and the catalog change."""
        s = self.settings
        counts = {"added": 0, "updated": 0, "unchanged": 0, "removed": len(change.removed)}
        state = self.lexical.state([p.id for p in change.papers])
        stale: list[str] = list(change.removed)  # papers whose stored chunks go
        rows: list[TextNode] = []  # chunks the database gets
        fresh: list[TextNode] = []  # chunks of papers not stored before: some may be in Chroma already
        for paper in change.papers:
            stored = state.get(paper.id)
            if stored and stored.complete and stored.source == source_key(paper, s.chunk_tokens, s.chunk_overlap,
                                                                           self.embedder):
                continue  # same chunks, only provenance changed: the record is rewritten below
            nodes = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap, self.embedder)
            counts["updated" if stored else "added"] += 1
            if stored:
                stale.append(paper.id)
            rows += nodes
            if not stored:
                fresh += nodes
        # A killed ingest may have stored some of these already (vectors first, database after): kept, not
        # embedded again.
        kept = self._stored_ids(fresh)
        todo = [n for n in rows if n.node_id not in kept]
        # By id (the database lists them): Chroma deletes by ids at once, but scans its metadata for a where=.
        stale_ids = self.lexical.chunk_ids(stale)
        for start in range(0, len(stale_ids), _PAGE):
            self.collection.delete(ids=stale_ids[start:start + _PAGE])
        self._embed(todo, {p.id: p for p in change.papers}, progress)
        # Records of papers whose first chunk was kept (only provenance changed, or stored by a killed run).
        embedded = {n.metadata["paper_id"] for n in todo if n.metadata["chunk"] == 0}
        self._write_records([p for p in change.papers if p.id not in embedded])
        fingerprint = uuid.uuid4().hex
        entries = self._write_log(fingerprint, change) if self.settings.chroma_url else []
        with self.db.transaction() as conn:
            self.lexical.remove_papers(conn, stale)
            self.lexical.add(conn, rows)
            catalog.apply(conn, change)
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (STORE_FINGERPRINT, fingerprint))
            conn.executemany("INSERT OR IGNORE INTO applied_log VALUES (?, ?)", entries)
            if entries:  # this database is caught up to its own write
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (LOG_SEQ, str(max(
                    [entries[0][1], int(self.db.get_meta(LOG_SEQ) or 0)]))))
        self._set_fingerprint(fingerprint)  # last: clients that see it find the log entries and the chunks
        return counts

    def _write_log(self, fingerprint: str, change: CatalogChange) -> list[tuple[str, int]]:
        """Name the papers this write touched in the shared change log (before the new fingerprint, so a client
        that sees the fingerprint finds the entries)."""
        touched = sorted({p.id for p in change.papers} | set(change.removed))
        seq = time.time_ns()
        entries = [(f"{fingerprint}-{n}", seq) for n in range(0, max(len(touched), 1), _LOG_IDS)]
        self._log().add(ids=[i for i, _ in entries], embeddings=[[0.0]] * len(entries),  # type: ignore[arg-type]
                        documents=[json.dumps({"papers": touched[n:n + _LOG_IDS]})
                                   for n in range(0, max(len(touched), 1), _LOG_IDS)],
                        metadatas=[{"seq": seq}] * len(entries))
        return entries

    def _stored_ids(self, nodes: list[TextNode]) -> set[str]:
        """Ids of these chunks Chroma holds with the same content hash."""
        want = {n.node_id: n.metadata["hash"] for n in nodes}
        have: set[str] = set()
        ids = list(want)
        for start in range(0, len(ids), _PAGE):
            got = self.collection.get(ids=ids[start:start + _PAGE], include=["metadatas"])  # type: ignore[list-item]
            have |= {i for i, m in zip(got["ids"], got["metadatas"] or [], strict=True) if (m or {}).get("hash") == want[i]}
        return have

    def _embed(self, todo: list[TextNode], records: dict[str, Paper],
               progress: Callable[[int, int], None] | None) -> None:
        """Embed and store chunks; a first chunk carries its paper's record (``records``: paper id -> Paper)."""
        texts_of = {n.node_id: n.get_content(metadata_mode="embed") for n in todo}  # type: ignore[arg-type]
        # Batches of similar length pad little: what sentence-transformers does inside one encode() call.
        todo = sorted(todo, key=lambda n: len(texts_of[n.node_id]))
        done, batch = 0, self.settings.embed_batch_size
        for start in range(0, len(todo), batch):
            nodes = todo[start:start + batch]
            vectors = self.embed_model.get_text_embedding_batch([texts_of[n.node_id] for n in nodes])
            metadatas = []
            for node in nodes:
                meta = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)  # as LlamaIndex stores it
                if node.metadata["chunk"] == 0:
                    meta.update(record_metadata(records[node.metadata["paper_id"]]))
                metadatas.append(meta)
            # The text goes to the database; Chroma gets it only when shared, for other clients and tools. Chroma
            # indexes documents for full-text search: without them it stores a chunk in 40-60% less time.
            # Upsert: a chunk a killed run stored from another version of its paper is overwritten, not kept.
            self.collection.upsert(ids=[n.node_id for n in nodes], embeddings=vectors, metadatas=metadatas,  # type: ignore[arg-type]
                                   documents=[n.get_content() for n in nodes] if self.settings.chroma_url else None)
            done += len(nodes)
            if progress:
                progress(done, len(todo))

    def _write_records(self, papers: list[Paper]) -> None:
        """Store each paper's record on its first chunk (Chroma merges it into that chunk's metadata), so any
        client of a shared server can rebuild the catalog."""
        for start in range(0, len(papers), _PAGE):
            batch = papers[start:start + _PAGE]
            self.collection.update(ids=[f"{p.id}#0" for p in batch], metadatas=[record_metadata(p) for p in batch])

    def _set_fingerprint(self, value: str) -> None:
        self.collection.modify(metadata={EMBEDDER_KEY: self.embedder, FINGERPRINT_KEY: value})

