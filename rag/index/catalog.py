"""The catalog: the raw records of every ingested file and the papers merged from them, kept on disk."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rag.ingest.merge import build_papers
from rag.ingest.records import RawRecord
from rag.models import Paper


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` so that readers see the old file or the new one, never a part: a temporary file of this
    writer's own (two writers never share one), flushed to disk, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        write_atomically(self.path, json.dumps(data, ensure_ascii=False))
        self.stamp = self._stamp()
