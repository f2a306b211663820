"""Public records: papers, search hits, citations, answers and ingest reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rag.text import author_list

# Fields a raw record may give; the Paper keeps, for each, which sources gave which value.
RECORD_FIELDS = ("title", "authors", "abstract", "arxiv_id", "doi", "date", "venue", "comment", "url")


class Source(BaseModel):
    """Where one raw record of a paper came from, and the values it gave."""

    path: str = Field(description="File the record was read from.")
    line: int = Field(description="1-based line where the record starts.")
    layout: str = Field(description="Layout the file was parsed as.")
    fields: dict[str, str | list[str]] = Field(default_factory=dict, description="Values this record gave.")

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class Paper(BaseModel):
    """One paper, merged from every record of it in the ingested files."""

    id: str
    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    abstract: str
    arxiv_id: str | None = None
    url: str | None = None
    date: str | None = None
    comment: str | None = None
    doi: str | None = Field(None, description="DOI, lower-case, without a resolver prefix (10.1000/xyz).")
    venue: str | None = Field(None, description="Journal or proceedings a reference manager gave.")
    sources: list[Source] = Field(default_factory=list)

    @property
    def doi_url(self) -> str | None:
        return f"https://doi.org/{self.doi}" if self.doi else None

    @property
    def year(self) -> int | None:
        if self.date:
            return int(self.date[:4])
        if self.arxiv_id and self.arxiv_id[:4].isdigit():
            return 2000 + int(self.arxiv_id[:2])
        return None

    @property
    def label(self) -> str:
        """Title, or (never inventing one) first authors and the start of the abstract."""
        if self.title:
            return self.title
        lead = " ".join(self.abstract.split()[:10])
        who = author_list(self.authors, 2)
        return f"{who}: “{lead}…”" if who else f"“{lead}…”"

    @property
    def short_label(self) -> str:
        """How an answer names the paper in running text: “Title”, or "First et al. (year)"."""
        if self.title:
            return f"“{self.title}”"
        who = author_list(self.authors, 1) if self.authors else "An untitled paper"
        return f"{who} ({self.year})" if self.year else who

    def record_text(self) -> str:
        """Everything the merged record states (title, authors, arXiv id, URL, DOI, date, year, venue, comment,
        abstract), one field a line: the evidence an answer about this paper may draw on."""
        fields = (self.title, ", ".join(self.authors), self.arxiv_id and f"arXiv:{self.arxiv_id}", self.url,
                  self.doi and f"doi:{self.doi}", self.date, self.year and str(self.year), self.venue, self.comment,
                  self.abstract)
        return "\n".join(x for x in fields if x)

    def conflicts(self) -> dict[str, list[str | list[str]]]:
        """Fields for which the sources gave differing values (all values, most complete first)."""
        out: dict[str, list[str | list[str]]] = {}
        for name in RECORD_FIELDS:
            values: list[str | list[str]] = []
            for src in self.sources:
                value = src.fields.get(name)
                if value is not None and value not in values:
                    values.append(value)
            if len(values) > 1:
                out[name] = values
        return out

    def reference(self) -> str:
        """One-line bibliographic reference: title, authors, venue, year, arXiv (else DOI) link."""
        parts = [self.label]
        if self.authors:
            parts.append(author_list(self.authors, 6))
        if self.venue:
            parts.append(self.venue)
        if self.year:
            parts.append(str(self.year))
        if self.url or self.doi_url:
            parts.append(self.url or self.doi_url)
        return ". ".join(parts)


class Hit(BaseModel):
    """A retrieved paper with its best-matching passage."""

    paper: Paper
    passage: str
    score: float = Field(description="Fused score (see RAG_FUSION); higher is better.")
    similarity: float | None = Field(None, description="Cosine similarity of the best chunk to the query, if dense.")


class Citation(BaseModel):
    """A numbered citation in an answer and the passage that supports it."""

    number: int
    paper: Paper
    passage: str


class SentenceSupport(BaseModel):
    """Whether one answer sentence is backed by the sources it cites (checked by rag/answering/grounding.py)."""

    sentence: str = Field(description="The sentence, without its citation marks.")
    citations: list[int] = Field(default_factory=list, description="Citation numbers the sentence carries.")
    verdict: Literal["supported", "partial", "unsupported"] = Field(
        description="supported: every number and name, and (nearly) all of the content, is in the cited sources; "
        "partial: a name or much of the content is missing; unsupported: a number is missing, little matches, "
        "or the sentence cites nothing."
    )
    missing: list[str] = Field(
        default_factory=list, description="Numbers and named terms of the sentence found in none of its sources."
    )
    score: float = Field(0.0, description="Content-word coverage or embedding similarity, whichever is higher (0..1).")
    method: Literal["verbatim", "lexical", "embedding", "judge", "uncited"] = Field(
        "lexical", description="What decided the verdict: a verbatim copy, word/figure overlap, embeddings, a judge."
    )


class Answer(BaseModel):
    """An answer whose every claim cites a numbered source, or an abstention."""

    question: str
    text: str
    citations: list[Citation] = Field(default_factory=list)
    hits: list[Hit] = Field(default_factory=list)
    abstained: bool = False
    outcome: Literal["answered", "low_confidence", "abstained"] = Field(
        "answered", description="answered; low_confidence: answered, but the evidence is weak (the text leads with a "
        "notice saying so); abstained: the collection does not answer this."
    )
    confidence: float | None = Field(
        None, description="Probability (0..1) that the retrieved papers answer the question, from the calibrated "
        "answerability model (rag/answering/answerability.py); None when nothing was retrieved to judge."
    )
    answerer: Literal["extractive", "llm"]
    dropped_citations: list[int] = Field(
        default_factory=list, description="Citation numbers the answerer produced that point at no source."
    )
    error: str | None = Field(None, description="Why the answerer failed (the hits are still returned).")
    support: list[SentenceSupport] = Field(
        default_factory=list,
        description="Per answer sentence: is it backed by the sources it cites (offline check, rag/answering/grounding.py)? "
        "Empty for abstentions and errors.",
    )

    def cited_papers(self) -> list[Paper]:
        """The papers the answer cites, in citation order, each once."""
        return list({c.paper.id: c.paper for c in sorted(self.citations, key=lambda c: c.number)}.values())

    def bibtex(self, abstracts: bool = False) -> str:
        """The cited papers as BibTeX (rag/answering/export.py); empty when nothing is cited."""
        from rag.answering.export import bibtex  # imported here: the exporter imports this module

        return bibtex(self.cited_papers(), abstracts)

    def ris(self, abstracts: bool = False) -> str:
        """The cited papers as RIS (rag/answering/export.py); empty when nothing is cited."""
        from rag.answering.export import ris

        return ris(self.cited_papers(), abstracts)


class IngestReport(BaseModel):
    """What an ingest did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    records: int = Field(0, description="Raw records read from the files.")
    papers: int = Field(0, description="Papers in the catalog after the ingest.")
    failed: list[tuple[str, str]] = Field(default_factory=list, description="(file:line, why) of rejected input.")
    warnings: list[tuple[str, str]] = Field(default_factory=list, description="(file:line, what) kept with a note.")
