"""The lexical index: every stored chunk's row (text, metadata, filter columns) and SQLite FTS5 BM25 over it.

Text is analysed the way LlamaIndex's BM25 retriever analyses it (bm25s: lower case, English stop words removed,
Snowball English stemmer) and FTS5 indexes the resulting tokens, so ranking is BM25 over the same terms, updated
per chunk inside the ingest's transaction instead of rebuilt. The rows double as the record of what the vector
store holds, so an ingest learns what is indexed without reading the vector store.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import bm25s
import Stemmer
from llama_index.core.schema import MetadataMode, TextNode

from rag.index.chunking import SOURCE_KEY
from rag.index.database import Database

_BATCH = 500
_K1, _B = 1.5, 0.75  # bm25s' defaults, which LlamaIndex's BM25Retriever uses
_POOL = 200  # FTS5 candidates rescored per search
_COMMON = 0.05  # terms in more chunks than this share find no candidates (they still score them) ...
_FEW = 5000  # ... unless they are in fewer chunks than this (ranking those costs little)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyse(texts: list[str]) -> list[list[str]]:
    """BM25 tokens of each text (as LlamaIndex's BM25Retriever tokenizes with bm25s)."""
    if not texts:
        return []
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


@dataclass(frozen=True)
class StoredChunks:
    """What the index holds of one paper: the content hash of its chunks ("mixed" when two), their source key,
    how many rows there are and how many the paper was split into."""

    hash: str
    source: str
    rows: int
    chunks: int

    @property
    def complete(self) -> bool:
        return self.hash != "mixed" and self.rows == self.chunks


@dataclass(frozen=True)
class Where:
    """Filters of a lexical search (the same the dense side applies through Chroma metadata)."""

    year_from: int | None = None
    year_to: int | None = None
    arxiv_id: str | None = None
    paper_ids: Sequence[str] | None = None


class LexicalIndex:
    """Chunk rows and their BM25 index in the collection's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]

    # -- writing (inside the caller's transaction) -------------------------------------------------
    def add(self, conn: sqlite3.Connection, nodes: Sequence[TextNode]) -> None:
        """Store chunks (replacing any with the same id) and index their text."""
        df: Counter[str] = Counter()
        added = tokens_total = 0
        for start in range(0, len(nodes), _BATCH):
            batch = nodes[start:start + _BATCH]
            self.remove_chunks(conn, [n.node_id for n in batch])
            tokens = analyse([n.get_content(metadata_mode=MetadataMode.EMBED) for n in batch])
            for node, words in zip(batch, tokens, strict=True):
                meta = node.metadata
                rowid = conn.execute(
                    "INSERT INTO chunks (id, paper_id, year, arxiv_id, hash, source, meta, text, length) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (node.node_id, str(meta["paper_id"]), int(meta.get("year") or 0), str(meta.get("arxiv_id") or ""),
                     str(meta.get("hash") or ""), str(meta.get(SOURCE_KEY) or ""),
                     json.dumps(_stored_meta(node), ensure_ascii=False), node.get_content(), len(words)),
                ).lastrowid
                conn.execute("INSERT INTO lexical (rowid, tokens) VALUES (?, ?)", (rowid, _joined(words)))
                df.update(set(words))
                added += 1
                tokens_total += len(words)
        # One update per distinct term of the whole change, not per chunk.
        self._count(conn, df, added, tokens_total)

    def remove_chunks(self, conn: sqlite3.Connection, chunk_ids: list[str]) -> None:
        self._remove(conn, "id", chunk_ids)

    def remove_papers(self, conn: sqlite3.Connection, paper_ids: list[str]) -> None:
        self._remove(conn, "paper_id", paper_ids)

    def _remove(self, conn: sqlite3.Connection, column: str, values: list[str]) -> None:
        df: Counter[str] = Counter()
        removed = tokens_total = 0
        for start in range(0, len(values), _BATCH):
            batch = values[start:start + _BATCH]
            rows = f"SELECT rowid FROM chunks WHERE {column} IN ({','.join('?' * len(batch))})"
            for (tokens,) in conn.execute(f"SELECT tokens FROM lexical WHERE rowid IN ({rows})", batch):
                words = tokens.split()
                df.subtract(set(words))
                removed += 1
                tokens_total += len(words)
            conn.execute(f"DELETE FROM lexical WHERE rowid IN ({rows})", batch)
            conn.execute(f"DELETE FROM chunks WHERE {column} IN ({','.join('?' * len(batch))})", batch)
        if removed:
            self._count(conn, df, -removed, -tokens_total)

    def _count(self, conn: sqlite3.Connection, df: Counter, chunks: int, tokens: int) -> None:
        conn.executemany("INSERT INTO lexical_df VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
                         [(t, n) for t, n in df.items() if n])
        conn.executemany("DELETE FROM lexical_df WHERE term = ? AND df <= 0", [(t,) for t, n in df.items() if n < 0])
        for key, change in (("lexical_chunks", chunks), ("lexical_tokens", tokens)):
            conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                         "CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)", (key, str(change)))

    def clear(self, conn: sqlite3.Connection) -> None:
        for table in ("chunks", "lexical", "lexical_df"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM meta WHERE key IN ('lexical_chunks', 'lexical_tokens')")

    # -- reading -------------------------------------------------------------------------------------
    def state(self, paper_ids: Iterable[str]) -> dict[str, StoredChunks]:
        """What is stored of each of these papers (papers with no chunk are absent)."""
        out: dict[str, StoredChunks] = {}
        ids = list(dict.fromkeys(paper_ids))
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            rows = self.db.conn.execute(
                "SELECT paper_id, min(hash), max(hash), min(source), count(*), max(json_extract(meta, '$.metadata.chunks')) "
                f"FROM chunks WHERE paper_id IN ({','.join('?' * len(batch))}) GROUP BY paper_id", batch)
            for pid, low, high, source, rows_, chunks in rows:
                out[pid] = StoredChunks(low if low == high else "mixed", source, rows_, int(chunks or 0))
        return out

    def chunk_ids(self, paper_ids: Sequence[str]) -> list[str]:
        """Ids of the stored chunks of these papers."""
        out: list[str] = []
        for start in range(0, len(paper_ids), _BATCH):
            batch = list(paper_ids[start:start + _BATCH])
            out += [i for (i,) in self.db.conn.execute(
                f"SELECT id FROM chunks WHERE paper_id IN ({','.join('?' * len(batch))})", batch)]
        return out

    def nodes(self, chunk_ids: Sequence[str]) -> dict[str, TextNode]:
        """The stored chunks with these ids, as LlamaIndex nodes (ids not stored are absent)."""
        out: dict[str, TextNode] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            for chunk_id, meta, text in self.db.conn.execute(
                    f"SELECT id, meta, text FROM chunks WHERE id IN ({','.join('?' * len(batch))})", batch):
                out[chunk_id] = _node(chunk_id, json.loads(meta), text)
        return out

    def search(self, query: str, top_k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) of the best ``top_k`` chunks holding any of the query's terms, best first.

        Scores are those of the BM25 variant LlamaIndex's retriever uses (bm25s: Lucene IDF, k1 = 1.5, b = 0.75),
        from counts kept per term, as if a BM25 index were rebuilt over the whole corpus; FTS5 finds the
        candidates (its own bm25() ranks them, best 200 kept).
        """
        words = analyse([query])[0]
        if not words or top_k <= 0:
            return []
        conn = self.db.conn
        unique = list(dict.fromkeys(words))
        df = dict(conn.execute(f"SELECT term, df FROM lexical_df WHERE term IN ({','.join('?' * len(unique))})",
                               unique).fetchall())
        times = Counter(w for w in words if df.get(w))  # a repeated query word counts again, as in bm25s
        if not times:
            return []
        n = int(self.db.get_meta("lexical_chunks") or 0) or 1
        average = int(self.db.get_meta("lexical_tokens") or 0) / n or 1.0
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in times}
        # Candidates come from the query's rarer terms: ranking every chunk that holds "show" or "between" (most
        # of them) is what makes BM25 in FTS5 grow with the collection. The candidates are then scored with all
        # terms, so a common word still counts where it occurs. Below 5,000 chunks a term never counts as common.
        order = sorted(times, key=lambda t: (df[t], t))  # rarest first
        rare = order[:max(1, sum(1 for t in order if df[t] <= max(_COMMON * n, _FEW)))]
        scored = []
        for chunk_id, tokens, length in self._candidates(rare, top_k, where or Where()):
            norm = _K1 * (1 - _B + _B * length / average)
            score = 0.0
            for term, count in times.items():
                tf = tokens.count(f" {term} ")  # whole tokens: each stands between its own spaces
                if tf:
                    score += count * idf[term] * tf / (tf + norm)
            scored.append((chunk_id, score))
        scored.sort(key=lambda cs: -cs[1])
        return scored[:top_k]

    def _candidates(self, terms_: list[str], top_k: int, where: Where) -> list[tuple[str, str, int]]:
        """(chunk id, stored tokens, length) of the chunks FTS5 ranks best for these terms, filters applied."""
        # Each term is quoted: FTS5 query syntax in a question (AND, NEAR, "*", ...) is only ever text.
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in terms_)
        filters: list[str] = []
        args: list = [match]
        if where.year_from is not None:
            filters.append("AND c.year >= ?")
            args.append(where.year_from)
        if where.year_to is not None:
            filters.append("AND c.year <= ?")  # as Chroma applies it on the dense side
            args.append(where.year_to)
        if where.arxiv_id:
            filters.append("AND c.arxiv_id = ?")
            args.append(where.arxiv_id)
        if where.paper_ids is not None:
            filters.append("AND c.paper_id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(where.paper_ids)))
        join = "JOIN chunks c ON c.rowid = lexical.rowid" if filters else ""
        # Ranked on rowids alone; the stored tokens are read for the pool only.
        best = (f"SELECT lexical.rowid FROM lexical {join} WHERE lexical MATCH ? {' '.join(filters)} "
                "ORDER BY bm25(lexical) LIMIT ?")
        args.append(max(_POOL, 4 * top_k))
        return self.db.conn.execute(f"SELECT c.id, l.tokens, c.length FROM chunks c JOIN lexical l ON l.rowid = c.rowid "
                                    f"WHERE c.rowid IN ({best})", args).fetchall()


def _joined(words: list[str]) -> str:
    """Tokens as stored: each between two spaces of its own, so counting " term " counts whole tokens."""
    return " " + "  ".join(words) + " " if words else ""


def _stored_meta(node: TextNode) -> dict:
    return {"metadata": node.metadata, "excluded_embed_metadata_keys": node.excluded_embed_metadata_keys,
            "excluded_llm_metadata_keys": node.excluded_llm_metadata_keys}


def _node(chunk_id: str, stored: dict, text: str) -> TextNode:
    return TextNode(id_=chunk_id, text=text, metadata=stored["metadata"],
                    excluded_embed_metadata_keys=stored["excluded_embed_metadata_keys"],
                    excluded_llm_metadata_keys=stored["excluded_llm_metadata_keys"])
