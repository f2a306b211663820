"""The catalog: the raw records of every ingested file and the papers merged from them, in the collection's
SQLite database (see database.py), changed per record.

An ingest first *plans* (``Catalog.plan``): which records of the given files are new or gone, which stored
records a change can regroup (those linked to it through shared merge buckets, whole papers at a time), and the
papers those records merge into now. Only that part of the collection is re-merged, so adding k papers costs
O(k), and an unchanged re-ingest plans nothing. Up to ``_REGROUP`` linked records the result is exactly what
merging the whole collection gives; template sentences can chain most of a collection together, and past the
bound only the nearest records are merged again (still one paper per record, ids unique). The plan is
*applied* in the same transaction that stores the papers' chunks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from rag.index.database import Database
from rag.ingest.merge import build_groups, component_keys
from rag.ingest.records import RawRecord
from rag.models import Paper
from rag.text import terms

_BATCH = 500  # ids per IN (...) list: well under SQLite's variable limit
_REGROUP = 2000  # stored records a change may regroup exactly (see Catalog.plan)
_RECORD_FIELDS = {f.name for f in dataclasses.fields(RawRecord)}


def stats_text(paper: Paper) -> str:
    """What the term statistics count of a paper."""
    return f"{paper.title or ''} {paper.abstract}"


def _record_json(record: RawRecord) -> str:
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False, sort_keys=True)


def _digest(data: str) -> str:
    return hashlib.sha1(data.encode()).hexdigest()[:20]


def _chunks(items: list, size: int = _BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _in(n: int) -> str:
    return ",".join("?" * n)


@dataclass
class CatalogChange:
    """What an ingest changes in the catalog (see ``Catalog.plan``); empty when the files are unchanged."""

    gone_records: list[int] = field(default_factory=list)  # seqs
    new_records: list[RawRecord] = field(default_factory=list)
    regrouped: dict[int, str] = field(default_factory=dict)  # stored record seq -> its paper id now
    new_record_papers: list[str] = field(default_factory=list)  # paper id of each new record
    removed: list[str] = field(default_factory=list)  # paper ids that no longer exist
    papers: list[Paper] = field(default_factory=list)  # papers new or changed
    df: Counter = field(default_factory=Counter)  # document frequency change per term

    def __bool__(self) -> bool:
        return bool(self.gone_records or self.new_records)


class StoredFrequencies(Mapping):
    """Document frequencies read from the database term by term (a question needs a few dozen, not all)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, int] = {}

    def __getitem__(self, term: str) -> int:
        if term not in self._cache:
            row = self.db.conn.execute("SELECT df FROM terms WHERE term = ?", (term,)).fetchone()
            self._cache[term] = row[0] if row else 0
        if not self._cache[term]:
            raise KeyError(term)
        return self._cache[term]

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self.db.conn.execute("SELECT term FROM terms"))

    def __len__(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM terms").fetchone()[0]


class Catalog:
    """Records and papers of one collection, read and changed through its database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading -------------------------------------------------------------------------------------
    def count(self) -> int:
        """How many papers the collection holds."""
        return self.db.conn.execute("SELECT count(*) FROM papers").fetchone()[0]

    def get(self, paper_id: str) -> Paper | None:
        """The paper with this id, or None."""
        row = self.db.conn.execute("SELECT data FROM papers WHERE id = ?", (paper_id,)).fetchone()
        return Paper.model_validate_json(row[0]) if row else None

    def get_many(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        """paper id -> Paper for those of the ids that exist."""
        out: dict[str, Paper] = {}
        for batch in _chunks(list(dict.fromkeys(paper_ids))):
            for pid, data in self.db.conn.execute(f"SELECT id, data FROM papers WHERE id IN ({_in(len(batch))})",
                                                  batch):
                out[pid] = Paper.model_validate_json(data)
        return out

    def papers(self, offset: int = 0, limit: int | None = None, by_label: bool = False) -> list[Paper]:
        """Papers in id order (``by_label``: by title, else authors, case-insensitive); ``offset`` / ``limit``
        page through them."""
        order = "label, id" if by_label else "id"
        rows = self.db.conn.execute(f"SELECT data FROM papers ORDER BY {order} LIMIT ? OFFSET ?",
                                    (-1 if limit is None else limit, offset))
        return [Paper.model_validate_json(data) for (data,) in rows]

    def years(self) -> list[int]:
        """The publication years of the collection, ascending."""
        return [y for (y,) in self.db.conn.execute("SELECT DISTINCT year FROM papers WHERE year IS NOT NULL ORDER BY 1")]

    def ids_by_author(self, name: str) -> list[str]:
        """Ids of the papers with an author whose name contains ``name`` (case-insensitive)."""
        rows = self.db.conn.execute("SELECT id FROM papers WHERE instr(authors, ?) > 0 ORDER BY id",
                                    (name.lower(),))
        return [pid for (pid,) in rows]

    def records(self) -> list[RawRecord]:
        """Every raw record, in the order merging sees them."""
        return [RawRecord(**json.loads(data)) for (data,) in self.db.conn.execute("SELECT data FROM records ORDER BY seq")]

    def frequencies(self) -> StoredFrequencies:
        """Document frequency of each stemmed term over titles and abstracts."""
        return StoredFrequencies(self.db)

    # -- planning a change ---------------------------------------------------------------------------
    def plan(self, files: list[str], records: list[RawRecord]) -> CatalogChange:
        """The change that makes these files' records those given: only records that are new or gone, and the
        stored records they can regroup, are merged again."""
        conn = self.db.conn
        by_file: dict[str, list[RawRecord]] = {f: [] for f in files}
        for record in records:
            by_file.setdefault(record.path, []).append(record)
        change = CatalogChange()
        for path, incoming in by_file.items():
            stored: dict[tuple[int, str], list[int]] = {}
            for seq, line, digest in conn.execute("SELECT seq, line, digest FROM records WHERE path = ?", (path,)):
                stored.setdefault((line, digest), []).append(seq)
            for record in incoming:
                same = stored.get((record.line, _digest(_record_json(record))))
                if same:
                    same.pop()  # unchanged: keeps its place in the merge order
                else:
                    change.new_records.append(record)
            change.gone_records += [seq for seqs in stored.values() for seq in seqs]
        if not change:
            return change
        gone = set(change.gone_records)
        frontier: set[str] = {k for r in change.new_records for k in component_keys(r)}
        frontier |= self._keys_of(gone)
        seen_keys: set[str] = set()
        linked: set[int] = set()  # stored records (not gone) reachable from the change
        # Exact (the whole connected part) unless it grows past _REGROUP: then the nearest records are merged
        # again and the rest keeps its grouping (template sentences can chain most of a collection together).
        while frontier and len(linked) < _REGROUP:
            seen_keys |= frontier
            found: set[int] = set()
            for batch in _chunks(sorted(frontier)):
                found |= {seq for (seq,) in conn.execute(
                    f"SELECT DISTINCT seq FROM record_keys WHERE key IN ({_in(len(batch))})", batch)}
            found -= linked | gone
            linked |= found
            frontier = self._keys_of(found) - seen_keys
        old_ids: set[str] = set()
        for batch in _chunks(sorted(linked | gone)):
            old_ids |= {pid for (pid,) in conn.execute(
                f"SELECT DISTINCT paper_id FROM records WHERE seq IN ({_in(len(batch))})", batch)}
        while True:
            regrouped, new_papers = self._regroup(old_ids, gone, change)
            # A paper id the regrouping gives that a paper left out of it holds too ("arxiv:X" or "arxiv:X~2"):
            # that paper is merged again with the others, so ids stay unique and numbered as a full merge numbers.
            clashing = self._sharing_ids(new_papers) - old_ids
            if not clashing:
                break
            old_ids |= clashing
        change.regrouped = regrouped
        old = self.get_many(old_ids)
        change.removed = sorted(set(old) - set(new_papers))
        change.papers = [p for pid, p in new_papers.items()
                         if pid not in old or old[pid].model_dump_json() != p.model_dump_json()]
        for pid, paper in old.items():
            if pid in change.removed or new_papers[pid].model_dump_json() != paper.model_dump_json():
                change.df.subtract(set(terms(stats_text(paper))))
        for paper in change.papers:
            change.df.update(set(terms(stats_text(paper))))
        return change

    def _regroup(self, old_ids: set[str], gone: set[int], change: CatalogChange
                 ) -> tuple[dict[int, str], dict[str, Paper]]:
        """Merge every record of these papers (less the gone ones) with the new records: stored record seq -> its
        paper id now, and the papers (filling ``change.new_record_papers``)."""
        stored_records: list[tuple[int, RawRecord]] = []
        for batch in _chunks(sorted(old_ids)):  # whole papers: every record of each paper involved
            for seq, data in self.db.conn.execute(
                    f"SELECT seq, data FROM records WHERE paper_id IN ({_in(len(batch))})", batch):
                if seq not in gone:
                    stored_records.append((seq, RawRecord(**json.loads(data))))
        stored_records.sort(key=lambda sr: sr[0])
        seq_of = {id(r): seq for seq, r in stored_records}
        new_index = {id(r): n for n, r in enumerate(change.new_records)}
        change.new_record_papers = [""] * len(change.new_records)
        regrouped: dict[int, str] = {}
        new_papers: dict[str, Paper] = {}
        for paper, group in build_groups([r for _, r in stored_records] + change.new_records):
            new_papers[paper.id] = paper
            for record in group:
                if id(record) in seq_of:
                    regrouped[seq_of[id(record)]] = paper.id
                else:
                    change.new_record_papers[new_index[id(record)]] = paper.id
        return regrouped, new_papers

    def _sharing_ids(self, papers: Iterable[str]) -> set[str]:
        """Ids of stored papers with the same id as one of these, or the same one numbered (``id~2``)."""
        found: set[str] = set()
        for pid in {re.sub(r"~\d+$", "", p) for p in papers}:
            found |= {i for (i,) in self.db.conn.execute(
                "SELECT id FROM papers WHERE id = ? OR (id > ? AND id < ?)", (pid, pid + "~", pid + "~\U0010ffff"))}
        return found

    def _keys_of(self, seqs: set[int]) -> set[str]:
        keys: set[str] = set()
        for batch in _chunks(sorted(seqs)):
            keys |= {k for (k,) in self.db.conn.execute(
                f"SELECT DISTINCT key FROM record_keys WHERE seq IN ({_in(len(batch))})", batch)}
        return keys

    # -- writing -------------------------------------------------------------------------------------
    def apply(self, conn: sqlite3.Connection, change: CatalogChange) -> None:
        """Write a planned change (inside the caller's transaction)."""
        for batch in _chunks(change.gone_records):
            conn.execute(f"DELETE FROM records WHERE seq IN ({_in(len(batch))})", batch)
            conn.execute(f"DELETE FROM record_keys WHERE seq IN ({_in(len(batch))})", batch)
        conn.executemany("UPDATE records SET paper_id = ? WHERE seq = ?",
                         [(pid, seq) for seq, pid in change.regrouped.items()])
        self._insert_records(conn, zip(change.new_records, change.new_record_papers, strict=True))
        for batch in _chunks(change.removed):
            conn.execute(f"DELETE FROM papers WHERE id IN ({_in(len(batch))})", batch)
        self._insert_papers(conn, change.papers)
        self._count_terms(conn, change.df)

    def restore(self, conn: sqlite3.Connection, papers: Iterable[Paper]) -> None:
        """Replace everything with papers read back from a shared store, raw records rebuilt from their
        provenance (inside the caller's transaction)."""
        for table in ("records", "record_keys", "papers", "terms"):
            conn.execute(f"DELETE FROM {table}")
        self.replace_papers(conn, [], papers)

    def replace_papers(self, conn: sqlite3.Connection, paper_ids: list[str], papers: Iterable[Paper]) -> None:
        """Drop these papers (with their records) and store the given ones as read back from a shared store,
        records rebuilt from their provenance (inside the caller's transaction)."""
        df: Counter = Counter()
        for paper in self.get_many(paper_ids).values():
            df.subtract(set(terms(stats_text(paper))))
        for batch in _chunks(paper_ids):
            marks = _in(len(batch))
            conn.execute(f"DELETE FROM record_keys WHERE seq IN (SELECT seq FROM records WHERE paper_id IN ({marks}))",
                         batch)
            conn.execute(f"DELETE FROM records WHERE paper_id IN ({marks})", batch)
            conn.execute(f"DELETE FROM papers WHERE id IN ({marks})", batch)
        for batch in _chunks(sorted(papers, key=lambda p: p.id), 2000):
            rows = []
            for paper in batch:
                df.update(set(terms(stats_text(paper))))
                for src in paper.sources:
                    fields = {k: v for k, v in src.fields.items() if k in _RECORD_FIELDS}
                    fields.setdefault("abstract", paper.abstract)
                    rows.append((RawRecord(path=src.path, line=src.line, layout=src.layout, **fields), paper.id))
            self._insert_records(conn, rows)
            self._insert_papers(conn, batch)
        self._count_terms(conn, df)

    def _insert_records(self, conn: sqlite3.Connection, rows: Iterable[tuple[RawRecord, str]]) -> None:
        for record, pid in rows:
            data = _record_json(record)
            seq = conn.execute("INSERT INTO records (path, line, digest, data, paper_id) VALUES (?, ?, ?, ?, ?)",
                               (record.path, record.line, _digest(data), data, pid)).lastrowid
            conn.executemany("INSERT INTO record_keys VALUES (?, ?)", [(k, seq) for k in component_keys(record)])

    def _insert_papers(self, conn: sqlite3.Connection, papers: Iterable[Paper]) -> None:
        conn.executemany("INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?)",
                         [(p.id, p.model_dump_json(), "\n".join(p.authors).lower(), p.label.lower(), p.year)
                          for p in papers])

    def _count_terms(self, conn: sqlite3.Connection, df: Counter) -> None:
        conn.executemany("INSERT INTO terms VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
                         [(t, n) for t, n in df.items() if n])
        conn.executemany("DELETE FROM terms WHERE term = ? AND df <= 0", [(t,) for t, n in df.items() if n < 0])
