"""Merge raw records into one Paper per paper, and keep the catalog on disk.

Two records are the same paper when their abstracts match after normalisation (case, punctuation,
LaTeX markup) and are at least ``SAME_PAPER`` similar; candidates are found through keys on the
first and last words and the arXiv id, so merging stays near-linear on large collections.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter, defaultdict
from difflib import SequenceMatcher
from pathlib import Path

from rag.models import Paper, Source
from rag.records import RawRecord
from rag.text import word_tokens

SAME_PAPER = 0.9
_KEY_WORDS = 12


def _similar(a: list[str], b: list[str]) -> bool:
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= SAME_PAPER and matcher.quick_ratio() >= SAME_PAPER and (
        matcher.ratio() >= SAME_PAPER
    )


def group_records(records: list[RawRecord]) -> list[list[RawRecord]]:
    """Records grouped by paper (union-find over candidate pairs confirmed by abstract similarity)."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # The arXiv id of each group (by root): a group never holds two, not even through a record without one.
    group_id: dict[int, str | None] = {i: r.arxiv_id for i, r in enumerate(records)}
    tokens = [word_tokens(r.abstract) for r in records]
    keyed: dict[tuple, list[int]] = defaultdict(list)
    for i, words in enumerate(tokens):
        keyed[("head", *words[:_KEY_WORDS])].append(i)
        keyed[("tail", *words[-_KEY_WORDS:])].append(i)
    for members in keyed.values():
        for j in members[1:]:
            for i in members[: members.index(j)]:
                if find(i) == find(j):
                    continue
                a, b = group_id[find(i)], group_id[find(j)]
                if a and b and a != b:
                    continue  # two arXiv ids: two papers, however alike
                if tokens[i] == tokens[j] or _similar(tokens[i], tokens[j]):
                    root = find(i)
                    parent[find(j)] = root
                    group_id[root] = a or b
                    break
    groups: dict[int, list[RawRecord]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[find(i)].append(record)
    return list(groups.values())


def _most_common(values: list, key=len):
    """Most frequent value; ties go to the most complete (longest), then the first seen."""
    if not values:
        return None
    counts = Counter(json.dumps(v) for v in values)
    return max(values, key=lambda v: (counts[json.dumps(v)], key(v)))


def _source(record: RawRecord) -> Source:
    fields: dict[str, str | list[str]] = {"abstract": record.abstract}
    for name in ("title", "arxiv_id", "date", "comment"):
        value = getattr(record, name)
        if value:
            fields[name] = value
    if record.authors:
        fields["authors"] = record.authors
    return Source(path=record.path, line=record.line, layout=record.layout, fields=fields)


def paper_id(arxiv_id: str | None, abstract: str) -> str:
    """Stable id: the arXiv id when known, else a hash of the normalised abstract."""
    if arxiv_id:
        return "arxiv:" + arxiv_id
    return "abs:" + hashlib.sha1(" ".join(word_tokens(abstract)).encode()).hexdigest()[:16]


def merge(group: list[RawRecord]) -> Paper:
    """One Paper from the records of one paper; the most complete value wins, all stay in sources."""
    group = sorted(group, key=lambda r: (r.path, r.line))
    abstract = max((r.abstract for r in group), key=len)
    arxiv_id = _most_common([r.arxiv_id for r in group if r.arxiv_id])
    dates = [r.date for r in group if r.date]
    return Paper(
        id=paper_id(arxiv_id, abstract),
        title=_most_common([r.title for r in group if r.title]),
        # The longest list is the most complete; a shorter or differently spelled one stays in sources.
        authors=max((r.authors for r in group), key=len, default=[]),
        abstract=abstract,
        arxiv_id=arxiv_id,
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        date=_most_common(dates) if dates else None,
        comment=max((r.comment for r in group if r.comment), key=len, default=None),
        sources=[_source(r) for r in group],
    )


def build_papers(records: list[RawRecord]) -> list[Paper]:
    """Papers from records, in a stable order (by id)."""
    papers = [merge(group) for group in group_records(records)]
    # Two groups can only share an id if they share an arXiv id; keep ids unique all the same.
    seen: Counter[str] = Counter()
    for paper in sorted(papers, key=lambda p: (p.id, p.sources[0].where)):
        seen[paper.id] += 1
        if seen[paper.id] > 1:
            paper.id = f"{paper.id}~{seen[paper.id]}"
    return sorted(papers, key=lambda p: p.id)


class Catalog:
    """The raw records of every ingested file and the papers merged from them, stored as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[RawRecord] = []
        self.papers: list[Paper] = []
        self.stamp = self._stamp()
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.records = [RawRecord(**r) for r in data["records"]]
            self.papers = [Paper.model_validate(p) for p in data["papers"]]
        self._by_id = {p.id: p for p in self.papers}

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def changed_on_disk(self) -> bool:
        """Whether another process (or Catalog) saved the file since this one read or wrote it."""
        return self._stamp() != self.stamp

    @property
    def by_id(self) -> dict[str, Paper]:
        """paper id -> Paper, for every paper of the catalog."""
        return self._by_id

    def get(self, paper_id: str) -> Paper | None:
        return self._by_id.get(paper_id)

    def replace_files(self, files: list[str], records: list[RawRecord]) -> None:
        """Drop every record read earlier from these files, add the new ones, and re-merge."""
        gone = set(files)
        self.records = [r for r in self.records if r.path not in gone] + records
        self.papers = build_papers(self.records)
        self._by_id = {p.id: p for p in self.papers}

    def restore(self, papers: list[Paper]) -> None:
        """Adopt papers read back from a shared store, with raw records rebuilt from their provenance."""
        self.papers = sorted(papers, key=lambda p: p.id)
        self._by_id = {p.id: p for p in self.papers}
        self.records = []
        for paper in self.papers:
            for src in paper.sources:
                f = src.fields
                self.records.append(RawRecord(
                    path=src.path, line=src.line, layout=src.layout, abstract=str(f.get("abstract", paper.abstract)),
                    title=f.get("title"), authors=list(f.get("authors", [])), arxiv_id=f.get("arxiv_id"),
                    date=f.get("date"), comment=f.get("comment"),
                ))  # type: ignore[arg-type]

    def save(self) -> None:
        """Write atomically and durably: a killed ingest never leaves a half-written catalog, and two writers
        never share a temporary file (each has its own, renamed over the catalog when complete)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": 1,
            "records": [r.__dict__ for r in self.records],
            "papers": [p.model_dump() for p in self.papers],
        }
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps(data, ensure_ascii=False))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stamp = self._stamp()
