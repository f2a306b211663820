"""The collection's on-disk database: one SQLite file (WAL) holding the catalog and the lexical index.

Why SQLite: every ingest changes a few rows in one transaction instead of rewriting a whole file, readers in
other processes see the old state or the new one (never a part), and a search reads only the rows it needs,
so nothing grows with the collection in memory. Each thread has its own connection (the chat serves
questions from several threads); writes are serialised by the data dir's writer lock (see writelock.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

DB_NAME = "collection.sqlite3"
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Raw records as the files gave them; seq keeps the order merging sees them in.
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, line INTEGER NOT NULL,
    digest TEXT NOT NULL, data TEXT NOT NULL, paper_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_path ON records(path);
CREATE INDEX IF NOT EXISTS records_paper ON records(paper_id);
-- The buckets each record is compared within (merge.component_keys): what a change can regroup.
CREATE TABLE IF NOT EXISTS record_keys (key TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS record_keys_key ON record_keys(key);
CREATE INDEX IF NOT EXISTS record_keys_seq ON record_keys(seq);
-- Merged papers; authors lower-cased for the author filter, the label (title, else authors and opening
-- words) lower-cased for listing, the year for the year list.
CREATE TABLE IF NOT EXISTS papers (id TEXT PRIMARY KEY, data TEXT NOT NULL, authors TEXT NOT NULL,
    label TEXT NOT NULL, year INTEGER);
CREATE INDEX IF NOT EXISTS papers_label ON papers(label, id);
-- Document frequencies of stemmed terms over titles and abstracts (answering's IDF weights).
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
-- Chunks as stored in the vector store: what is indexed, their text for display, and filter columns.
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, paper_id TEXT NOT NULL, year INTEGER NOT NULL,
    arxiv_id TEXT NOT NULL, hash TEXT NOT NULL, source TEXT NOT NULL, meta TEXT NOT NULL, text TEXT NOT NULL,
    length INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks(paper_id);
-- Each chunk's analysed tokens (stemmed, stop words removed, as bm25s does), indexed by FTS5 to find candidates.
CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(tokens, tokenize = 'unicode61 remove_diacritics 0');
-- Chunks holding each token, for exact BM25 weights (FTS5's own counts cost a walk of the token's list).
CREATE TABLE IF NOT EXISTS lexical_df (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
-- Entries of a shared server's change log this database has taken in (see search_index.Index.catch_up).
CREATE TABLE IF NOT EXISTS applied_log (id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
"""


class Database:
    """The SQLite file of one collection, with a connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        found = self.get_meta("schema")
        if found is not None and found != str(SCHEMA_VERSION):
            # Written by another version: everything here is derived from the vector store and the files,
            # so it is emptied and rebuilt from Chroma (the store fingerprint no longer matches).
            with self.transaction(bump=False) as tx:
                tx.execute("DROP TABLE IF EXISTS lexical")  # the full-text table first: it takes its own tables
                for (table,) in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%'").fetchall():
                    tx.execute(f"DROP TABLE IF EXISTS {table}")
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; ``transaction`` groups writes)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a killed process
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic write; readers see all of it or none. ``bump``: give the collection a new version token."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            if bump:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (uuid.uuid4().hex,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def version(self) -> str | None:
        """A token that changes with every committed write (another process's included)."""
        return self.get_meta("version")

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()
